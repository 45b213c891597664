"""SiLU as a rational function in OpenVINO IR (``--silu rational``): same weights, cheaper activation.

OpenVINO's CPU plugin fuses each Conv + Swish into the convolution, and the Swish epilogue
(an exp and a divide per element) is about half of the INT8 Nano's convolution time on
AVX-512 CPUs that split 512-bit ops in two. Written as x/2 * (1 + r(x/2)), with r a
fitted 5/4 rational approximation of tanh on a clamped input, the activation no longer
fuses into the convolution; the plugin runs it (with the FakeQuantize after it) as one
vectorised pass of multiply-adds and one divide, which measured faster here (README, "Where
Nano's CPU time goes"). The approximation is within 7.6e-4 of SiLU for every float32
input (tested), far below an INT8 activation's step, so the weights need no refit.
"""
from __future__ import annotations

import numpy as np

# tanh(y) ~ y (A0 + y^2 (A1 + y^2)) / (B0 + y^2 (B1 + B2 y^2)) for |y| <= CLAMP. Fitted to SiLU
# (minimax on [-30, 30]) with B scaled so that r(CLAMP) == 1: beyond the clamp the function is
# exactly 0 or x, as SiLU is to within float rounding there.
A0, A1 = 932.3716512846827, 111.08328264943344
B0, B1, B2 = 928.7431247823946, 425.7700179137448, 16.138389629832172
CLAMP = 4.714240432900995
MAX_ABS_ERROR = 7.6e-4  # measured over float32 inputs in [-1000, 1000] (tests/export/test_silu_rational.py)
# An IR saved with fp16 weights (--precision fp16): OpenVINO stores B1 (and 0.5) in fp16 too.
MAX_ABS_ERROR_FP16_IR = 9e-4

SILU_MODES = ("exact", "rational")


def check_silu_mode(silu: str) -> None:
    """UserError for a mode other than SILU_MODES (any other value would quietly give exact SiLU)."""
    from ..errors import UserError

    if silu not in SILU_MODES:
        raise UserError(f"unknown SiLU mode {silu!r}; choose one of {', '.join(SILU_MODES)}")


def silu_rational_np(x: np.ndarray) -> np.ndarray:
    """The rational SiLU in numpy float32, the same arithmetic as the IR rewrite."""
    f = np.float32
    h = np.asarray(x, dtype=f) * f(0.5)
    y = np.clip(h, f(-CLAMP), f(CLAMP))
    y2 = y * y
    t = y * (y2 * (y2 + f(A1)) + f(A0)) / (y2 * (y2 * f(B2) + f(B1)) + f(B0))
    return h + h * t


def _rational(x):
    """OpenVINO nodes computing silu_rational_np of output ``x``."""
    import openvino as ov

    op = ov.opset13

    def c(v: float):
        return op.constant(np.float32(v))

    h = op.multiply(x, c(0.5))
    y = op.clamp(h, -CLAMP, CLAMP)
    y2 = op.multiply(y, y)
    num = op.multiply(y, op.add(op.multiply(y2, op.add(y2, c(A1))), c(A0)))
    den = op.add(op.multiply(y2, op.add(op.multiply(y2, c(B2)), c(B1))), c(B0))
    return op.add(h, op.multiply(h, op.divide(num, den)))


def _is_plain_swish(node) -> bool:
    """Swish with beta 1 (or none): SiLU. Any other beta is left alone."""
    if node.get_type_name() != "Swish":
        return False
    if node.get_input_size() == 1:
        return True
    beta = node.input_value(1).get_node()
    return beta.get_type_name() == "Constant" and np.allclose(beta.get_data(), 1.0)


def rewrite_silu(model) -> int:
    """Replace every SiLU (OpenVINO Swish, beta 1) of ``model`` in place; returns how many."""
    from .to_openvino import _redirect

    count = 0
    for node in list(model.get_ordered_ops()):
        if _is_plain_swish(node):
            _redirect(node, _rational(node.input_value(0)))
            count += 1
    return count
