"""One runtime over every artifact: Backend protocol, backends, Predictor."""
from .base import Backend, ModelInfo
from .loader import load_predictor, open_model
from .predictor import Predictor
from .video import VideoFrame, predict_video

__all__ = ["Backend", "ModelInfo", "Predictor", "VideoFrame", "load_predictor", "open_model", "predict_video"]
