"""QAT through NNCF: quantize the BN-folded detector, fine-tune it with THE trainer and loss
at a low learning rate, and hand the fine-tuned float weights back to the PTQ exporters.

The fake-quantized model (``nncf.quantize`` on the torch module; its range parameters are
held at their calibrated values, as the exporters re-derive exactly those) is trained by
``engine.trainer.Trainer`` itself: the same data pipeline, SimOTA loss, schedule and
evaluation, only with the NNCF model put in place of the float one
(``_QATTrainer``). BN is folded first, so there is no BN left to drift in train mode. The convs the OpenVINO and
ONNX exports leave float (``--nncf-keep-float``, the most error-sensitive) are chosen once, before
fine-tuning, and stay float in the fake-quantized model too; the exports then keep exactly those.
Fine-tuning spends most of its change compensating the largest quantization errors, and those
come from these convs: trained with them INT8 and exported with them float, the compensation
had nothing left to compensate (coco_tiny, 1 epoch, OpenVINO: exported 30.60 -> 30.61 AP for
the untrained -> fine-tuned weights, against 30.63 -> 31.26 with every conv INT8). QAT keeps
the epoch with the best fake-quantized val AP, the untrained start (epoch 0) included, so
it never hands back weights that fine-tuning made worse. Every format then takes
its scales from the same calibration as PTQ, without PTQ's bias correction (the trained
biases already compensate the quantization; correcting again cost ~1 AP per format). The
exporters do not read NNCF's torch quantizers: converting the fake-quantized torch model to
OpenVINO directly scored 27.4 AP against 30.6 for the same model in torch (not pursued).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch

from ..errors import BadArgument, UserError, flag_value
from ..owners import owned_temp_dir
from ..models import Detector
from ..progress import line_sink
from .accuracy import QAT_DATA_ADVICE, needs_data
from .calib import CalibrationSet
from .fold import fold_batchnorm

DEFAULT_LR = 2e-5  # measured on coco_tiny: 2e-4 costs the float model 2-3 AP in 2 epochs, 2e-5 ~0.3
# The train split's fitted images are kept in memory (decoded once, not every epoch) up to this
# size: always caching held COCO train2017 at 416 in ~46 GB, decoded before the first step.
CACHE_MAX_BYTES = 1 << 30


def qat_recipe(variant: str, input_size: int | tuple[int, int], *, epochs: int, lr: float, batch: int,
               cache_images: bool = True, threads: int | None = None):
    """A short, gentle fine-tuning recipe: no Mosaic/MixUp, no warm-up, fixed size (S, or (H, W)),
    no EMA; ``threads`` as ``train.threads`` (torch's and OpenCV's, None: as they are)."""
    from ..config import recipe_from_dict

    return recipe_from_dict({
        "model": {"variant": variant, "input_size": input_size, "test_size": input_size},
        "data": {"workers": 0, "cache_images": cache_images},
        "aug": {"mosaic_prob": 0.0, "mixup_prob": 0.0},
        "train": {"epochs": epochs, "batch": batch, "basic_lr_per_img": lr / batch, "warmup_epochs": 0,
                  "no_aug_epochs": 0, "ema": False, "eval_interval": epochs, "multiscale_range": 0,
                  "freeze_stem": True, "bn_reestimate_batches": 0, "amp": False, "threads": threads},
    }, source="qat")


def qat_optimizer(model: torch.nn.Module, lr: float, momentum: float, weight_decay: float,
                  nesterov: bool) -> torch.optim.SGD:
    """SGD as the trainer's, with the groups a folded, fake-quantized model has: conv weights
    (decay) and the rest without decay (biases; NNCF's range parameters if not frozen)."""
    weights, others = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (weights if name.endswith(".weight") and p.ndim == 4 else others).append(p)
    opt = torch.optim.SGD(weights, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    opt.add_param_group({"params": others, "weight_decay": 0.0})
    return opt


def freeze_quantizer_ranges(qmodel: torch.nn.Module) -> int:
    """Hold NNCF's quantizer ranges at their calibrated values while the weights train.

    The exporters re-derive ranges from the calibration set; ranges that moved during
    training are not the ones exported, so the weights would be tuned to another grid than
    the one they run on. (On coco_tiny's 80 images the measured effect is within the noise:
    1 epoch exported -1.01/-1.17/-0.43 AP drop with trained ranges, +0.11/-0.55/+0.07 frozen.)
    Returns the number of parameters frozen.
    """
    n = 0
    for name, p in qmodel.named_parameters():
        if name.startswith("__nncf_hooks") and p.requires_grad:
            p.requires_grad_(False)
            n += 1
    return n


def _make_trainer(qmodel: torch.nn.Module):
    from ..engine.trainer import Trainer

    class _QATTrainer(Trainer):
        """The project's Trainer with the NNCF fake-quantized model in place of a fresh one."""

        busy_cpu_note = False  # run_quantize says it for the whole run, naming --threads 1

        def _setup(self) -> None:
            from ..engine.schedule import WarmCosSchedule

            super()._setup()
            t = self.recipe.train
            # Every QAT epoch is a no-aug epoch (clean images, L1 loss on: the stage the
            # detector finished its own training in), under a cosine decay over all of them
            # (the trainer's no-aug stage would hold the minimum LR instead).
            self.no_aug_epochs = t.epochs
            self.schedule = WarmCosSchedule(t.basic_lr_per_img * t.batch, t.epochs, self.iters_per_epoch, 0,
                                            t.warmup_lr_start, t.min_lr_ratio, 0)
            self.model = qmodel.to(self.device)
            self.optimizer = qat_optimizer(self.model, self.schedule.lr, t.momentum, t.weight_decay, t.nesterov)
            self.ema = None
            self.train_model = self.model
            # Score the fake-quantized start (epoch 0): fine-tuning must beat it to be kept.
            # On a small train split a few epochs can cost AP (measured on coco_tiny); then
            # QAT hands back the folded float weights (the exports are PTQ's) instead.
            self.best_state, self.start_ap = _state_copy(self.model), None
            if self.val_split is not None:
                self.best_ap, self.best_epoch = float(self.evaluate()["AP"]), 0
                self.start_ap = self.best_ap
                self.log(f"QAT: fake-quantized start  AP {self.best_ap:.4f}")

        def _end_epoch(self, epoch: int, row: dict) -> None:
            super()._end_epoch(epoch, row)
            if self.val_split is None or self.best_epoch == epoch + 1:  # no val split: the last
                self.best_state = _state_copy(self.model)

    return _QATTrainer


def _state_copy(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# NNCF compiles its torch CPU extension on the first QAT run and gives up after 60 s: on a busy
# 2-core machine the compile takes minutes, and the run ended in NNCF's traceback (rc 1)
EXTENSION_WAIT_S = 900


@contextmanager
def nncf_extension_wait():
    """Give NNCF's first-use compile of its CPU extension EXTENSION_WAIT_S (unless the user set
    NNCF_EXTENSION_LOAD_TIMEOUT), and turn its timeout into one line that says what to do."""
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", str(EXTENSION_WAIT_S))
    try:
        yield
    except Exception as e:
        if type(e).__name__ != "ExtensionLoaderTimeoutException":
            raise
        from nncf.torch.quantization.extensions import QuantizedFunctionsCPULoader

        lock = Path(QuantizedFunctionsCPULoader.get_build_dir()) / "lock"
        raise UserError(f"NNCF's CPU extension, compiled on the first QAT run, did not load within "
                        f"{os.environ['NNCF_EXTENSION_LOAD_TIMEOUT']} s: the machine is busy, or a compile that "
                        f"was killed left {lock}; if no other QAT run is compiling, remove that file and run again "
                        "(NNCF_EXTENSION_LOAD_TIMEOUT=SECONDS sets the wait)") from None


def run_qat(detector: Detector, ckpt: dict, cal: CalibrationSet, data: str | None, *, epochs: int = 1,
            lr: float | None = None, batch: int = 8, subset_size: int = 300, keep_float: int = 2,
            work_dir: Path | None = None, progress: bool = True,
            log: Callable[[str], None] | None = print, preset: str = "mixed",
            threads: int | None = None) -> tuple[Detector, dict]:
    """Fine-tune ``detector`` under NNCF fake quantization; returns (float folded detector, summary).

    ``preset``: NNCF's, as the exports after it take it (``--preset``: a performance export was
    fine-tuned under mixed, asymmetric activations). ``threads``: torch's and OpenCV's for the
    fine-tune (``train.threads``).

    ``progress``: the trainer's bars; ``log`` receives the lines (the trainer's too; None: none).

    ``keep_float`` most error-sensitive convs (the NNCF exports' ``nncf_keep_float``) stay float
    while fine-tuning; the summary names them (``float_convs``) for the exports to keep float.

    The trainer's per-epoch files go to a temporary folder inside ``work_dir`` (default: the
    system's) and are removed at the end, interrupted or not: there is nothing to resume from.
    """
    import nncf

    if not data:
        raise UserError(needs_data(qat=True, why="its train split fine-tunes the quantized model"))
    if epochs < 1:
        raise BadArgument(f"{flag_value('--epochs', 'epochs', epochs)}: QAT needs at least one epoch")
    lr = DEFAULT_LR if lr is None else lr
    say = line_sink(log)
    from ..data.spec import read_split_for

    train = read_split_for(data, "train", len(ckpt["class_names"]), QAT_DATA_ADVICE)
    from ..engine.evaluator import model_data_notes

    # the class count alone was checked: other names or ids fine-tune class i on the data's i-th class
    for note in model_data_notes(ckpt["class_names"], ckpt.get("category_ids"), train, pairs="QAT"):
        say(note)
    det = fold_batchnorm(detector).eval()
    template = {k: v.clone() for k, v in det.state_dict().items()}
    n = min(subset_size, len(cal))  # the first n, as PTQ's statistics take them
    ds = nncf.Dataset([torch.from_numpy(cal.data[i:i + 1].copy()) for i in range(n)])
    from . import scopes
    from .ptq import _kept_float, sensitive_convs

    # The same convs, measured the same way on the same weights, as a PTQ export would keep float.
    if keep_float > 0:  # minutes on a busy CPU: without a bar (--no-progress) the run looked hung
        s = "s" if n != 1 else ""
        say(f"QAT: measuring each conv's INT8 error on {n} calibration image{s} to find {_kept_float(keep_float)}")
    float_convs = sensitive_convs(det, cal.data[:n], keep_float, progress=progress)
    example = torch.from_numpy(cal.data[:1].copy())
    ignored = nncf.IgnoredScope(names=scopes.torch_conv_node_names(det, example, float_convs))
    say(f"QAT: NNCF fake quantization on {n} calibration image{'s' if n != 1 else ''}; {_kept_float(keep_float)}"
        + (f": {', '.join(float_convs)}" if float_convs else ""))
    from .ptq import _nncf_preset

    with nncf_extension_wait():
        qmodel = nncf.quantize(det, ds, preset=_nncf_preset(preset), subset_size=n, ignored_scope=ignored)
    frozen = freeze_quantizer_ranges(qmodel)
    say(f"QAT: {frozen} quantizer range parameters held at their calibrated values")
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    # Fine-tuned and scored at the calibration set's size, the exported graph's: a rectangular
    # set (--img-size 416x320) trains on the 416x320 letterbox the graph will see.
    h, w = (int(v) for v in cal.size)
    cache = len(train.samples) * h * w * 3 <= CACHE_MAX_BYTES
    recipe = qat_recipe(ckpt["variant"], h if h == w else (h, w), epochs=epochs, lr=lr, batch=batch,
                        cache_images=cache, threads=threads)
    # In the system temp folder, named for this process (owners.owned_temp_dir): the next run on this
    # host removes one a kill -9 left. quantize passes its staging folder, which its own sweep removes.
    with (owned_temp_dir("yolox_edge_qat_") if work_dir is None
          else tempfile.TemporaryDirectory(prefix=".qat_", dir=work_dir)) as tmp:
        trainer = _make_trainer(qmodel)(recipe, data=data, out=Path(tmp) / "run", progress=progress,
                                        log=log)
        with nncf_extension_wait():
            summary = trainer.train()
    kept = int(summary["best_epoch"]) if trainer.val_split is not None else epochs
    # The float weights of the best epoch by fake-quantized val AP (NNCF keeps its quantizer
    # state under other keys). Epoch 0 means the untouched folded weights, not NNCF's
    # bias-corrected copy: the exporters bias-correct themselves, so the result is then PTQ's.
    state = template if kept == 0 else trainer.best_state
    missing = [k for k in template if k not in state]
    if missing:
        raise RuntimeError(f"QAT model lost parameters {missing[:3]}; NNCF changed the module layout")
    out = fold_batchnorm(detector).eval()
    out.load_state_dict({k: state[k].detach().cpu() for k in template})
    per_epoch = {0: trainer.start_ap, **{int(r["epoch"]): r["AP"] for r in summary.get("rows", []) if "AP" in r}}
    info = {"epochs": epochs, "lr": lr, "batch": batch, "data": str(data), "engine": f"nncf {nncf.__version__}",
            "preset": preset,
            "kept_epoch": kept, "calibration_images": n, "quantizer_ranges": "frozen at calibration",
            "float_convs": float_convs,  # float while fine-tuning; the NNCF exports keep exactly these
            # the best fake-quantized torch AP (training-time); None without a val split (the trainer's -1.0)
            "fake_quant_ap": summary.get("best_ap") if trainer.val_split is not None else None,
            "fake_quant_ap_per_epoch": per_epoch,
            "trainer": "engine.trainer.Trainer + loss.YOLOXLoss"}
    why = " (fine-tuning did not raise val AP: the exports are PTQ's)" if kept == 0 else ""
    # Named as what it is: the exports re-derive their INT8 graphs and score differently.
    ap = "" if info["fake_quant_ap"] is None else (f"; training-time AP {100 * info['fake_quant_ap']:.2f} "
                                                   "(fake-quantized torch model, not an export's)")
    say(f"QAT: done ({epochs} epoch(s), lr {lr:g}); kept epoch {kept}{why}{ap}")
    return out, info
