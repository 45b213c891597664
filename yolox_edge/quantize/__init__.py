"""INT8: calibration sets, NNCF PTQ/QAT with the decode kept in float, INT8 exports and reports."""
from .._lazy import lazy_getattr

# Loaded on first use: importing the package stays cheap and torch-free. (Names that are
# also submodules, e.g. data.preprocess, are left out: after an import the module would win.)
_LAZY = {"run_quantize": "pipeline", "build_calibration_set": "calib", "load_calibration_set": "calib",
         "quantize_checkpoint": "ptq"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
