"""Data: the preprocessing contract, dataset readers and training transforms."""
from .._lazy import lazy_getattr

# Loaded on first use: importing the package stays cheap and torch-free. (Names that are
# also submodules, e.g. data.preprocess, are left out: after an import the module would win.)
_LAZY = {"read_split": "spec", "load_spec": "spec", "check_dataset": "check", "PreprocessConfig": "preprocess",
         "read_image": "preprocess", "DetectionDataset": "dataset",
         "make_shapes_dataset": "synthetic", "synthetic_scene": "synthetic"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
