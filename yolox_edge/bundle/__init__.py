"""Mobile bundles: package an export into one verified zip, check one, open one as a model."""
from .opener import extract_bundle, open_bundle_model
from .package import BUNDLE_SCHEMA, TARGETS, package_bundle, verify_bundle
from .safezip import MANIFEST, safe_extract

__all__ = ["BUNDLE_SCHEMA", "MANIFEST", "TARGETS", "extract_bundle", "open_bundle_model", "package_bundle",
           "safe_extract", "verify_bundle"]
