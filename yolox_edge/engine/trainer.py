"""The YOLOX trainer: SGD + warm-cos schedule, EMA, multi-scale, the no-aug stage, COCO AP
evaluation of the EMA model, atomic best/last checkpoints with full resume state, DDP.

``Trainer(recipe, data=SPEC, out=DIR).train()`` is the whole run; ``yolox-edge train`` is a
thin layer over it. Hooks (engine.hooks.Hook) see every epoch and iteration.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..config import (MACHINE_KEYS, DataCfg, Recipe, apply_machine_settings, check_recipe, load_recipe, recipe_diff,
                      recipe_from_checkpoint)
from ..progress import first_few, line_sink, progress_bar
from ..thresholds import EVAL_MAX_DET
from ..threads import cpu_threads
from ..data.dataset import DetectionDataset, collate
from ..data.preprocess import PreprocessConfig
from ..data.check import SIZE_MISMATCH, problem_kind, split_problems
from ..data.spec import DataSpec, Split, load_spec, read_split
from ..errors import OUT, UserError, format_size, in_python, require_out_folder
from ..loss import YOLOXLoss
from ..models import VARIANTS, create_model
from . import distributed as D
from .checkpoint import load_checkpoint, save_checkpoint
from .ema import ModelEMA, unwrap
from .finetune import set_bn_eval, set_frozen, transfer_weights
from .hooks import BusyCpuNote, Hook, RunLog
from .multiscale import describe_sizes, resize_batch, size_at, size_range
from .optim import build_optimizer, set_lr
from .schedule import WarmCosSchedule, clamp_no_aug_epochs
from .state import capture_rng, restore_rng, skip_count


class TrainResult(dict):
    """What ``Trainer.train()`` returns: ``best`` and ``last`` (the checkpoints, Path; ``best`` is
    written at the first evaluation), ``best_ap``, ``best_epoch`` (-1.0 and -1 when nothing was
    evaluated) and ``best_per_class`` (per class: class, instances, AP, AP50) of the best
    evaluation, ``epochs`` (the schedule's), ``rows`` (one dict per epoch: lr, losses, times, AP
    when evaluated), ``skipped_samples`` (unreadable images replaced) and ``main`` (False on the
    other processes of a multi-GPU run), each an attribute.

    It is also the dict ``train()`` returned before, with the same keys in their order (a dict
    subclass, so ``json.dumps(run)`` and ``run["note"] = ...`` still work): ``run["best"]`` and
    ``run["last"]`` are the str paths they were."""

    FIELDS = ("epochs", "best_ap", "best_epoch", "best_per_class", "last", "best", "skipped_samples", "rows", "main")

    def __init__(self, *, best: str | Path, last: str | Path, best_ap: float, best_epoch: int,
                 best_per_class: list[dict] | None = None, epochs: int = 0, rows: list[dict] | None = None,
                 skipped_samples: int = 0, main: bool = True) -> None:
        super().__init__(epochs=epochs, best_ap=best_ap, best_epoch=best_epoch,
                         best_per_class=[] if best_per_class is None else best_per_class, last=str(last),
                         best=str(best), skipped_samples=skipped_samples, rows=[] if rows is None else rows,
                         main=main)

    @property
    def best(self) -> Path:
        """The best checkpoint (best.pt), written at the first evaluation."""
        return Path(self["best"])

    @property
    def last(self) -> Path:
        """The last checkpoint (last.pt), resumable."""
        return Path(self["last"])

    @property
    def best_ap(self) -> float:
        """AP of the best evaluation (-1.0: none)."""
        return self["best_ap"]

    @property
    def best_epoch(self) -> int:
        """Epoch of the best evaluation (-1: none)."""
        return self["best_epoch"]

    @property
    def best_per_class(self) -> list[dict]:
        """Per class: class, instances, AP, AP50 of the best evaluation."""
        return self["best_per_class"]

    @property
    def epochs(self) -> int:
        """The schedule's epochs."""
        return self["epochs"]

    @property
    def rows(self) -> list[dict]:
        """One dict per epoch: lr, losses, times, AP when evaluated."""
        return self["rows"]

    @property
    def skipped_samples(self) -> int:
        """Unreadable images replaced."""
        return self["skipped_samples"]

    @property
    def main(self) -> bool:
        """False on the other processes of a multi-GPU run."""
        return self["main"]


class _Repeat(torch.utils.data.Dataset):
    """``k`` passes over a dataset as one epoch (fewer per-epoch evals/saves on tiny data)."""

    def __init__(self, ds: DetectionDataset, k: int) -> None:
        self.ds, self.k = ds, k

    def __len__(self) -> int:
        return len(self.ds) * self.k

    def __getitem__(self, i: int):
        # the whole index: DetectionDataset wraps it, and each pass draws its own augmentation
        return self.ds[i]


RUN_FILES = ("last.pt", "best.pt", "log.csv", "log.json", "log.png")  # what a run writes into its folder
RESUME = in_python("--resume", "resume=True")
_CHECK_BAR_MIN = 20000  # images: below this the opening header check takes a second or two, no bar


