"""What NNCF's accuracy control measured and changed: for the summary line and metadata.json.

``nncf.quantize_with_accuracy_control`` returns only a model. The figures a user needs come
from two places the SDK owns:
  * the validation function it hands NNCF (``ScoreLog`` keeps every score it returns). NNCF 3.4
    scores, in this order: one image to learn the function's return type, the FP32 model on the
    whole val split, the FP32 model image by image, the PTQ model on the whole split (then image
    by image); only when the drop is over the limit does it rank layer groups (on a subset that
    may be the whole split) and score the whole split after each revert, and it stops right
    after the score of the model it returns. So, among whole-split scores: first = FP32,
    second = PTQ, last = the returned model.
  * the graphs: the PTQ model NNCF saves before any revert (``intermediate_model_dir``) and the
    returned one, compared op by op (fed by a quantizer or not).
The SDK edits the returned graph once more (the exact 0..255 input quantizer, pixel_input.py)
and scores that graph with the same function. If the edit breaks a limit NNCF's graph met, the
graph NNCF returned (its calibrated input quantizer) is written instead and scored once more as
it is written (``choose_input_quantizer``): ``int8_ap`` is always the figure ``eval`` gives.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from ..errors import UserError, in_python
from ..progress import first_few

METRIC = "COCO AP@[.50:.95]"
EXACT_INPUT = "pixels 0..255, exact"  # metadata ``input_quantizer``: set by pixel_input.py after NNCF
CALIBRATED_INPUT = "calibrated"  # NNCF's own input quantizer, as it calibrated and scored it
MIN_VAL_IMAGES = 2  # below this, "the whole split" and NNCF's one-image probe cannot be told apart
ACCURACY_CONTROL = in_python("--accuracy-control", "accuracy_control=True")
# what a data spec of another class count is told under --qat (run_quantize checks it first, run_qat again)
QAT_DATA_ADVICE = "QAT fine-tunes on the data the model was trained for"


def needs_data(*, report: bool = False, accuracy_control: bool = False, qat: bool = False, why: str = "") -> str:
    """The message for options that score or train on a data spec given without one: each option
    given, and --data, as flags and as the keywords of run_quantize (and QuantizeOptions)."""
    given = [name for name, on in (("report", report), ("accuracy_control", accuracy_control), ("qat", qat)) if on]
    options = in_python(" and ".join("--" + n.replace("_", "-") for n in given), ", ".join(f"{n}=True" for n in given))
    data = in_python("--data SPEC", "data='data.yaml'")
    return f"{options} {'needs' if len(given) == 1 else 'need'} {data}" + (f"; {why}" if why else "")


def check_val_images(count: int, where: str) -> None:
    """Refuse a val split too small to score accuracy control on (one clear message)."""
    if count < MIN_VAL_IMAGES:
        raise UserError(f"{where}: the val split has {count} image{'' if count == 1 else 's'}; {ACCURACY_CONTROL} "
                        f"scores AP on it and needs at least {MIN_VAL_IMAGES} (NNCF ranks layers image by image)")


class ScoreLog:
    """A validation function for NNCF that records (images scored, score) of every call."""

    def __init__(self, fn: Callable, items: list):
        self.fn = fn
        self.items = items  # the whole val split, as NNCF is given it
        self.calls: list[tuple[int, float]] = []
        self._lock = threading.Lock()  # NNCF ranks with a thread pool; calls must not interleave in the log

    @property
    def val_images(self) -> int:
        return len(self.items)

    def __call__(self, model, items):
        items = list(items)
        value, per_item = self.fn(model, items)
        with self._lock:
            self.calls.append((len(items), float(value)))
        return value, per_item

    def whole_split(self) -> list[float]:
        """Scores of the calls that saw every val image, in call order."""
        return [v for n, v in self.calls if n == self.val_images]

    def score(self, model) -> float:
        """Score ``model`` on the whole split, outside NNCF's record."""
        return float(self.fn(model, self.items)[0])


def meets(fp32: float, int8: float, max_drop: float) -> bool:
    """True when ``int8`` is within ``max_drop`` (absolute AP) of ``fp32``."""
    return fp32 - int8 <= max_drop


def choose_input_quantizer(fp32: float | None, nncf: float | None, exact: float, max_drop: float) -> str:
    """Which input quantizer to write after accuracy control: ``EXACT_INPUT`` or ``CALIBRATED_INPUT``.

    ``nncf`` is NNCF's score of the graph it returned (calibrated input quantizer), ``exact`` the
    score of that graph with the exact 0..255 one. The exact one is kept unless it breaks a limit
    NNCF's graph met; when neither meets the limit the higher score wins (exact on a tie). Without
    NNCF's figures (an NNCF whose call order is unknown) nothing can be compared: exact.
    """
    if fp32 is None or nncf is None or meets(fp32, exact, max_drop):
        return EXACT_INPUT
    if meets(fp32, nncf, max_drop) or nncf > exact:
        return CALIBRATED_INPUT
    return EXACT_INPUT


