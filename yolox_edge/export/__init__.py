"""Export: detector + grid decode (+ top-K) as ONNX, OpenVINO IR or ncnn, with metadata.json."""
from .api import DEFAULT_TOPK, FORMATS, ExportResult, export_detector, export_model
from .metadata import METADATA_FILE, model_info, read_metadata, write_metadata
from .wrapper import DeployModel

__all__ = ["DEFAULT_TOPK", "FORMATS", "ExportResult", "export_model", "export_detector", "DeployModel", "METADATA_FILE",
           "model_info", "read_metadata", "write_metadata"]
