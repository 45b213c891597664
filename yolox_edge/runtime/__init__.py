"""One runtime over every artifact: Backend protocol, backends, Predictor."""
from .base import Backend, ModelInfo
from .loader import load_predictor, open_model
from .predictor import Predictor
from .live_source import LiveSource
from .stream import LiveRun, predict_stream
from .video import VideoFrame, predict_video

__all__ = ["Backend", "LiveRun", "LiveSource", "ModelInfo", "Predictor", "VideoFrame", "load_predictor", "open_model",
           "predict_stream", "predict_video"]