@dataclass
class GraphQuant:
    """What is INT8 in one graph: ops reading a quantized input, convs with float weights."""

    quantized_ops: list[str]  # graph node names of the ops fed by a quantizer (activation or weight)
    float_convs: list[str]  # graph node names
    convs: int
    activation_quantizers: int


_OV_CONVS = ("Convolution", "GroupConvolution", "MatMul")
_OV_WEIGHT_PATH = ("Convert", "Reshape", "Multiply", "Subtract", "Transpose", "Unsqueeze")
_OV_INT_WEIGHTS = ("i8", "u8", "i4", "u4")  # shape constants (i64, i32) are not weights


def _ov_int8_weight(node, depth: int = 0) -> bool:
    # A quantized weight reaches its conv through a FakeQuantize (as NNCF inserts it) or, once
    # compressed, as an int8 Constant -> Convert -> (Subtract) -> Multiply chain.
    kind = node.get_type_name()
    if kind == "FakeQuantize":
        return True
    if kind == "Constant":
        return node.get_element_type().get_type_name() in _OV_INT_WEIGHTS
    if kind not in _OV_WEIGHT_PATH or depth > 6:
        return False
    return any(_ov_int8_weight(v.get_node(), depth + 1) for v in node.input_values())


def _ov_activation_fq(node) -> bool:
    return node.get_type_name() == "FakeQuantize" and node.input_value(0).get_node().get_type_name() != "Constant"


def openvino_quant(model) -> GraphQuant:
    """``GraphQuant`` of an OpenVINO model (NNCF FakeQuantize, weights compressed or not)."""
    ops, float_convs, convs, act = [], [], 0, 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if _ov_activation_fq(op):
            act += 1
            continue
        int8_weights = kind in _OV_CONVS and _ov_int8_weight(op.input_value(1).get_node())
        if kind in _OV_CONVS:
            convs += 1
            if not int8_weights:
                float_convs.append(op.get_friendly_name())
        if kind != "FakeQuantize" and (int8_weights or any(_ov_activation_fq(v.get_node()) for v in op.input_values())):
            ops.append(op.get_friendly_name())
    return GraphQuant(ops, float_convs, convs, act)