def refuse_earlier_run(folder: Path) -> None:
    """A new run never writes over a previous run's files (or a best.pt put there by hand)."""
    taken = [n for n in RUN_FILES if (Path(folder) / n).exists()]
    if taken:
        hint = f"pass {RESUME} to continue it, or" if "last.pt" in taken else \
            "move them away or"
        raise UserError(f"{folder}: already holds {', '.join(taken)}; {hint} choose another {OUT}")


def require_resumable(last: Path, run: Path) -> None:
    """UserError unless ``last`` (the last.pt of the run in folder ``run``) is there to resume:
    ``train --resume`` and ``pipeline --resume`` alike. Starting over instead, on a mistyped --out,
    would be an hour's run nobody asked for beside the run meant to go on."""
    if Path(last).is_file():
        return
    missing = "" if Path(run).is_dir() else f" ({run} does not exist: check {OUT})"
    # "without --resume (resume=True in Python)" would read as if resume=True were the way to start over
    start_over = in_python("without --resume", "resume=False")
    raise UserError(f"{last}: nothing to resume{missing}; run {start_over} to start {run}")


def resume_flags_note(last: Path, flags: list[str]) -> str:
    """The note for flags given with a resume that has no recipe of its own: the run goes on
    with the recipe stored in ``last`` (its schedule, optimizer state and EMA were made for
    it), so the flags are not used; a longer or different run starts from its weights."""
    return (f"note: --resume continues with the recipe stored in {last}; not used: {', '.join(flags)}. "
            f"To train longer or differently, start a new --out with --weights {last}")


def started_from(ckpt: dict) -> str | None:
    """The weights a run's checkpoint records it started from (None: from scratch)."""
    return (ckpt.get("source") or {}).get("weights") or None


def is_run_weights(weights: str | Path, started: str | None) -> bool:
    """True when ``weights`` names the file the run started from: the Ctrl-C hint's 'same command
    with --resume' repeats its --weights, which is no change to name."""
    if not started:
        return False
    if str(weights) == str(started):
        return True
    try:
        return os.path.samefile(weights, started)
    except OSError:  # either is gone: not shown to be the same file
        return False


def unused_resume_weights(last: Path, weights: str | Path | None) -> str | None:
    """``'--weights X'`` when a resume of ``last`` is given weights other than those its run
    started from (they are not used: the run goes on from its own); None when there are none,
    they are the run's, or ``last`` cannot be read (the Trainer says why)."""
    if not weights or not Path(last).is_file():
        return None
    try:
        started = started_from(load_checkpoint(last))
    except UserError:
        return None
    return None if is_run_weights(weights, started) else f"--weights {weights}"


def warmup_only_note(schedule: WarmCosSchedule) -> str | None:
    """A note when every step of the schedule falls early in its warm-up, so the weights barely
    move: a 1-epoch smoke run on 32 images made one step, at lr 0, and ended 'done: best AP ...'
    with best.pt holding the starting weights. None for a schedule that reaches a tenth of its lr."""
    total = schedule.total_iters
    # the warm-up rises and the cosine falls: the largest lr is at the last step or the warm-up's end
    top = schedule(min(total - 1, schedule.warmup_iters))
    if top >= 0.1 * schedule.lr:
        return None
    return (f"note: this schedule's {total} optimizer step(s) all fall early in its warm-up (lr at most {top:.2g}, "
            f"against {schedule.lr:.2g} after it): the weights will barely move; give more epochs or images, a "
            "smaller train.batch, or a shorter train.warmup_epochs")


