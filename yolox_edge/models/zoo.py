"""Named variants (a registry in the timm style) and ``create_model``."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UserError
from ..progress import deprecated_keywords
from .backbone import CSPDarknet, Darknet53
from .detector import Detector
from .head import DecoupledHead
from .neck import PAFPN, YOLOFPN


@dataclass(frozen=True)
class Variant:
    """What defines a variant: architecture multipliers and its default input size."""

    name: str
    depth: float
    width: float
    depthwise: bool = False
    act: str = "silu"
    arch: str = "cspdarknet"  # cspdarknet | darknet53
    input_size: int = 640
    official_weights: bool = True  # False: the official YOLOX releases nothing for it to import

    def to_dict(self) -> dict:
        """The fields as a dict (``models --json``)."""
        return asdict(self)

    def shares_weights_with(self, other: "Variant") -> bool:
        """Same tensors (names and shapes): the variants differ at most in activation and size."""
        return (self.depth, self.width, self.depthwise, self.arch) == (
            other.depth, other.width, other.depthwise, other.arch)


VARIANTS: dict[str, Variant] = {}


def register(v: Variant) -> Variant:
    VARIANTS[v.name] = v
    return v


register(Variant("nano", 0.33, 0.25, depthwise=True, input_size=416))
# Nano with hard-swish: same weights' shapes (fine-tune it from the COCO Nano), no exp in the
# INT8 graph; README "Where Nano's CPU time goes" has the measured cost.
register(Variant("nano_hswish", 0.33, 0.25, depthwise=True, act="hswish", input_size=416,
                 official_weights=False))
register(Variant("tiny", 0.33, 0.375, input_size=416))
register(Variant("s", 0.33, 0.50))
register(Variant("m", 0.67, 0.75))
register(Variant("l", 1.0, 1.0))
register(Variant("x", 1.33, 1.25))
register(Variant("darknet53", 1.0, 1.0, act="lrelu", arch="darknet53"))
# Test-only variants: same code paths, tiny cost, so tests can sweep every branch fast.
register(Variant("test_dw", 0.33, 0.0625, depthwise=True, input_size=64))
register(Variant("test", 0.33, 0.0625, input_size=64))
register(Variant("test_hswish", 0.33, 0.0625, depthwise=True, act="hswish", input_size=64,
                 official_weights=False))

OFFICIAL = {  # YOLOX README: params (M), GFLOPs at the variant's input size
    "nano": (0.91, 1.08), "tiny": (5.06, 6.45), "s": (9.0, 26.8), "m": (25.3, 73.8),
    "l": (54.2, 155.6), "x": (99.1, 281.9), "darknet53": (63.7, 185.3),
}


class UnknownVariant(UserError, KeyError):
    """A variant name the zoo does not have: a UserError (one line in the CLI, wherever it is
    found, e.g. a recipe's model.variant), and a KeyError for callers that look names up."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_variant(name: str) -> Variant:
    """Look a variant up by name (``yolox_nano`` and ``nano`` both work)."""
    key = str(name).lower().removeprefix("yolox_").removeprefix("yolox-")
    if key not in VARIANTS:
        raise UnknownVariant(f"unknown variant {name!r}; known: {', '.join(list_models())}")
    return VARIANTS[key]


@deprecated_keywords("include_test")  # list_models(True), the earlier form
def list_models(*, include_test: bool = False) -> list[str]:
    """Variant names in the zoo's order; the tiny ``test*`` variants (for fast tests) only with ``include_test``."""
    return [n for n in VARIANTS if include_test or not n.startswith("test")]


def create_model(name: str, *, num_classes: int = 80) -> Detector:
    """Build a variant with ``num_classes`` classes, randomly initialised."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        # 0 built a head with empty class convs that trained and exported without a word
        raise UserError(f"num_classes must be a whole number of at least 1, not {num_classes!r}")
    v = get_variant(name)
    if v.arch == "darknet53":
        backbone = Darknet53()
        neck = YOLOFPN(backbone.out_channels)
        hidden = 256
    else:
        backbone = CSPDarknet(depth=v.depth, width=v.width, depthwise=v.depthwise, act=v.act)
        neck = PAFPN(backbone.out_channels, depth=v.depth, depthwise=v.depthwise, act=v.act)
        hidden = int(256 * v.width)
    head = DecoupledHead(num_classes, neck.out_channels, hidden=hidden, depthwise=v.depthwise, act=v.act)
    model = Detector(backbone, neck, head)
    model.variant = v.name
    return model
