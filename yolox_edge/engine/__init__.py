"""Engine: checkpoint, evaluator, trainer, EMA and schedules."""
from .._lazy import lazy_getattr

# Loaded on first use: importing the package stays cheap and torch-free. (Names that are
# also submodules, e.g. data.preprocess, are left out: after an import the module would win.)
_LAZY = {"Trainer": "trainer", "TrainResult": "trainer", "evaluate": "evaluator", "evaluate_model": "evaluator",
         "ConfusionCounter": "confusion",
         "load_checkpoint": "checkpoint", "load_model": "checkpoint", "save_checkpoint": "checkpoint",
         "convert_checkpoint": "convert", "ConvertResult": "convert"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
