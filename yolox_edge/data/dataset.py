"""The training dataset: samples -> augmented network inputs and padded targets.

``DetectionDataset(samples, img_size=S or (H, W), aug=AugConfig(...) | None)`` yields
``(image float32 [3, H, W] BGR 0..255, targets float32 [M, 5] = class, x1, y1, x2, y2)`` in
input pixels (H = W = S for a square size). ``aug=None`` is the inference contract (letterbox
only). A bad sample (missing, unreadable or truncated image; see ``check.load_image``) never
raises mid-epoch: it is flagged, replaced by another sample, and counted in ``skipped``. The flags live in shared
memory so DataLoader workers and the main process see the same count.
"""
from __future__ import annotations

import logging
import multiprocessing as mp

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError, input_hw
from ..progress import first_few
from . import check
from .sample import Sample
from .transforms import AugConfig, augment_hsv, drop_small, hflip, mixup, mosaic, pad_to

log = logging.getLogger(__name__)

_RANDOM_TRIES = 20  # random replacements tried before scanning for any readable sample

Item = tuple[np.ndarray, np.ndarray, np.ndarray]  # fitted image, boxes, labels


class DetectionDataset(Dataset):
    """Training/eval dataset over ``Sample`` records (see module docstring).

    ``img_size`` is S (square) or (H, W). ``cache_images=True`` decodes and fits every image
    once at construction (about H*W*3 bytes per image; worth it for small datasets on slow
    disks or few CPU cores). ``share_flags`` is another dataset over the same samples whose
    bad-sample flags this one uses: a file found bad by either is skipped by both and named once.

    The augmentation of index ``i`` depends on the seed, the epoch (``set_epoch``), ``i`` and how
    often this process drew ``i`` in the epoch, never on the DataLoader worker that draws it: a
    run trains on the same inputs with any number of workers. An index past the end is sample
    ``i % len`` again with an augmentation of its own (a trainer's ``data.repeat`` passes).
    """

    def __init__(self, samples: list[Sample], *, img_size: int | tuple[int, int], aug: AugConfig | None,
                 seed: int = 0, cache_images: bool = False,
                 share_flags: DetectionDataset | None = None) -> None:
        if not samples:
            raise UserError("the dataset has no samples; check the data spec (yolox-edge data check SPEC)")
        self.samples = list(samples)
        self.img_size = input_hw(img_size)  # (H, W)
        self.aug = aug
        self.aug_enabled = aug is not None
        self.seed = int(seed)
        self.epoch = 0
        self._draws: dict[int, int] = {}  # index -> draws of it in this epoch, in this process
        # One byte per sample in shared memory: 1 = bad. Forked/spawned workers inherit it.
        if share_flags is None:
            self._bad = mp.RawArray("b", len(self.samples))
        else:
            # e.g. the trainer's BN re-estimation pass over the training samples: with flags of
            # its own it named a missing file a second time in one run
            if [s.image for s in share_flags.samples] != [s.image for s in self.samples]:
                raise ValueError("share_flags: the other dataset has other samples")
            self._bad = share_flags._bad
        self._cache: list[Item | None] | None = None
        if cache_images:
            self._cache = [None] * len(self.samples)
            for i in range(len(self.samples)):
                try:
                    self._cache[i] = self._read(i)
                except check.BadSample as e:
                    self._flag(i, e)

    def __len__(self) -> int:
        return len(self.samples)

    # -- switches used by the trainer ------------------------------------------------------
    def set_aug(self, enabled: bool) -> None:
        """Mosaic/MixUp/affine on or off (off for the last epochs; HSV and flip stay, as official)."""
        self.aug_enabled = bool(enabled) and self.aug is not None

    def set_epoch(self, epoch: int) -> None:
        """Feed the epoch into the augmentation random stream (optional; varies epochs reproducibly).

        The per-epoch draw counts restart too, so a resumed run draws the same augmentations
        for the same epoch (given the same sampler order).
        """
        self.epoch = int(epoch)
        self._draws = {}

    @property
    def skipped(self) -> int:
        """How many distinct samples were found bad so far (all processes together)."""
        return int(sum(self._bad))

    def skipped_files(self) -> list[str]:
        """Image paths of the samples found unusable so far (replaced by others in training)."""
        return [str(self.samples[i].image) for i in range(len(self.samples)) if self._bad[i]]

    def skip_summary(self) -> str:
        """One line for the end of an epoch / of training."""
        n = self.skipped
        if n == 0:
            return f"0 of {len(self)} samples skipped"
        files = self.skipped_files()
        return (f"{n} of {len(self)} samples skipped as unreadable/missing ({first_few(files, 3)}); "
                "run `yolox-edge data check SPEC` for the full list")

    # -- loading ---------------------------------------------------------------------------
    def _read(self, i: int) -> Item:
        s = self.samples[i]
        reduce = 1
        if self.aug is not None and s.width > 0 and s.height > 0:  # aug=None: the exact inference contract
            # Largest JPEG reduction that still leaves at least the fitted size to resize from, and a
            # pixel on each side (a reduced PNG of 2 rows at 1/8 failed inside OpenCV's resize)
            fit = min(self.img_size[0] / s.height, self.img_size[1] / s.width)
            reduce = max((f for f in (1, 2, 4, 8) if f * fit <= 1.0 and f <= min(s.width, s.height)), default=1)
        img = check.load_image(s.image, reduce)
        h, w = img.shape[:2]
        # JPEG rounds the reduced size up, other formats down; anything else: the recorded size is wrong
        if reduce > 1 and (abs(w - s.width / reduce) >= 1 or abs(h - s.height / reduce) >= 1):
            img, reduce = check.load_image(s.image), 1  # not the recorded size (or not a JPEG)
        # boxes are in the recorded (full-size) pixels; clip to the full size the file has
        full_wh = (s.width, s.height) if reduce > 1 else (img.shape[1], img.shape[0])
        boxes, labels = check.training_targets(s, full_wh)
        r = min(self.img_size[0] / full_wh[1], self.img_size[1] / full_wh[0])  # the letterbox ratio
        # at least one row and column, as data.preprocess.letterbox: a 1200x2 strip at 416 resized to 0 rows,
        # which cv2.resize refuses with a traceback mid-epoch
        nh, nw = max(1, int(full_wh[1] * r)), max(1, int(full_wh[0] * r))
        if (nh, nw) != img.shape[:2]:
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return img, boxes * np.float32(r), labels

    def _flag(self, i: int, err: check.BadSample) -> None:
        if not self._bad[i]:
            self._bad[i] = 1
            # one plain line per bad file (no source-line echo as warnings.warn would print)
            log.warning("skipping bad sample: %s", err)

    def _load(self, i: int, rng: np.random.Generator) -> Item:
        """Sample ``i`` fitted to the input size, or a readable replacement."""
        n = len(self.samples)
        for attempt in range(_RANDOM_TRIES + n):
            if not self._bad[i]:
                if self._cache is not None and self._cache[i] is not None:
                    img, b, lab = self._cache[i]
                    return img, b.copy(), lab.copy()
                try:
                    return self._read(i)
                except check.BadSample as e:
                    self._flag(i, e)
            # random replacements first (keeps the epoch's mix), then a scan so we always end
            i = int(rng.integers(n)) if attempt < _RANDOM_TRIES else (i + 1) % n
        raise UserError(f"no readable image among the {n} samples (e.g. {self.samples[0].image}); "
                        "run `yolox-edge data check SPEC`")

    def _rng(self, i: int) -> np.random.Generator:
        # No cv2.setNumThreads here: in a fork()ed worker whose parent had already used OpenCV's
        # thread pool, reconfiguring the pool blocks forever in pthread_cond_destroy (seen in
        # tests/data/test_dataset.py and in training). Limit OpenCV threads in the parent instead.
        # Keyed by the index, not by a per-process call count or the worker's seed: those depend
        # on how the epoch's indices are dealt to workers, so data.workers (a setting of the
        # machine, which a resumed run may change) changed what was trained. The draw count
        # only varies an index drawn again in one epoch (direct calls; each worker's copy
        # starts empty, and a sampler yields an index once).
        n = self._draws[i] = self._draws.get(i, 0) + 1
        return np.random.default_rng([self.seed, self.epoch, i, n])

    def load_augmented(self, i: int) -> Item:
        """(image H x W uint8, boxes, labels) for index ``i`` (sample ``i % len``) with the
        configured augmentation."""
        rng = self._rng(i)
        i %= len(self.samples)
        size, cfg = self.img_size, self.aug
        if cfg is None:
            img, boxes, labels = self._load(i, rng)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            return pad_to(img, size), boxes[keep], labels[keep]
        if self.aug_enabled and rng.random() < cfg.mosaic_prob:
            idx = [i] + [int(j) for j in rng.integers(0, len(self), 3)]
            img, boxes, labels = mosaic([self._load(j, rng) for j in idx], size, rng, cfg)
            if cfg.mixup_prob > 0 and rng.random() < cfg.mixup_prob:
                other = self._load(int(rng.integers(len(self))), rng)
                for _ in range(10):  # the official MixUp pastes an image that has boxes
                    if len(other[1]):
                        break
                    other = self._load(int(rng.integers(len(self))), rng)
                img, boxes, labels = mixup(img, boxes, labels, other, rng, cfg.mixup_scale)
            img, boxes = self._colour_and_flip(img, boxes, rng)
        else:
            # Colour and flip before the pad, as the official TrainTransform does: flipped after it,
            # the image sat at the right of its canvas (inference's letterbox puts it top-left) on
            # a pad the HSV jitter had recoloured.
            img, boxes, labels = self._load(i, rng)
            img, boxes = self._colour_and_flip(img, boxes, rng)
            img = pad_to(img, size)
        boxes, labels = drop_small(boxes, labels)
        return img, boxes, labels

    def _colour_and_flip(self, img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
                         ) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < self.aug.hsv_prob:
            img = augment_hsv(img, rng)
        if rng.random() < self.aug.flip_prob:
            img, boxes = hflip(img, boxes)
        return img, boxes

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, boxes, labels = self.load_augmented(int(i))
        # numpy does the HWC uint8 -> CHW float32 copy ~10x faster than torch's .float() here
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
        t = np.concatenate([labels.reshape(-1, 1).astype(np.float32), boxes.reshape(-1, 4)], 1)
        return x, torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32))


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images; pad targets to the batch's largest count with rows of class -1."""
    images = torch.stack([b[0] for b in batch])
    m = max((b[1].shape[0] for b in batch), default=0)
    targets = torch.zeros(len(batch), m, 5)
    targets[:, :, 0] = -1
    for k, (_, t) in enumerate(batch):
        targets[k, :t.shape[0]] = t
    return images, targets
