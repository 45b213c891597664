"""One runtime over every artifact: Backend protocol, backends, Predictor."""
from ..postprocess import Detections  # what Predictor.predict returns, for type hints beside it
from .base import Backend, ModelInfo
from .loader import load_predictor, open_model
from .predictor import Predictor
from .live_source import LiveSource
from .stream import LiveRun, predict_stream
from .video import VideoFrame, predict_video

__all__ = ["Backend", "Detections", "LiveRun", "LiveSource", "ModelInfo", "Predictor", "VideoFrame", "load_predictor",
           "open_model", "predict_stream", "predict_video"]
