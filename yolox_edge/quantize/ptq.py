"""Post-training INT8 through NNCF, written to OpenVINO IR, Q/DQ ONNX or ncnn INT8.

One path for every format: checkpoint -> BN folded -> deploy wrapper (export/wrapper.py,
decode in the graph) -> float graph -> INT8 with the decode left float -> metadata.json.
  openvino: float ONNX -> ``ov.convert_model`` -> ``nncf.quantize(ov_model)`` (the route that
            gives a correct IR; a torch Q/DQ ONNX misbehaves in OpenVINO, see TOOLCHAIN-NOTES).
  onnx:     float ONNX (opset 17: on opset 11 NNCF falls back to per-tensor and breaks)
            -> ``nncf.quantize(onnx_model)`` -> QuantizeLinear/DequantizeLinear that
            onnxruntime runs.
  ncnn:     float pnnx export -> the project's own INT8 writer (ncnn_int8.py).
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..thresholds import EVAL_CONF, EVAL_MAX_DET, EVAL_NMS_IOU
from ..data.preprocess import PreprocessConfig
from ..fileio import missing_folders, remove_empty_folders, replace_durably, sha256_file, stops_held
from ..owners import owner_tag, sweep_dead_folders
from ..progress import deprecated_keywords, line_sink, renamed, renamed_attribute
from ..errors import BadArgument, UserError, flag_value, in_python
from ..engine.checkpoint import checkpoint_category_ids
from ..export.api import (DEFAULT_NMS_CONF, DEFAULT_NMS_IOU, graph_nms, graph_topk, model_file_names, output_folder,
                          output_plan)
from ..export.metadata import METADATA_FILE, build_metadata, output_specs, write_metadata
from ..export.wrapper import DeployModel, num_anchors
from ..models import Detector, variant_counts
from . import scopes
from .accuracy import ACCURACY_CONTROL, check_val_images, needs_data
from .calib import CalibrationSet, load_calibration_set, size_mismatch
from .fold import fold_batchnorm
from .pixel_input import exact_onnx_input, exact_openvino_input, takes_raw_pixels

FORMATS = ("openvino", "onnx", "ncnn")
PRESETS = ("mixed", "performance")
# The hidden folder one format's INT8 files are written in before they move into out; not a prefix of
# staging's '.quantize_run_', so neither sweep lists the other's.
ONE_FORMAT_PREFIX = ".quantize_int8_"


@dataclass
class QuantizeOptions:
    """Knobs of one INT8 conversion (CLI flags map one to one; ``iou``/``conf`` were ``nms_iou``/
    ``nms_conf``, which the constructor still takes and ``opts.nms_iou``/``opts.nms_conf`` still read
    and set, with a DeprecationWarning; ``dataclasses.replace(opts, nms_iou=)`` is a TypeError: use
    ``replace(opts, iou=)``)."""

    preset: str = "mixed"  # mixed: symmetric weights, asymmetric activations (SiLU outputs are lopsided)
    fast_bias_correction: bool = True
    # Off for QAT weights: their biases were trained under quantization (from NNCF's corrected
    # start); correcting them again towards the float model shifts them twice.
    bias_correction: bool = True
    subset_size: int = 300
    topk: int | None = None
    accuracy_control: bool = False
    data: str | None = None  # data spec for accuracy control
    max_drop: float = 0.005  # absolute AP (0..1) the accuracy control may lose
    method: str = "ptq"
    qat: dict | None = None  # QAT summary (epochs, lr, ...) recorded in metadata.json
    # Most error-sensitive convs left float (ncnn_calib.most_sensitive). ncnn's INT8 is symmetric
    # per-tensor on activations; with its ranges taken as the extremes over the calibration set,
    # coco_tiny Nano dropped 0.11 / -0.29 / -0.43 AP with 0 / 2 / 4 float convs (calibration/README).
    keep_float: int = 4  # ncnn
    nncf_keep_float: int = 2  # openvino, onnx (NNCF's asymmetric activations need fewer)
    # openvino, onnx: the float convs chosen already, instead of measuring nncf_keep_float of them.
    # QAT passes those it fine-tuned with in float: on the fine-tuned weights a new measurement
    # could pick others, and the weights were trained for exactly these being float.
    float_convs: list[str] | None = None
    # In-graph NMS, as ``yolox-edge export --nms/--conf`` (iou None: top-K only); they were
    # nms_iou/nms_conf, which the constructor still takes (below) and the attributes under them.
    iou: float | None = DEFAULT_NMS_IOU
    conf: float = DEFAULT_NMS_CONF
    # Unannotated: no dataclass fields (fields(), asdict(), repr and == have iou/conf alone).
    nms_iou = renamed_attribute("iou")
    nms_conf = renamed_attribute("conf")
    silu: str = "exact"  # openvino: "rational" writes SiLU as export/silu_rational.py's approximation
    # One line per phase (sensitivity scan, export, calibration, conversion): a quantization
    # takes seconds to minutes, and NNCF's own bars cover only part of it. None: silent.
    log: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    # A bar over the per-conv sensitivity scan: on a busy 2-core machine it ran for minutes
    # between two log lines (COCO Nano at 416: 6 s idle, 20 s to minutes beside other work).
    progress: bool = field(default=False, repr=False, compare=False)
    # Runtime threads of this package's own scoring of accuracy-control candidates (onnxruntime
    # sessions, the OpenVINO compile of the graph as written); None: each runtime's default.
    # NNCF's own compiles and sessions (statistics, its OpenVINO candidates) take no thread
    # count: it makes a new openvino.Core / onnxruntime session for each, with their defaults.
    threads: int | None = field(default=None, compare=False)


# One keyword per idea: the NMS IoU and score threshold are iou=/conf= in every call and here;
# QuantizeOptions(nms_iou=, nms_conf=), their earlier names, still work with a DeprecationWarning.
# dataclasses.replace(opts, nms_iou=) does not: replace passes every field, iou= among them, and
# that call cannot be told from QuantizeOptions(iou=0.45, nms_iou=0.6); its TypeError says
# replace(obj, iou=...).
QuantizeOptions.__init__ = deprecated_keywords(nms_iou=renamed("iou"), nms_conf=renamed("conf"))(
    QuantizeOptions.__init__)


@dataclass
class QuantizeResult:
    """One format's INT8 export, as ``ExportResult``: ``directory``, ``model_file``, ``files`` and
    ``metadata`` (metadata.json, with the ``quantization`` record: method, calibration set, the
    convs kept float, the accuracy control's outcome)."""

    directory: Path
    model_file: Path
    files: list[Path]
    metadata: dict


def check_preset(name: str) -> None:
    """UserError for a preset NNCF does not have (checked before any work: a bad name was found
    only at the NNCF step, after the conv scan and the FP32 graph)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def check_options(opts: QuantizeOptions) -> None:
    """UserError for a knob of ``opts`` out of its range (preset; subset_size and max_drop as BadArgument), before
    any work: the one check of ``run_quantize`` and ``quantize_checkpoint`` (which had none for
    subset_size or max_drop: NNCF took subset_size=0 and max_drop=2 and ran for minutes)."""
    check_preset(opts.preset)
    n = opts.subset_size
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadArgument(f"{flag_value('--subset-size', 'subset_size', n)}: must be at least 1")
    drop = opts.max_drop
    if isinstance(drop, bool) or not isinstance(drop, (int, float)) or not 0 < drop < 1:
        raise BadArgument(f"{flag_value('--max-drop', 'max_drop', drop)}: an absolute AP drop in (0, 1), e.g. 0.005 "
                        "for half a point")


def check_keep_float(detector: torch.nn.Module, formats: list[str], *, keep_float: int, nncf_keep_float: int) -> None:
    """BadArgument when a format's float-conv count leaves no conv INT8, before the scan: with
    --nncf-keep-float 500 the tiny model's 113 convs all stayed float, and an "INT8" export that
    quantized nothing was written (its line said "the 500 most error-sensitive convs")."""
    from .ncnn_calib import conv_modules

    n = len(conv_modules(detector))
    for fmt in formats:
        flag, kw, count = (("--ncnn-keep-float", "keep_float", keep_float) if fmt == "ncnn" else
                           ("--nncf-keep-float", "nncf_keep_float", nncf_keep_float))
        default = getattr(QuantizeOptions, kw)
        if count >= n:
            raise BadArgument(f"{flag_value(flag, kw, count)}: the model has {n} convolutions, so none would be INT8; "
                              f"keep fewer float (default {default})")


def check_bias_correction(formats: list[str], fast_bias_correction: bool) -> None:
    """UserError for NNCF's full bias correction on the ONNX graph, before any work.

    NNCF 3.4's BiasCorrection cuts the ONNX graph into subgraphs and lists a tensor that feeds two
    convolutions (each CSP block's input does) twice among a subgraph's inputs; onnxruntime refuses
    that subgraph ("Duplicate definition-site"), and the run died with NNCF's traceback after the
    conv scan and the statistics. Its OpenVINO backend runs. A test checks that NNCF still fails
    (tests/quantize/test_ptq.py), so that this refusal goes when NNCF mends it."""
    if not fast_bias_correction and "onnx" in formats:
        raise UserError(f"{in_python('--no-fast-bias-correction', 'fast_bias_correction=False')}: NNCF's full bias "
                        "correction fails on the ONNX graph of these networks (a tensor that feeds two convolutions, "
                        "as in every CSP block); use it with --format openvino only, and quantize onnx with the fast "
                        "one (the default)")


def _nncf_preset(name: str):
    import nncf

    check_preset(name)
    return nncf.QuantizationPreset.MIXED if name == "mixed" else nncf.QuantizationPreset.PERFORMANCE


def _validation(fmt: str, data: str, pre: PreprocessConfig, class_names: list[str], kind: str, *,
                threads: int | None = None):
    """(nncf validation Dataset, validation_fn, val samples) scoring COCO AP on the spec's val split.

    ``kind`` is the graph's output kind (decoded, or top-K after the in-graph NMS): each
    candidate is scored through the same host postprocess the runtime gives that kind. ONNX
    candidates run at ``threads`` (OpenVINO ones come compiled by NNCF, at its thread count).
    """
    import nncf

    from ..data.spec import read_split
    from ..engine.evaluator import evaluate
    from ..runtime.artifact import run_batched
    from ..runtime.base import ModelInfo
    from ..runtime.predictor import Predictor

    split = read_split(data, "val")
    check_val_images(len(split.samples), data)
    info = ModelInfo("int8-candidate", class_names, pre, output_kind=kind)

    class _Mem:
        name = fmt

        def __init__(self, model):
            if fmt == "onnx":
                import onnxruntime as ort

                from ..runtime.onnx_backend import session_options

                sess = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                            providers=["CPUExecutionProvider"])
                names = [o.name for o in sess.get_outputs()]
                self.run = lambda x: dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))
            else:  # an OpenVINO compiled model: results keyed by output port
                self.run = lambda x: {p.get_any_name(): v for p, v in model(x).items()}

        def infer(self, batch):
            return run_batched(self.run, batch, static=True)  # the graph takes one image

    def validation_fn(model, items) -> tuple[float, None]:
        from ..data.spec import Split

        sub = Split(list(items), split.names, coco_gt=split.coco_gt, category_ids=split.category_ids)
        pred = Predictor(_Mem(model), info, conf=EVAL_CONF, iou=EVAL_NMS_IOU, max_det=EVAL_MAX_DET)
        return float(evaluate(pred, sub, progress=False)["AP"]), None

    return nncf.Dataset(split.samples), validation_fn, list(split.samples)


@dataclass
class AccuracyCheck:
    """After an accuracy-control run: score a graph on the val split, and build the metadata entry."""

    score: Callable[[object], float]  # one pass over the val split, compiled as NNCF compiles candidates
    entry: Callable[..., dict]  # entry(written AP, **summarize keywords) -> ``accuracy_control``


def _nncf_int8(model, fmt: str, cal: CalibrationSet, deploy: DeployModel, input_name: str, opts: QuantizeOptions,
               pre: PreprocessConfig, class_names: list[str], float_nodes: list[str], tmp: Path,
               conv_modules: dict[str, str]) -> tuple[object, AccuracyCheck | None]:
    """NNCF PTQ (optionally with accuracy control) of an ONNX ModelProto or OpenVINO model.

    Returns (INT8 model, None), or with accuracy control (INT8 model, ``AccuracyCheck``) to score
    the graph as it will be written and give the metadata ``accuracy_control`` entry.
    """
    import nncf

    feed: Callable = (lambda x: {input_name: x}) if fmt == "onnx" else (lambda x: x)
    calib = nncf.Dataset([cal.data[i:i + 1] for i in range(len(cal))], feed)
    kw = dict(preset=_nncf_preset(opts.preset), subset_size=min(opts.subset_size, len(cal)),
              fast_bias_correction=opts.fast_bias_correction,
              ignored_scope=scopes.ignored_scope(deploy, float_nodes))
    advanced = None
    if not opts.bias_correction:
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

        advanced = AdvancedQuantizationParameters(disable_bias_correction=True)
    if not opts.accuracy_control:
        return nncf.quantize(model, calib, advanced_parameters=advanced, **kw), None
    if not opts.data:
        raise UserError(needs_data(accuracy_control=True, why="its val split scores each candidate"))
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    from .accuracy import ScoreLog, onnx_quant, openvino_quant, summarize

    val_ds, val_fn, samples = _validation(fmt, opts.data, pre, class_names, deploy.kind, threads=opts.threads)
    scores = ScoreLog(val_fn, samples)
    if opts.log:
        opts.log(f"    NNCF accuracy control: FP32 and INT8 scored on {len(samples)} val images, whole and one by one")
    # NNCF saves its fully quantized model there before reverting anything: the "before" graph.
    ptq_dir = tmp / "nncf_ptq"
    ptq_dir.mkdir()
    q = nncf.quantize_with_accuracy_control(
        model, calib, val_ds, scores, max_drop=opts.max_drop, advanced_quantization_parameters=advanced,
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(intermediate_model_dir=str(ptq_dir)),
        **kw)
    if fmt == "onnx":
        import onnx

        before, after = onnx_quant(onnx.load(str(ptq_dir / "intermediate_model.onnx"))), onnx_quant(q)
    else:
        from ..runtime.openvino_backend import cpu_config, shared_core

        before = openvino_quant(shared_core().read_model(str(ptq_dir / "intermediate_model.xml")))
        after = openvino_quant(q)

    def score(graph) -> float:
        if fmt == "openvino":  # compiled as NNCF compiles its candidates: f32, whatever the CPU offers
            graph = shared_core().compile_model(graph, "CPU", cpu_config("f32", opts.threads))
        return scores.score(graph)

    def entry(written: float, **extra) -> dict:
        return summarize(scores, before, after, conv_modules, written=written, max_drop=opts.max_drop,
                         data=str(opts.data), **extra)
    return q, AccuracyCheck(score, entry)


def _copy_graph(model, fmt: str):
    """An independent copy of an ONNX ModelProto or OpenVINO model (edits to it leave ``model`` as is)."""
    if fmt == "onnx":
        return copy.deepcopy(model)
    return model.clone()


def pick_input_quantizer(q, fmt: str, pre: PreprocessConfig, check: AccuracyCheck | None,
                         say: Callable[[str], None]) -> tuple[object, dict]:
    """The INT8 graph to write, and its ``input_quantizer`` / ``accuracy_control`` metadata entries.

    Raw pixel input: the input quantizer is set to exactly 0..255 (pixel_input.py). With accuracy
    control that edit comes after NNCF's checks, so the edited graph is scored; if it breaks a limit
    NNCF's graph met, or neither meets it and NNCF's scored higher, NNCF's graph is written instead,
    scored once more as written (``choose_input_quantizer``: at most one extra val pass).
    """
    from .accuracy import CALIBRATED_INPUT, EXACT_INPUT, choose_input_quantizer

    make_exact = exact_onnx_input if fmt == "onnx" else exact_openvino_input
    if not takes_raw_pixels(pre):
        return q, {"accuracy_control": check.entry(check.score(q)) if check else None}
    if check is None:
        return q, {"input_quantizer": EXACT_INPUT if make_exact(q) else CALIBRATED_INPUT, "accuracy_control": None}
    exact = _copy_graph(q, fmt)
    if not make_exact(exact):  # no quantizer on the input to edit: NNCF's graph as it is
        return q, {"input_quantizer": CALIBRATED_INPUT,
                   "accuracy_control": check.entry(check.score(q), input_quantizer=CALIBRATED_INPUT)}
    exact_ap = check.score(exact)
    entry = check.entry(exact_ap, input_quantizer=EXACT_INPUT, exact_input_ap=exact_ap)
    if choose_input_quantizer(entry["fp32_ap"], entry["int8_ap_nncf"], exact_ap, entry["max_drop"]) == EXACT_INPUT:
        return exact, {"input_quantizer": EXACT_INPUT, "accuracy_control": entry}
    say("    the exact 0..255 input quantizer scored lower than NNCF's calibrated one: scoring NNCF's graph as written")
    entry = check.entry(check.score(q), input_quantizer=CALIBRATED_INPUT, exact_input_ap=exact_ap)
    return q, {"input_quantizer": CALIBRATED_INPUT, "accuracy_control": entry}


def _kept_float(count: int) -> str:
    """How many error-sensitive convs stay float, as the log line says it."""
    if count <= 0:
        return "every conv INT8 (none kept float)"
    return "the most error-sensitive conv (kept float)" if count == 1 else \
        f"the {count} most error-sensitive convs (kept float)"


def sensitive_convs(detector: Detector, calib: np.ndarray, count: int, *, progress: bool = False) -> list[str]:
    """Module names of the ``count`` convs whose INT8 error alone moves the outputs most
    (``progress``: a bar over the convs measured)."""
    from .ncnn_calib import calibrate_ncnn, most_sensitive

    if count <= 0:
        return []
    probe = copy.deepcopy(detector).eval()
    with torch.no_grad():
        plans = calibrate_ncnn(probe, calib, bias_correction=False).plans
        return most_sensitive(probe, calib, plans, count, progress=progress)


def export_int8_graph(deploy: DeployModel, fmt: str, example: torch.Tensor, cal: CalibrationSet, tmp: Path,
                      stem: str, opts: QuantizeOptions, pre: PreprocessConfig,
                      class_names: list[str]) -> tuple[list[str], str, list[str], dict]:
    """Write the INT8 model files into ``tmp``; returns (file names, input name, output blobs, details)."""
    from ..export.to_onnx import export_onnx

    n = min(opts.subset_size, len(cal))
    say = opts.log or (lambda msg: None)
    if fmt == "ncnn":
        from ..export.to_ncnn import export_ncnn
        from .ncnn_calib import conv_modules, plan_ncnn_int8
        from .ncnn_int8 import convert_ncnn_int8

        det = deploy.detector  # the wrapper's own copy: the bias correction below edits it in place
        say(f"    scales from {n} image{'s' if n != 1 else ''}, and {_kept_float(opts.keep_float)}")
        with torch.no_grad():
            calib, keep = plan_ncnn_int8(det, cal.data[:opts.subset_size], keep_float=opts.keep_float,
                                           bias_correction=opts.bias_correction, progress=opts.progress)
        fp_param, fp_bin = tmp / "float.param", tmp / "float.bin"
        say("    FP32 ncnn graph (pnnx), then the INT8 weights and scales into it")
        input_name, blobs = export_ncnn(deploy, example, fp_param, fp_bin)
        names = model_file_names(fmt, stem)
        weights = {n: m.weight.detach().numpy() for n, m in conv_modules(det).items()}
        rep = convert_ncnn_int8(fp_param, fp_bin, tmp / names[0], tmp / names[1], weights, calib.plans,
                                calib.biases)
        return names, input_name, blobs, {
            "engine": "yolox_edge ncnn INT8 writer", "layers_int8": len(rep.quantized),
            "layers_rescaled": len(rep.rescaled), "layers_float": rep.kept_float, "float_convs": keep,
            "activation_ranges": f"absmax over the {n} calibration image{'s' if n != 1 else ''} used",
            "bias_correction": "fast" if opts.bias_correction else None}
    import nncf
    import onnx

    if opts.float_convs is not None:
        float_convs = list(opts.float_convs)
        say(f"    {_kept_float(len(float_convs))}, as QAT fine-tuned them" + (f": {', '.join(float_convs)}"
                                                                            if float_convs else ""))
    else:
        say(f"    {_kept_float(opts.nncf_keep_float)}"
            + ("; each conv's error measured alone" if opts.nncf_keep_float else ""))
        float_convs = sensitive_convs(deploy.detector, cal.data[:opts.subset_size], opts.nncf_keep_float,
                                      progress=opts.progress)
    say(f"    FP32 ONNX graph, then NNCF {opts.preset} INT8 on {n} calibration image{'s' if n != 1 else ''}")
    fp_onnx = tmp / "float.onnx"
    input_name = export_onnx(deploy, example, fp_onnx)
    blobs = list(deploy.output_names)
    fp_graph = onnx.load(str(fp_onnx))
    float_nodes = scopes.conv_node_names(fp_graph, deploy, float_convs)
    conv_modules = scopes.conv_modules(fp_graph, deploy)
    details = {"engine": f"nncf {nncf.__version__}", "preset": opts.preset,
               "fast_bias_correction": opts.fast_bias_correction, "bias_correction": opts.bias_correction,
               "float_convs": float_convs}
    if fmt == "onnx":
        q, accuracy = _nncf_int8(onnx.load(str(fp_onnx)), fmt, cal, deploy, input_name, opts, pre, class_names,
                                 float_nodes, tmp, conv_modules)
        q, written = pick_input_quantizer(q, fmt, pre, accuracy, say)
        details.update(written)
        names = model_file_names(fmt, stem)
        onnx.save(q, str(tmp / names[0]))
    else:
        import openvino as ov

        from ..telemetry import converter_telemetry_off

        with converter_telemetry_off():
            ov_model = ov.convert_model(str(fp_onnx))
        q, accuracy = _nncf_int8(ov_model, fmt, cal, deploy, input_name, opts, pre, class_names,
                                 scopes.openvino_conv_names(ov_model, float_nodes), tmp, conv_modules)
        if opts.silu == "rational":  # before the accuracy check, so that it scores the graph as written
            from ..export.silu_rational import rewrite_silu

            details["silus_rewritten"] = rewrite_silu(q)
            say(f"    {details['silus_rewritten']} SiLUs written as the rational approximation")
        q, written = pick_input_quantizer(q, fmt, pre, accuracy, say)
        details.update(written)
        names = model_file_names(fmt, stem)
        from ..export.to_openvino import save_ir

        # compress_to_fp16=False: the float part (decode, biases) stays fp32, as exported.
        save_ir(q, tmp / names[0], compress_to_fp16=False)
    return names, input_name, blobs, details


def int8_stem(variant: str) -> str:
    """The file stem of a variant's INT8 model files (``yolox_nano_int8.xml``, ...)."""
    return f"yolox_{variant}_int8"


def quantize_detector(detector: Detector, ckpt: dict, source: Path, calib: str | Path | CalibrationSet, fmt: str,
                      out_dir: str | Path, opts: QuantizeOptions | None = None) -> QuantizeResult:
    """INT8-convert a loaded detector (FP32, or fine-tuned by QAT) into ``out_dir``."""
    opts = opts or QuantizeOptions()
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    from ..export.silu_rational import check_silu_mode

    check_silu_mode(opts.silu)
    if opts.silu != "exact" and fmt != "openvino":
        raise UserError(f"silu={opts.silu!r} rewrites OpenVINO IR only; this is the {fmt} export")
    check_bias_correction([fmt], opts.fast_bias_correction)
    if fmt == "ncnn" or opts.float_convs is None:  # QAT's float convs are its own list
        check_keep_float(detector, [fmt], keep_float=opts.keep_float, nncf_keep_float=opts.nncf_keep_float)
    if opts.accuracy_control and fmt == "ncnn":
        raise UserError(f"{ACCURACY_CONTROL} works through NNCF (openvino, onnx); the ncnn writer has no such loop")
    pre = PreprocessConfig.from_dict(ckpt["preprocess"])
    cal = calib if isinstance(calib, CalibrationSet) else load_calibration_set(calib, img_size=pre.input_size)
    if tuple(cal.size) != tuple(pre.input_size):
        raise size_mismatch(cal.path, cal.size, pre.input_size)
    kind, k = output_plan(fmt, "fp32", opts.topk, False, False)
    h, w = pre.input_size
    k = graph_topk(k, (h, w), detector.strides)  # as export_detector (metadata said 100 over 84 anchors at 64x64)
    detector = fold_batchnorm(detector).eval()
    nms = graph_nms(kind, fmt, opts.iou, opts.conf)  # as the FP32 export of this format
    # ncnn's INT8 convolution has no fast path for the fused stem's 6x6 kernel over 3 channels
    # (Nano at 416, 1 thread: 31.3 -> 33.0 ms), so its INT8 graph keeps Reorg + 3x3.
    deploy = DeployModel(detector, kind=kind, topk=k, float_labels=(fmt == "ncnn"),
                         iou=nms["iou"] if nms else None, conf=opts.conf, fuse_stem=fmt != "ncnn")
    example = torch.from_numpy(cal.data[:1].copy())
    stem = int8_stem(ckpt["variant"])
    made = missing_folders(out_dir)  # taken away again if this run stops before the files are in
    out = output_folder(out_dir)
    try:
        # Named for this process (owners.owner_tag), as export's: a kill -9 left '.quantize_XXXXXXXX' in
        # --out for good; the next one-format quantize into it removes it once that process is gone.
        sweep_dead_folders(out, ONE_FORMAT_PREFIX)
        with tempfile.TemporaryDirectory(prefix=f"{ONE_FORMAT_PREFIX}{owner_tag()}.", dir=out) as tmp:
            tmp_p = Path(tmp)
            names, input_name, blobs, details = export_int8_graph(deploy, fmt, example, cal, tmp_p, stem, opts, pre,
                                                                  list(ckpt["class_names"]))
            outputs = output_specs(kind, batch=1, num_anchors=num_anchors((h, w), detector.strides),
                                   num_classes=detector.num_classes, topk=k,
                                   label_dtype="float32" if fmt == "ncnn" else "int64", blobs=blobs)
            # 'count' is the set's size; 'used' the first images the statistics took (--subset-size)
            used = min(opts.subset_size, len(cal))
            quant = {"method": opts.method, **details, "calibration": {**cal.describe(), "used": used},
                     "bn_folded": True,
                     "float_part": scopes.describe(deploy), **({"qat": opts.qat} if opts.qat else {})}
            meta = build_metadata(fmt=fmt, model_file=names[0], model_name=f"yolox_{ckpt['variant']}",
                                  variant=ckpt["variant"], class_names=list(ckpt["class_names"]), preprocess=pre,
                                  strides=detector.strides, kind=kind, topk=k, input_name=input_name, batch=1,
                                  outputs=outputs, precision="int8", source_sha256=sha256_file(source), nms=nms,
                                  counts=variant_counts(ckpt["variant"], num_classes=len(ckpt["class_names"]),
                                                        input_hw=(h, w)),
                                  extra={"source_checkpoint": Path(source).name, "quantization": quant},
                                  silu="rational" if details.get("silus_rewritten") else "exact",
                                  category_ids=checkpoint_category_ids(ckpt, source))
            # Whole files move in one rename each, flushed; metadata.json (naming their hashes) comes last.
            replace_durably([(tmp_p / n, out / n) for n in names])
            write_metadata(out, meta, names)
    except BaseException:  # Ctrl-C or an error: no empty --out left behind (as export_detector)
        remove_empty_folders(made)
        raise
    files = [out / n for n in names] + [out / METADATA_FILE]
    return QuantizeResult(out, out / names[0], files, meta)


# The earlier forms: quantize_checkpoint(model, calib, fmt, out, opts), fmt= and out_dir= (the
# names of --format and --out, as export_model's).
@deprecated_keywords("calib", "format", "out", "opts", fmt=renamed("format"), out_dir=renamed("out"))
def quantize_checkpoint(model: str | Path, *, calib: str | Path, format: str, out: str | Path,
                        opts: QuantizeOptions | None = None, progress: bool = True,
                        log: Callable[[str], None] | None = print, force: bool = False) -> QuantizeResult:
    """Checkpoint + calibration folder -> one format's INT8 folder, written in place: the step
    ``run_quantize`` (``yolox-edge quantize``: staging, several formats, QAT, report) and the
    pipeline build on.

    As the library's other long jobs: ``progress=False`` drops the bars (NNCF's and the conv
    scan's), ``log`` receives one line per phase (None: silent). An ``opts.log`` set by the caller wins over ``log``.
    ``calib``, ``format``, ``out`` and ``opts`` were positional, ``fmt=`` and ``out_dir=`` the names of
    ``format`` and ``out``: those forms still work, with a DeprecationWarning.

    An export already in ``out`` is refused unless ``force``, as ``export_model`` does: written over,
    it left the earlier model's files beside a metadata.json that no longer listed them. With
    ``force`` its files go only once the new export is whole (written in a hidden folder in ``out``
    first, as ``run_quantize`` does): a run that fails or is stopped leaves it as it was."""
    from dataclasses import replace

    from ..engine.checkpoint import load_model
    from ..export.api import clear_earlier_export, refuse_earlier_export, refuse_files_in_the_way
    from .nncf_quiet import quiet_nncf
    from .staging import StagedOutput

    opts = replace(opts or QuantizeOptions(), progress=progress)
    check_options(opts)
    if opts.log is None:
        opts = replace(opts, log=log)
    detector, ckpt = load_model(model)
    out = Path(out)
    refuse_earlier_export(out, force)
    refuse_files_in_the_way(out, model_file_names(format, int8_stem(ckpt["variant"])), force)
    # NNCF's INFO lines (~63 for OpenVINO) say nothing a user needs
    with StagedOutput(out) as stage, quiet_nncf(bars=progress):
        say = line_sink(opts.log)
        for line in stage.swept:  # the staging folders of killed runs it removed (or found and left)
            say(line)
        sweep_dead_folders(out, ONE_FORMAT_PREFIX)  # the work folders of killed runs from before staging
        staged = quantize_detector(detector, ckpt, Path(model), calib, format, stage.dir / format, opts)
        with stops_held():  # a stop between the two left neither export
            clear_earlier_export(out, force)  # only now: the new export is whole beside it
            return stage.commit({format: staged}, {format: out})[format]
