"""Export: detector + grid decode (+ top-K) as ONNX, OpenVINO IR or ncnn, with metadata.json."""
from .._lazy import lazy_getattr
from .metadata import METADATA_FILE, model_info, read_metadata, write_metadata

# The exporters need torch; they load on first use so that reading an artifact's metadata
# (predict/eval/bench on a device with only the runtimes installed) does not import it.
_LAZY = {"DEFAULT_TOPK": "api", "FORMATS": "api", "ExportResult": "api", "export_detector": "api",
         "export_model": "api", "DeployModel": "wrapper"}

__all__ = ["DEFAULT_TOPK", "FORMATS", "ExportResult", "export_model", "export_detector", "DeployModel", "METADATA_FILE",
           "model_info", "read_metadata", "write_metadata"]

__getattr__ = lazy_getattr(__name__, _LAZY)
