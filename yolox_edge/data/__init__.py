"""Data: the preprocessing contract, dataset readers and training transforms."""

# Loaded on first use: importing the package stays cheap and torch-free. (Names that are
# also submodules, e.g. data.preprocess, are left out: after an import the module would win.)
_LAZY = {"read_split": "spec", "load_spec": "spec", "check_dataset": "check", "PreprocessConfig": "preprocess",
         "read_image": "preprocess", "DetectionDataset": "dataset"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
