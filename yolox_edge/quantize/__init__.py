"""INT8: calibration sets, NNCF PTQ/QAT with the decode kept in float, INT8 exports and reports."""

# Loaded on first use: importing the package stays cheap and torch-free. (Names that are
# also submodules, e.g. data.preprocess, are left out: after an import the module would win.)
_LAZY = {"run_quantize": "pipeline", "build_calibration_set": "calib", "load_calibration_set": "calib",
         "quantize_checkpoint": "ptq"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