def onnx_quant(model) -> GraphQuant:
    """``GraphQuant`` of an ONNX model (QuantizeLinear/DequantizeLinear pairs)."""
    g = model.graph
    made_by = {o: n.op_type for n in g.node for o in n.output}
    consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    plain = [n for n in g.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    ops = [n.name for n in plain if any(made_by.get(i) == "DequantizeLinear" for i in n.input)]
    convs = [n for n in plain if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    float_convs = [n.name for n in convs if made_by.get(n.input[1]) != "DequantizeLinear"]
    act = sum(1 for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] not in consts)
    return GraphQuant(ops, float_convs, len(convs), act)


def _module(node: str, modules: dict[str, str]) -> str:
    # OpenVINO names a conv split from its bias '<ONNX node>/WithoutBiases'.
    return modules.get(node) or modules.get(node.removesuffix("/WithoutBiases")) or node


def summarize(log: ScoreLog, ptq: GraphQuant, final: GraphQuant, modules: dict[str, str], *, written: float,
              max_drop: float, data: str, input_quantizer: str | None = None,
              exact_input_ap: float | None = None) -> dict:
    """The ``accuracy_control`` entry of metadata.json (AP values 0..1).

    ``written`` is the score of the model as written; ``drop`` and ``met`` are about it.
    ``input_quantizer`` is the one written (None: the input is not raw pixels, no edit) and
    ``exact_input_ap`` the score with the exact 0..255 one (None: not made).
    ``modules`` maps graph conv names to detector module names: reverted convs are named as
    ``float_convs`` names them, other reverted ops (Add, Concat, ...) by their graph name.
    """
    scores = log.whole_split()
    fp32, int8_ptq = (scores[0], scores[1]) if len(scores) >= 2 else (None, None)
    # Without a revert NNCF returns the PTQ model it scored; after one, its last whole-split score
    # is the model it returns (module docstring).
    int8_nncf = (int8_ptq if len(scores) == 2 else scores[-1]) if int8_ptq is not None else None
    drop = None if fp32 is None else fp32 - written
    still = set(final.quantized_ops)
    return {"max_drop": max_drop, "data": data, "metric": METRIC, "val_images": log.val_images,
            "fp32_ap": fp32, "int8_ap_ptq": int8_ptq, "int8_ap_nncf": int8_nncf, "int8_ap": written,
            "drop": drop, "met": None if drop is None else drop <= max_drop,
            "input_quantizer": input_quantizer, "int8_ap_exact_input": exact_input_ap,
            "reverted_ops": [_module(n, modules) for n in ptq.quantized_ops if n not in still],
            "quantized_ops": {"ptq": len(ptq.quantized_ops), "final": len(final.quantized_ops)},
            "convs": final.convs, "float_convs_ptq": len(ptq.float_convs), "float_convs": len(final.float_convs),
            "activation_quantizers": {"ptq": ptq.activation_quantizers, "final": final.activation_quantizers},
            "whole_split_scorings": len(scores)}


def _pts(ap: float) -> str:
    return f"{100 * ap:.2f}"  # AP points, as eval and --report print them


def summary_lines(entry: dict | None) -> list[str]:
    """The few lines printed after an accuracy-control run (empty when it did not run)."""
    if not entry or "fp32_ap" not in entry:
        return []
    head = f"accuracy control: {entry['metric']} on {entry['val_images']} val images of {entry['data']}"
    if entry["fp32_ap"] is None:
        return [head, f"    INT8 {_pts(entry['int8_ap'])} as written; NNCF's own scores were not recorded "
                      "(an NNCF whose call order this SDK does not know)"]
    nncf_drop = entry["fp32_ap"] - entry["int8_ap_nncf"]
    if entry["whole_split_scorings"] > 2:  # NNCF's revert loop ran
        int8 = f"INT8 {_pts(entry['int8_ap_ptq'])} after PTQ, {_pts(entry['int8_ap_nncf'])} after reverting ops to float"
    else:
        int8 = f"INT8 {_pts(entry['int8_ap_ptq'])} after PTQ (within the limit: nothing reverted)"
    lines = [head, f"    FP32 {_pts(entry['fp32_ap'])}; {int8}; {_pts(entry['int8_ap'])} as written"]
    lines += _input_lines(entry, nncf_drop)
    lines.append(f"    drop {_pts(entry['drop'])} AP points, limit {_pts(entry['max_drop'])} "
                 f"(--max-drop {entry['max_drop']:g}): {'met' if entry['met'] else 'NOT met'}")
    rev, n_ops = entry["reverted_ops"], entry["quantized_ops"]["ptq"]
    kept = f"    float convs: {entry['float_convs']} of {entry['convs']} ({entry['float_convs_ptq']} before PTQ, --nncf-keep-float)"
    if not rev:
        lines.append(f"{kept}; accuracy control reverted none of the {n_ops} quantized ops")
    else:
        lines += [kept, f"    reverted to float by accuracy control: {len(rev)} of the {n_ops} quantized ops ({first_few(rev, 4)})"]
    if rev and not entry["quantized_ops"]["final"]:
        lines.append("    every quantized op was reverted: the model written computes in float throughout")
    if nncf_drop > entry["max_drop"]:
        lines.append("    NNCF stopped without reaching the limit; the model it returned is written anyway "
                     "(not an error). To get closer: a larger --max-drop, more --nncf-keep-float, or --qat.")
    elif not entry["met"]:
        if entry.get("input_quantizer") == CALIBRATED_INPUT:
            lines.append("    NNCF's model met the limit as NNCF scored it, not when scored again as written; "
                         "it is written anyway.")
        else:
            lines.append("    NNCF's model met the limit, the written one (exact input quantizer) does not; "
                         "it is written anyway.")
    return lines


def _input_lines(entry: dict, nncf_drop: float) -> list[str]:
    """The line on the input quantizer written: exact 0..255 (set after NNCF) or NNCF's calibrated one."""
    exact, limit = entry.get("int8_ap_exact_input"), entry["max_drop"]
    if entry.get("input_quantizer") == CALIBRATED_INPUT and exact is not None:
        if nncf_drop <= limit:
            return [f"    input quantizer: NNCF's calibrated one kept; with the exact 0..255 one the model scored "
                    f"{_pts(exact)}, over the limit"]
        return [f"    input quantizer: NNCF's calibrated one kept, it scored higher than the exact 0..255 one "
                f"({_pts(entry['int8_ap_nncf'])} vs {_pts(exact)}); neither meets the limit"]
    # Entries written before the choice have no input_quantizer key: their input was made exact.
    edited = entry.get("input_quantizer", EXACT_INPUT) == EXACT_INPUT
    if not edited or abs(entry["int8_ap"] - entry["int8_ap_nncf"]) <= 5e-5:
        return []
    lines = ["    (as written: after NNCF, the input quantizer is set to exactly 0..255; what eval reports)"]
    if exact is not None and nncf_drop > limit and not entry["met"]:
        lines.append(f"    input quantizer: the exact 0..255 one kept, it scored higher than NNCF's calibrated one "
                     f"({_pts(exact)} vs {_pts(entry['int8_ap_nncf'])}); neither meets the limit")
    return lines
