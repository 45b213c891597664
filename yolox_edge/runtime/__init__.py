"""One runtime over every artifact: Backend protocol, backends, Predictor."""
from .base import Backend, ModelInfo
from .loader import load_predictor, open_model
from .predictor import Predictor

__all__ = ["Backend", "ModelInfo", "Predictor", "load_predictor", "open_model"]
