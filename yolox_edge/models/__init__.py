"""Model zoo: blocks, backbones, necks, the decoupled head and named variants."""
from .detector import Detector, deploy_form
from .official import ImportedCheckpoint, import_official, import_official_checkpoint
from .profile import count_gflops, count_params, model_table, variant_counts
from .zoo import OFFICIAL, VARIANTS, Variant, create_model, get_variant, list_models

__all__ = ["Detector", "deploy_form", "Variant", "VARIANTS", "OFFICIAL", "create_model", "get_variant", "list_models",
           "count_params", "count_gflops", "model_table", "variant_counts", "import_official",
           "import_official_checkpoint", "ImportedCheckpoint"]