class Trainer:
    """One training run into ``out`` (``last.pt``, ``best.pt``, ``log.csv/json/png``).

    ``progress=False`` turns off the per-epoch progress bars; ``log`` receives the run's lines
    (epoch summaries, notes; None: none). With DDP only rank 0 reports.

    ``machine``: ``--set`` items of the machine's settings (``config.MACHINE_KEYS``: data.workers,
    data.cache_images, train.threads, train.device), applied over the recipe, a resumed run's
    stored one included (for this process: ``last.pt`` keeps the run's own). Every other value
    of a resumed run is its stored recipe's."""

    # Whether the first CPU epoch says so when other processes took its cores (hooks.BusyCpuNote).
    # A caller that trains inside a longer run (quantize --qat) says it for the whole run with its
    # own flag instead: this one names --set train.threads=1, which that command does not take.
    busy_cpu_note: bool = True

    def __init__(self, recipe: Recipe | str | Path | None, *, data: str | Path, out: str | Path,
                 weights: str | Path | None = None, resume: bool = False, progress: bool = True,
                 hooks: list[Hook] | None = None, log: Callable[[str], None] | None = print,
                 machine: list[str] | None = None) -> None:
        if recipe is None and not resume:
            raise UserError(f"a new run needs a recipe ({in_python('--recipe', 'recipe=')}); only {RESUME} takes "
                            "the one stored in last.pt")
        if recipe is not None and not isinstance(recipe, Recipe):  # a YAML, as `train --recipe` takes
            recipe = load_recipe(recipe)
        self.machine = list(machine or [])
        # keys and types checked now, ranges with the recipe, before data and weights are read
        apply_machine_settings(Recipe(), self.machine)
        if recipe is not None and self.machine:  # a copy: the caller's recipe is not changed
            recipe = apply_machine_settings(recipe, self.machine)
        if recipe is not None:
            check_recipe(recipe)  # ranges and sizes, before data and weights are read
        self.recipe, self.data = recipe, data
        self._run_recipe: Recipe | None = None  # a resumed run's stored recipe, which its checkpoints keep
        self.out = require_out_folder(out)  # before data and model are built
        self.weights, self.resume, self.progress = weights, resume, progress
        self.hooks: list[Hook] = list(hooks or [])
        self._log = line_sink(log)
        self.start_epoch, self.best_ap, self.best_epoch = 0, -1.0, -1
        # per-class AP / AP50 / instances of the last evaluation and of the best epoch (train()'s summary)
        self.last_per_class: list[dict] = []
        self.best_per_class: list[dict] = []
        self.rows: list[dict] = []

    def log(self, msg: str) -> None:
        """Send one line to the ``log`` the trainer was given (on the main process only)."""
        if self.dist.is_main:
            self._log(msg)

    # ---------------------------------------------------------------- setup
    def _setup(self) -> None:
        resume_ckpt = self._load_resume() if self.resume else None
        if resume_ckpt is None:
            refuse_earlier_run(self.out)
        unused, machine = [], []
        ignored = None  # weights given to a resume that are not the run's
        if resume_ckpt is not None:
            stored = recipe_from_checkpoint(resume_ckpt["recipe"])
            run = apply_machine_settings(stored, self.machine)
            check_recipe(run)
            unused = recipe_diff(self.recipe, run) if self.recipe is not None else []
            machine = recipe_diff(run, stored)
            self.recipe, self._run_recipe = run, stored
            started = started_from(resume_ckpt)
            # other weights given to a resume were dropped without a word (and then named in its
            # checkpoints as the run's starting weights); the run's own stay named in those
            ignored = self.weights if self.weights and not is_run_weights(self.weights, started) else None
            self.weights = started
        r, t = self.recipe, self.recipe.train
        self.device = D.local_device(t.device)
        self.dist = D.init_distributed(self.device)
        self._say_unused(unused)
        if ignored:
            self.log(f"note: --resume continues from the weights in {self.out / 'last.pt'}; not used: --weights "
                     f"{ignored} (the run started from {self.weights or 'no weights'}). To start from "
                     f"{ignored}, start a new --out")
        if machine:
            shown = ", ".join(f"{k}={g!r} (run: {v!r})" for k, g, v in machine)
            self.log(f"resume: {shown} from this command (settings of the machine, not of what the run "
                     f"trains; {self.out / 'last.pt'} keeps the run's own)")
        if t.threads:
            torch.set_num_threads(t.threads)
        if r.data.workers > 0:
            # OpenCV's thread pool does not survive fork(): a worker that touches it can hang
            # forever (seen: cv2.setNumThreads in a worker after the parent resized images).
            # With one thread in the parent there is no pool to inherit.
            import cv2
            cv2.setNumThreads(1)
        elif t.threads:
            # workers: 0 decodes, augments and resizes in this process: OpenCV's pool took every
            # core whatever train.threads said (train()'s cpu_threads() gives the count back)
            import cv2
            cv2.setNumThreads(t.threads)
        seed = t.seed + self.dist.rank
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        weights = None
        if resume_ckpt is None and self.weights:
            # Checked before the data is read and cached (minutes on a large set), and before
            # the recipe's notes, which would be moot
            weights = load_checkpoint(self.weights)
            self._check_variant(self.weights, weights, r.model.variant)
        spec = load_spec(self.data)
        self.train_split = read_split(spec, r.data.train_split)
        # A val split named in the recipe must exist (a typo trained the whole run without scoring it);
        # a spec without the default 'val' trains unscored, and says so
        named = r.data.val_split != DataCfg.val_split
        self.val_split: Split | None = (read_split(spec, r.data.val_split)
                                        if named or r.data.val_split in spec.splits else None)
        if self.val_split is None:
            self.log(f"note: {spec.path} has no split {r.data.val_split!r}: no epoch is evaluated and no best.pt "
                     "is written (--set data.val_split=NAME scores another split)")
        self.names = list(self.train_split.names)
        # the dataset's own id of each class (COCO category ids), kept in the checkpoint; None for voc/yolo
        self.category_ids = self.train_split.category_ids
        if not self.train_split.samples:
            raise UserError(f"{spec.path}: split {r.data.train_split!r} has no usable images")
        if self.val_split is not None:
            self._check_val_classes(spec, r.data.train_split, r.data.val_split)
        if self.dist.is_main:  # only said there: the other ranks would check the same files for nothing
            self._say_data_problems(spec, r.data.train_split, self.train_split)
            # the val split scores every evaluation; a spec naming the train files for it is said once
            if self.val_split is not None and (spec.split_paths(r.data.val_split)
                                               != spec.split_paths(r.data.train_split)):
                self._say_data_problems(spec, r.data.val_split, self.val_split)
        # Training reads the samples only: the train split's COCO ground truth (its 895k annotations as
        # dicts for a 120k-image json) was held through the run, and forked into every data worker
        self.train_split.coco_gt = None
        if not any(len(s.labels) for s in self.train_split.samples):
            # Every image a background one: the usual cause is labels the reader did not find (a YOLO
            # 'labels' folder of another split, pixel instead of 0..1 coordinates), and the run would
            # train the objectness down to nothing for its whole schedule. After the data lines: they
            # name the first problem.
            raise UserError(f"{spec.path}: split {r.data.train_split!r} has {len(self.train_split.samples)} "
                            "images but not one labelled box, so there is nothing to learn; run "
                            f"'yolox-edge data check {spec.path}' to see what became of the labels")
        # (H, W) throughout: a rectangular recipe size trains, evaluates and is saved as one
        self.input_size, self.test_size = r.input_hw, r.test_hw
        # the multi-scale size in use (H, W): drawn every multiscale_interval iterations and saved
        # in last.pt, so a resumed run's first iterations train at the size the run had reached
        self.train_size = self.input_size

        torch.manual_seed(t.seed)  # the same initial weights on every rank
        self.model = create_model(r.model.variant, num_classes=len(self.names)).to(self.device)
        torch.manual_seed(seed)
        self.dataset = DetectionDataset(self.train_split.samples, img_size=self.input_size, aug=r.aug, seed=t.seed,
                                        cache_images=r.data.cache_images)
        world = self.dist.world_size
        if t.batch % world:
            raise UserError(f"train.batch={t.batch} is not divisible by the {world} processes")
        self.batch_per_rank = t.batch // world
        if r.data.repeat < 1:
            raise UserError(f"data.repeat={r.data.repeat}: must be at least 1")
        self.epoch_data = _Repeat(self.dataset, r.data.repeat) if r.data.repeat > 1 else self.dataset
        self.iters_per_epoch = max(1, math.ceil(len(self.epoch_data) / t.batch))
        self.no_aug_epochs = clamp_no_aug_epochs(t.no_aug_epochs, t.epochs, t.warmup_epochs)
        # said when the run starts; a resume repeated it, about a schedule already under way
        if self.no_aug_epochs != t.no_aug_epochs and t.no_aug_epochs > 0 and resume_ckpt is None:
            self.log(f"note: train.no_aug_epochs {t.no_aug_epochs} -> {self.no_aug_epochs}: at most half of the "
                     f"{t.epochs} epoch{'s' if t.epochs != 1 else ''} after warm-up run without Mosaic")
        self.schedule = WarmCosSchedule(t.basic_lr_per_img * t.batch, t.epochs, self.iters_per_epoch,
                                        t.warmup_epochs, t.warmup_lr_start, t.min_lr_ratio, self.no_aug_epochs)
        if weights is not None:
            self._load_weights(self.weights, weights)
        self.optimizer = build_optimizer(self.model, self.schedule.lr, t.momentum, t.weight_decay, t.nesterov)
        self.ema = ModelEMA(self.model, t.ema_decay) if t.ema else None
        self.use_amp = bool(t.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        if resume_ckpt is not None:
            self._restore(resume_ckpt)
        self.loss_fn = YOLOXLoss(len(self.names), strides=self.model.strides)
        self.train_model: torch.nn.Module = self.model
        if self.dist.enabled:
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=t.freeze_backbone_epochs > 0 or t.freeze_stem)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.run_log = RunLog(self.out, self.rows)
            if resume_ckpt is not None and self.rows:
                # a stop after last.pt was saved but before the logs were written left them an epoch
                # short, for good when that was the schedule's last epoch
                self.run_log.write()
            # the note on a busy CPU right after the first epoch's line, which the run log follows
            self.hooks[:0] = [self.run_log] + ([BusyCpuNote()] if self.busy_cpu_note else [])

    def _check_val_classes(self, spec: DataSpec, train: str, val: str) -> None:
        """The val split scores classes by index: another class count is refused now (it failed
        at the first evaluation, an epoch later); other names or category ids with the same count
        are said once, as evaluation pairs them by position (sorted id for COCO)."""
        v = self.val_split
        assert v is not None
        if len(v.names) != len(self.names):
            raise UserError(f"{spec.path}: split {val!r} has {len(v.names)} classes, {train!r} has {len(self.names)}; "
                            "evaluation scores the val split by class index, so give both splits the same "
                            "categories (or one names: list for both)")
        if v.names != self.names or v.category_ids != self.category_ids:
            def few(names: list[str], ids: list[int] | None) -> str:
                return first_few([n if ids is None else f"{n} (id {i})" for n, i in zip(names, ids or names)], 4)

            self.log(f"note: split {val!r} has other classes than {train!r} ({few(v.names, v.category_ids)} vs "
                     f"{few(self.names, self.category_ids)}); evaluation pairs them by position (COCO: sorted id), "
                     f"and the checkpoint keeps the names and ids of {train!r}")

    def _say_data_problems(self, spec: DataSpec, name: str, split: Split) -> None:
        """Count a split's problems as `data check` lists them (the same function, reading image
        headers instead of decoding: seconds for 100k images) and state a size mismatch.

        The reader's own problems alone left out boxes clipped or dropped, missing and broken image
        files, and COCO images whose recorded width/height differ from the file (4 of 19 on a
        broken COCO set).
        """
        probs, _ = split_problems(spec, name, split, decode=False, threads=min(8, os.cpu_count() or 1),
                                  progress=self.progress and len(split.samples) >= _CHECK_BAR_MIN)
        if not probs:
            return
        self.log(f"data: {len(probs)} problem(s) in {name} (first: {probs[0]}); "
                 f"run 'yolox-edge data check {spec.path}' for the list")
        sizes = [p for p in probs if problem_kind(p) == SIZE_MISMATCH]
        # Training uses each file's own size, which the boxes may not have been drawn on: always
        # one line of its own (unless the count line just showed the only one)
        if sizes and (sizes[0] != probs[0] or len(sizes) > 1):
            more = f" ({len(sizes) - 1} more image(s) like it)" if len(sizes) > 1 else ""
            self.log(f"data: {sizes[0]}{more}")

    def _say_unused(self, diff: list) -> None:
        # A resumed run keeps its own recipe (its schedule, optimizer state and EMA were made
        # for it); a changed value would be silently dropped, so name each one.
        if diff:
            shown = first_few([f"{k}={g!r} (run: {r!r})" for k, g, r in diff], 8)
            machine = [k for k, _, _ in diff if k in MACHINE_KEYS]
            named = in_python("--set KEY=VALUE", "machine=['KEY=VALUE']")
            how = f"; {', '.join(machine)} (of the machine) apply when named: {named}" if machine else ""
            self.log(f"note: resuming {self.out / 'last.pt'} with the recipe stored in it; not used from the "
                     f"given recipe: {shown}. To train with them, start a new --out (--weights "
                     f"{self.out / 'last.pt'} to start from these weights){how}")

    def _load_resume(self) -> dict:
        path = self.out / "last.pt"
        require_resumable(path, self.out)
        return load_checkpoint(path)

    def _check_variant(self, path: str | Path, ckpt: dict, variant: str) -> None:
        """UserError unless the weights are of the recipe's ``variant`` (or share its tensors)."""
        src, dst = VARIANTS.get(ckpt["variant"]), VARIANTS[variant]
        if src is not None and src.act != dst.act and src.shares_weights_with(dst):
            # e.g. COCO Nano (SiLU) -> nano_hswish: same tensors, the fine-tune adapts to the activation
            self.log(f"weights: yolox_{src.name} ({src.act}) into yolox_{dst.name} ({dst.act})")
        elif ckpt["variant"] != variant:
            item = f"model.variant={ckpt['variant']}"
            raise UserError(f"{path}: weights are yolox_{ckpt['variant']}, the recipe trains yolox_"
                            f"{variant}; use the matching recipe or {in_python(f'--set {item}', f'overrides={[item]!r}')}")

    def _load_weights(self, path: str | Path, ckpt: dict) -> None:
        """Copy the checkpoint's tensors that fit into the model (checked by ``_check_variant``)."""
        state = ckpt.get("ema") or ckpt["model"]
        skipped, missing = transfer_weights(self.model, state)
        kept = len(state) - len(skipped)
        self.log(f"weights: kept {kept}/{len(state)} tensors from {path}")
        if skipped:
            own = self.model.state_dict()
            desc = [f"{k} {list(state[k].shape)}->{list(own[k].shape) if k in own else 'absent'}" for k in skipped]
            self.log(f"weights: skipped {len(skipped)} (re-initialised; {len(ckpt['class_names'])} -> "
                     f"{len(self.names)} classes): " + ", ".join(desc))
        if kept < len(state) // 2:
            raise UserError(f"{path}: only {kept} of {len(state)} tensors fit this model; wrong weights?")
        if ckpt.get("bn_folded") and self.recipe.train.bn_reestimate_batches > 0:
            from ..models.bn import reestimate_folded_bn
            # the training dataset's bad-sample flags: a bad file is named once per run, not per dataset
            ds = DetectionDataset(self.train_split.samples, img_size=self.input_size, aug=None, seed=0,
                                  share_flags=self.dataset)
            g = torch.Generator().manual_seed(self.recipe.train.seed)
            loader = DataLoader(ds, batch_size=min(16, len(ds)), sampler=RandomSampler(ds, generator=g),
                                collate_fn=collate, num_workers=0)
            n = reestimate_folded_bn(self.model, (x.to(self.device) for x, _ in loader),
                                     max_batches=self.recipe.train.bn_reestimate_batches)
            self.log(f"weights: BN was folded (imported ONNX); re-estimated BN statistics on {n} training images")
        elif ckpt.get("bn_folded"):
            # Identity BN statistics under folded weights: train-mode BN normalises with batch
            # statistics the weights were never trained with (measured: COCO Nano on raccoon_voc,
            # finetune_nano_cpu, 2 epochs: AP 0.0000 against 0.41 with re-estimation).
            self.log(f"warning: {path} has BatchNorm folded into its convs (imported ONNX) and "
                     f"train.bn_reestimate_batches=0, so BN statistics are not re-estimated: training will "
                     f"destroy the pretrained weights; leave train.bn_reestimate_batches at its default (8)")

    def _restore(self, ckpt: dict) -> None:
        if list(ckpt["class_names"]) != self.names:
            raise UserError(f"{self.out / 'last.pt'}: trained on classes {ckpt['class_names'][:5]}..., the data "
                            f"spec has {self.names[:5]}...; resume with the same data or start a new {OUT}")
        ids = ckpt.get("category_ids")  # absent in a run started before checkpoints kept them
        if ids is not None and list(ids) != self.category_ids:
            now = "none" if self.category_ids is None else f"{self.category_ids[:5]}..."
            raise UserError(f"{self.out / 'last.pt'}: trained on category ids {list(ids)[:5]}..., the data spec "
                            f"has {now}; resume with the same data or start a new {OUT}")
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None and ckpt.get("ema"):
            self.ema.load_state_dict({"model": ckpt["ema"], "updates": ckpt.get("ema_updates", 0)})
        if ckpt.get("optimizer"):
            self.optimizer.load_state_dict(ckpt["optimizer"])
        st = ckpt.get("train_state") or {}
        self.start_epoch = int(ckpt.get("epoch", 0))
        self.best_ap, self.best_epoch = float(st.get("best_ap", -1.0)), int(st.get("best_epoch", -1))
        self.best_per_class = list(st.get("best_per_class") or [])
        self.rows = list(st.get("log", []))
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        if st.get("rng"):
            restore_rng(st["rng"], self.dist.rank)
        size = st.get("size")  # absent in a checkpoint written before it was saved
        if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
            self.train_size = (int(size[0]), int(size[1]))
        was = st.get("iters_per_epoch")
        if isinstance(was, int) and was != self.iters_per_epoch:
            self.log(f"note: the train split now gives {self.iters_per_epoch} iterations per epoch where the run "
                     f"started with {was}: the learning-rate schedule goes on over the new count")
        done = self.start_epoch >= self.recipe.train.epochs
        # a finished run resumed read like one about to train (its epoch line, then 'done')
        self.log(f"resume: {self.out / 'last.pt'} at epoch {self.start_epoch}/{self.recipe.train.epochs}"
                 + ("; the schedule is finished: nothing left to train (to train longer, start a new --out with "
                    f"--weights {self.out / 'last.pt'})" if done else ""))

    # ---------------------------------------------------------------- loop
    def _loader(self, epoch: int) -> DataLoader:
        t = self.recipe.train
        if self.dist.enabled:
            sampler = DistributedSampler(self.epoch_data, self.dist.world_size, self.dist.rank, shuffle=True, seed=t.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(self.epoch_data, generator=torch.Generator().manual_seed(t.seed + epoch))
        g = torch.Generator().manual_seed(t.seed * 1000 + epoch * 10 + self.dist.rank)
        return DataLoader(self.epoch_data, batch_size=self.batch_per_rank, sampler=sampler, collate_fn=collate,
                          num_workers=self.recipe.data.workers, generator=g, drop_last=False,
                          pin_memory=self.device.type == "cuda")

    def _size_range(self) -> tuple[int, int] | None:
        """Multi-scale training sizes (lo, hi) in units of 32 of the long side, or None for the
        fixed input size (``engine.multiscale``)."""
        t = self.recipe.train
        return size_range(self.input_size, t.multiscale_range, t.random_size)

    def describe_train_sizes(self) -> str:
        """The training input sizes in words (what ``_random_size`` draws from), width x height."""
        return describe_sizes(self.input_size, self._size_range())

    def _random_size(self) -> tuple[int, int]:
        """The next multi-scale size (H, W), the same on every process (rank 0 draws it)."""
        rng = self._size_range()
        if rng is None:
            return self.input_size
        return size_at(D.broadcast_int(random.randint(*rng), self.dist, self.device), self.input_size)

    def _set_train_mode(self, epoch: int) -> None:
        t = self.recipe.train
        self.model.train()
        frozen = epoch < t.freeze_backbone_epochs
        set_frozen(self.model.backbone, frozen)
        if t.freeze_stem:
            # An option for short fine-tunes; imported (BN-folded) stems train safely since BN
            # re-estimation gives them unit-gain weights (models/bn.py).
            set_frozen(self.model.backbone.stem, True)
        if frozen or t.freeze_stem:
            set_bn_eval(self.model.backbone if frozen else self.model.backbone.stem)
        if t.freeze_bn:
            set_bn_eval(self.model)

    def train(self) -> TrainResult:
        """Run (or resume) the whole schedule; returns a ``TrainResult``: ``best`` and ``last``
        (checkpoint paths), ``best_ap``, ``best_epoch``, ``best_per_class``, ``epochs``, ``rows``
        (one dict per epoch), ``skipped_samples`` and ``main``. It still reads as the dict it was
        (``run["best"]``, a str path, and the other keys).

        ``train.threads`` (torch's threads, and OpenCV's too with ``data.workers: 0``, where this
        process decodes the images) and the OpenCV setting the data workers need hold for the run
        only: torch's and OpenCV's process-wide thread counts are put back when it ends."""
        # torch's and OpenCV's thread counts as they were before the run (both process-wide: a
        # notebook ran everything after a train.threads: 1 run on one thread)
        with cpu_threads():
            self._setup()
            t = self.recipe.train
            self.log(f"sizes: {self.describe_train_sizes()}; evaluated and exported at "
                     f"{format_size(self.test_size)}")
            note = warmup_only_note(self.schedule)
            if note and self.start_epoch == 0:
                self.log(note)
            try:
                self._evaluate_kept_epoch()
                for epoch in range(self.start_epoch, t.epochs):
                    self._train_epoch(epoch)
            finally:
                D.cleanup(self.dist)
        self.log(f"data: {self.dataset.skip_summary()}")
        return TrainResult(best=self.out / "best.pt", last=self.out / "last.pt", best_ap=self.best_ap,
                           best_epoch=self.best_epoch, best_per_class=self.best_per_class, epochs=t.epochs,
                           rows=self.rows, skipped_samples=skip_count(self.dataset), main=self.dist.is_main)

    def _train_epoch(self, epoch: int) -> None:
        t = self.recipe.train
        size = self.train_size
        no_aug = epoch >= t.epochs - self.no_aug_epochs
        self.dataset.set_aug(not no_aug)
        self.dataset.set_epoch(epoch)
        if no_aug and epoch == t.epochs - self.no_aug_epochs:
            self.log(f"epoch {epoch + 1}: no-aug stage (Mosaic/MixUp off, L1 loss on) for the last "
                     f"{self.no_aug_epochs} epoch(s)")
        for h in self.hooks:
            h.before_epoch(self, epoch)
        self._set_train_mode(epoch)
        loader = self._loader(epoch)
        sums: dict[str, float] = {}
        n_iter = 0
        t0 = time.perf_counter()
        bar = progress_bar(loader, desc=f"epoch {epoch + 1}/{t.epochs}", unit="it", leave=False,
                   disable=not (self.progress and self.dist.is_main))
        lr = 0.0
        for images, targets in bar:
            it = epoch * self.iters_per_epoch + n_iter
            lr = self.schedule(it)
            set_lr(self.optimizer, lr)
            images = images.to(self.device, non_blocking=True).float()
            targets = targets.to(self.device, non_blocking=True).float()
            images, targets = resize_batch(images, targets, size)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
                maps = self.train_model(images)
            out = self.loss_fn([m.float() for m in maps], targets, use_l1=no_aug)
            loss = out["total"]
            if not torch.isfinite(loss):
                raise UserError(f"loss is {loss.item()} at epoch {epoch + 1} iteration {n_iter + 1}; lower the "
                                f"learning rate (train.basic_lr_per_img) and {RESUME} from {self.out / 'last.pt'}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.model)
            parts = {k: float(out[k].detach() if torch.is_tensor(out[k]) else out[k]) for k in ("total", "iou", "obj", "cls", "l1") if k in out}
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            n_iter += 1
            bar.set_postfix({**{k: f"{v:.3f}" for k, v in parts.items() if k != "l1" or no_aug},
                             "lr": f"{lr:.2e}", "size": format_size(size)}, refresh=False)
            for h in self.hooks:
                h.after_iter(self, epoch, n_iter, parts)
            if t.multiscale_interval > 0 and (it + 1) % t.multiscale_interval == 0:
                size = self.train_size = self._random_size()
        bar.close()
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "iters": n_iter, "no_aug": int(no_aug),
                               **{f"loss_{k}": v / max(n_iter, 1) for k, v in sums.items()},
                               "train_s": round(time.perf_counter() - t0, 2), "skipped": skip_count(self.dataset)}
        if self._eval_due(epoch):
            if self.dist.is_main:
                try:
                    row.update(self.evaluate())
                except BaseException:
                    self._keep_unevaluated(epoch, row)
                    raise
        if self.dist.is_main:
            self._end_epoch(epoch, row)
        D.barrier(self.dist)

    # ---------------------------------------------------------------- eval + save
    def eval_model(self) -> torch.nn.Module:
        """The model evaluated and saved: the EMA copy when EMA is on."""
        return self.ema.ema if self.ema is not None else self.model

    def evaluate(self) -> dict[str, float]:
        """COCO AP of the EMA model on the val split (main process)."""
        from ..runtime.base import ModelInfo
        from ..runtime.predictor import Predictor
        from ..runtime.torch_backend import TorchBackend
        from .evaluator import evaluate

        model = self.eval_model()
        was = model.training
        info = ModelInfo(name=f"yolox_{self.model.variant}", class_names=self.names, category_ids=self.category_ids,
                         preprocess=PreprocessConfig(input_size=self.test_size), output_kind="decoded",
                         strides=tuple(self.model.strides))
        pred = Predictor(TorchBackend(model, device=str(self.device)), info, conf=self.recipe.train.eval_conf,
                         iou=self.recipe.train.eval_nms, max_det=EVAL_MAX_DET)
        res = evaluate(pred, self.val_split, batch=8, progress=False, conf=None, iou=None)  # the recipe's
        model.train(was)
        self.last_per_class = res["per_class"]
        return {"AP": res["AP"], "AP50": res["AP50"], "eval_s": res["seconds"]}

    def _eval_due(self, epoch: int) -> bool:
        """Whether the schedule evaluates after (0-based) ``epoch``."""
        t = self.recipe.train
        no_aug = epoch >= t.epochs - self.no_aug_epochs
        return self.val_split is not None and ((epoch + 1) % t.eval_interval == 0 or no_aug or epoch + 1 == t.epochs)

    def _evaluate_kept_epoch(self) -> None:
        """A resumed run whose last epoch was saved by ``_keep_unevaluated`` (its evaluation was
        interrupted or failed): evaluate it now, from the restored state, so that its AP, best.pt
        and the logs are not lost (for the schedule's last epoch nothing else would ever do it)."""
        if not self.start_epoch or not self.rows or self.rows[-1].get("epoch") != self.start_epoch:
            return
        row = dict(self.rows[-1])
        if "AP" in row or not self._eval_due(self.start_epoch - 1):
            return
        if self.dist.is_main:
            self.log(f"epoch {self.start_epoch} was trained but not evaluated: evaluating it now")
            try:
                row.update(self.evaluate())
            except BaseException:
                self.log(f"epoch {self.start_epoch} still not evaluated; --resume evaluates it")
                raise
            self._end_epoch(self.start_epoch - 1, row)
        D.barrier(self.dist)

    def _keep_unevaluated(self, epoch: int, row: dict[str, Any]) -> None:
        """The evaluation after ``epoch`` failed or was interrupted: save the trained epoch
        (no AP in its row) so that --resume goes on from it instead of training it again."""
        self._record(epoch, row)
        self.log(f"epoch {epoch + 1} trained but not evaluated; saved {self.out / 'last.pt'} (--resume continues)")

    def _record(self, epoch: int, row: dict[str, Any], best: bool = False) -> None:
        """``row`` becomes the log's entry for ``epoch`` (replacing any earlier one), saved in last.pt
        (and first in best.pt when ``best``).

        last.pt is written last: it is what --resume reads, so a stop between the two saves
        leaves last.pt at the epoch before, and the resumed run trains this epoch again and
        rewrites both (last.pt first had named this epoch best while best.pt still held an
        older one, which nothing put right when this was the schedule's last epoch)."""
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        if best:
            self.save(self.out / "best.pt", epoch + 1)
        self.save(self.out / "last.pt", epoch + 1)

    def _end_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        # A tie goes to the later epoch (more training; official YOLOX keeps the first): a short run
        # whose every evaluation scores AP 0 otherwise ships its first epoch as best.pt.
        improved = "AP" in row and row["AP"] >= self.best_ap
        if improved:
            self.best_ap, self.best_epoch = float(row["AP"]), epoch + 1
            self.best_per_class = self.last_per_class
        self._record(epoch, row, best=improved)
        ap = f"  AP {row['AP']:.4f} AP50 {row['AP50']:.4f}{' (best)' if improved else ''}" if "AP" in row else ""
        losses = " ".join(f"{k[5:]} {v:.3f}" for k, v in row.items() if k.startswith("loss_"))
        self.log(f"epoch {epoch + 1}/{self.recipe.train.epochs}  {losses}  lr {row['lr']:.2e}  "
                 f"{row['train_s']:.0f}s{ap}")
        for h in self.hooks:
            h.after_epoch(self, epoch, row)

    def save(self, path: Path, epochs_done: int) -> None:
        """Checkpoint with everything --resume needs (optimizer, EMA, epoch, RNG, log)."""
        train_state = {"best_ap": self.best_ap, "best_epoch": self.best_epoch, "log": self.rows,
                       "best_per_class": self.best_per_class,
                       "rng": capture_rng(), "iters_per_epoch": self.iters_per_epoch, "size": list(self.train_size),
                       "scaler": self.scaler.state_dict() if self.use_amp else {}}
        extra: dict[str, Any] = {"recipe": (self._run_recipe or self.recipe).to_dict(), "epoch": epochs_done,
                                 "optimizer": self.optimizer.state_dict(), "train_state": train_state,
                                 "bn_folded": False, "source": {"kind": "trained", "weights": str(self.weights or "")}}
        if self.ema is not None:
            extra.update(ema=self.ema.ema.state_dict(), ema_updates=self.ema.updates)
        save_checkpoint(path, unwrap(self.model), class_names=self.names, category_ids=self.category_ids,
                        preprocess=PreprocessConfig(input_size=self.test_size), **extra)
