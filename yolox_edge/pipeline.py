"""The whole path in one call: data -> train -> FP32 export -> INT8 -> eval -> bench -> bundle.

With no data spec it runs on the embedded default (a generated shapes dataset), so the
main job works on any machine without downloads; with ``data`` it runs on the user's data.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .thresholds import EVAL_CONF, EVAL_MAX_DET, EVAL_NMS_IOU
from .errors import OUT, UserError, flag_value, format_size, require_file, require_out_folder
from .progress import deprecated_keywords, first_few, line_sink

# The pipeline's calls, not the helpers imported here (UserError, format_size, line_sink, ...).
__all__ = ["DEFAULT_RECIPE", "PipelineResult", "default_recipe", "default_recipe_note", "run_pipeline", "summary_table"]

# Nano trained from scratch on the generated shapes in 3-5 minutes on 2 CPU cores. What makes a
# from-scratch run this short learn (measured on the default data, AP on its val split):
# iterations, not image size, so a small input (160) with each of the 96 images seen 4 times an
# epoch (``default_recipe``; not on a user's data, where it would quadruple the epoch), a 4x
# higher rate than the fine-tuning recipe, and no Mosaic (the scenes already hold several
# objects). The earlier 256-input, 30-epoch schedule with Mosaic reached AP 0.008 in 2 minutes;
# this one reaches ~0.54 (AP50 ~0.9) in 3.
DEFAULT_RECIPE = {
    "model": {"variant": "nano", "input_size": 160},
    "data": {"workers": 0, "cache_images": True},
    "aug": {"mosaic_prob": 0.0, "mixup_prob": 0.0, "degrees": 0.0, "shear": 0.0},
    "train": {"epochs": 24, "batch": 16, "basic_lr_per_img": 0.02 / 16, "warmup_epochs": 2, "no_aug_epochs": 3,
              "eval_interval": 5, "multiscale_range": 0, "ema_decay": 0.999},
}


def default_recipe(*, generated_data: bool) -> dict:
    """The recipe used without ``--recipe``: DEFAULT_RECIPE, repeating the generated set 4x an epoch."""
    rec = copy.deepcopy(DEFAULT_RECIPE)
    if generated_data:
        rec["data"]["repeat"] = 4
    return rec


def refuse_foreign_data(folder: Path) -> None:
    """UserError when ``folder`` (where the pipeline writes its generated data) holds files it did
    not make: ``pipeline --out .`` in a project replaced the user's own data/data.yaml."""
    from .data.synthetic import GENERATED_MARK

    if not folder.is_dir() or not any(folder.iterdir()):
        return
    spec = folder / "data.yaml"
    try:
        ours = spec.is_file() and spec.read_text(encoding="utf-8", errors="replace").startswith(GENERATED_MARK)
    except OSError:
        ours = False
    if not ours and not _stopped_generation(folder):
        raise UserError(f"{folder}: holds files the pipeline did not make, and its generated dataset goes there; "
                        f"choose another {OUT}, or move them away (to train on them, pass --data {spec})")


def _stopped_generation(folder: Path) -> bool:
    """Whether ``folder`` holds only what a generation stopped before its data.yaml (the mark) wrote:
    the run's stop line said to run the same command again, which then refused the folder as foreign."""
    import re

    made = re.compile(r"(train|val)_\d{4}\.jpg")
    for entry in folder.iterdir():
        if entry.name in ("train.json", "val.json") and entry.is_file() or re.fullmatch(r"\..*\.tmp", entry.name):
            continue
        if entry.name not in ("train", "val") or not entry.is_dir():
            return False
        if any(not (made.fullmatch(f.name) and f.name.startswith(entry.name)) for f in entry.iterdir()):
            return False
    return True


def default_recipe_note(*, weights: str | Path | None, recipe: str | Path | None, resume: bool = False) -> str | None:
    """A note for ``--weights`` without ``--recipe``: DEFAULT_RECIPE is a from-scratch schedule
    (160 input, 4x the fine-tuning rate), and pretrained weights train under it as they are told.
    Measured: imported COCO Nano on raccoon_voc, --epochs 2: AP 0.23 at 160 (the class loss jumped
    as the rate reached 0.018) against 0.41 at 416 with --recipe finetune_nano_cpu."""
    if not weights or recipe or resume:
        return None
    size, t = DEFAULT_RECIPE["model"]["input_size"], DEFAULT_RECIPE["train"]
    return (f"note: --weights {weights} without --recipe trains with the pipeline's from-scratch default recipe "
            f"(input {size} unless --img-size, lr {t['basic_lr_per_img'] * t['batch']:g} at batch {t['batch']}); "
            f"to fine-tune, pass --recipe finetune_nano_cpu --img-size 416 (as in the README)")


@dataclass
class PipelineResult:
    """What ``run_pipeline`` made: ``out`` its folder, ``checkpoint`` the trained best.pt, ``bundle``
    the packaged zip, ``rows`` one dict per artifact (artifact, AP, AP50, e2e_p50_ms, size_mb
    (MiB, 1024**2 bytes, as bench; the name kept), out_bytes: ``summary_table``'s), ``seconds`` the wall time of each step by name."""

    out: Path
    checkpoint: Path
    bundle: Path
    rows: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class _Steps:
    """Numbered step headers with the wall time of each step."""

    def __init__(self, total: int, say: Callable[[str], None]) -> None:
        self.total, self.n, self.say, self.times = total, 0, say, {}
        self._name, self._t0 = None, 0.0

    def __call__(self, name: str) -> None:
        self.close()
        self.n += 1
        self._name, self._t0 = name, time.perf_counter()
        self.say(f"\n[{self.n}/{self.total}] {name}")

    def close(self) -> None:
        if self._name:
            self.times[self._name] = round(time.perf_counter() - self._t0, 1)
            self.say(f"    ({self.times[self._name]:.1f} s)")
            self._name = None


@deprecated_keywords(say=lambda f: {"log": f})
def run_pipeline(*, out: str | Path = "runs/pipeline", data: str | Path | None = None, recipe: str | Path | None = None,
                 weights: str | Path | None = None, epochs: int | None = None,
                 img_size: int | tuple[int, int] | None = None,
                 target: str = "ncnn", int8: bool = True, calib_count: int = 32, bench_runs: int = 20,
                 threads: tuple[int, ...] = (1, 2), overrides: list[str] | None = None, progress: bool = True,
                 resume: bool = False, log: Callable[[str], None] | None = print) -> PipelineResult:
    """Run every stage into ``out`` and return where things went and the summary rows.

    ``img_size``: S, or (H, W) for ``--img-size WxH``: the training size (multi-scale around it,
    aspect kept) and so the checkpoint's, which the exports, the calibration set and the INT8
    graphs then take.

    ``progress=False`` turns off the progress bars (training, NNCF, eval, bench); ``log`` receives
    the step headers and lines, the trainer's included (None: none). ``say=`` is the deprecated
    spelling of ``log=``.

    ``threads``: the bench's thread counts (the summary's latency is at the smallest). The
    recipe's ``train.threads`` (e.g. ``overrides=["train.threads=1"]``) sets the threads of every
    step but the bench: torch's for training (OpenCV's too where training decodes in this
    process, ``data.workers: 0``), the FP32 exports and the INT8 step (as ``quantize --threads``),
    OpenCV's and torch's for building the calibration set and for the evaluation's image
    decoding, each runtime's for the evaluation (as ``eval --threads``).

    ``resume``: continue the training of an earlier run into the same ``out`` (interrupted, or
    finished: then it is not trained again) from its ``train/last.pt``, with the recipe stored
    there but the machine's settings among ``overrides`` (``config.MACHINE_KEYS``, e.g.
    ``data.workers=N``), and run every later stage again; a UserError before any step where
    ``train/last.pt`` is not there (as ``Trainer(resume=True)``).
    """
    from .bench import run_bench
    from .bundle.package import package_bundle
    from .config import (apply_flag, apply_overrides, check_img_size, check_recipe, input_size_overrides,
                         load_recipe, recipe_from_dict, split_machine_items)
    from .data.spec import load_spec, read_split
    from .fileio import atomic_write_bytes, mib
    from .engine.checkpoint import load_checkpoint
    from .engine.evaluator import evaluate, evaluation_record, per_class_lines
    from .engine.trainer import Trainer, refuse_earlier_run, require_resumable, resume_flags_note, unused_resume_weights
    from .export import export_model
    from .runtime import load_predictor
    from .threads import cpu_threads, torch_threads

    if target not in ("ncnn", "openvino", "onnx"):
        raise UserError(f"{flag_value('--target', 'target', target)}: choose ncnn, openvino or onnx")
    check_img_size(img_size)  # before any step: a size off the 32 grid would fail at training
    # a file there (or above it) or a read-only folder: one line naming --out, not mkdir's 'File exists'
    out = require_out_folder(out)
    # before step 1 writes data: into a folder the training step would refuse, or, resuming, into
    # one with nothing to resume (as train --resume: not a run from the start nobody asked for)
    if resume:
        require_resumable(out / "train" / "last.pt", out)
    else:
        refuse_earlier_run(out / "train")
    # the recipe and its flags too (an empty or misspelt recipe, epochs="x"), not after step 1 made the data
    generated = data is None
    if recipe:
        rec = load_recipe(recipe)
    else:
        rec = recipe_from_dict(default_recipe(generated_data=generated), source="pipeline default recipe")
    sets = input_size_overrides(rec, img_size) if img_size is not None else []
    apply_overrides(rec, sets + list(overrides or []))
    if epochs is not None:
        apply_flag(rec, "train.epochs", epochs, "--epochs", "epochs")
    check_recipe(rec)  # a value out of range (--set train.batch=0): the trainer said so after step 1 wrote the data
    if weights is not None and not resume:
        # --weights read now: a missing or broken file stopped the trainer after step 1 generated the data
        load_checkpoint(require_file(weights, "checkpoint"))
    if generated:
        refuse_foreign_data(out / "data")
    if generated and resume and (out / "train" / "last.pt").is_file():
        # a run trained on --data, resumed without it: step 1 generated the shapes set, step 2 refused it
        from .data.synthetic import CLASSES

        trained = load_checkpoint(out / "train" / "last.pt").get("class_names")
        if trained != CLASSES:
            raise UserError(f"{out / 'train' / 'last.pt'}: trained on other data (classes {first_few(trained or [], 4)}); "
                            "resume with the same --data it was started with")
    if not resume:  # an earlier pipeline run here was refused above: these are someone else's
        _refuse_foreign_outputs(out, target, rec.model.variant, int8)
    out.mkdir(parents=True, exist_ok=True)
    say = line_sink(log)
    step = _Steps(7 if int8 else 6, say)

    step("data")
    if generated:
        from .data.synthetic import make_shapes_dataset
        data = make_shapes_dataset(out / "data")
        say(f"    generated shapes dataset -> {data}")
    spec = load_spec(data)
    # the recipe's splits (--set data.val_split=test), as the trainer reads them; not 'train'/'val' by name
    train_name, val_name = rec.data.train_split, rec.data.val_split
    val = read_split(spec, val_name)
    # both splits: the val count alone ('40 val images') read as a dataset of 40 images
    train_n = f"{len(read_split(spec, train_name).samples)} {train_name} and " if train_name in spec.splits else ""
    say(f"    {data}: {train_n}{len(val.samples)} {val_name} images, classes: {', '.join(val.names)}")

    step("train")
    # Resuming without --recipe: the stored recipe. The Trainer's note compares a given recipe
    # value by value; here that would list every default nobody chose, so name the flags instead.
    given = rec if not resume or recipe else None
    machine, other = split_machine_items(overrides)  # the machine's settings apply to a resumed run too
    flags = ([f"--epochs {epochs}"] if epochs is not None else []) + \
            ([f"--img-size {format_size(img_size)}"] if img_size is not None else []) + [f"--set {s}" for s in other]
    other_weights = unused_resume_weights(out / "train" / "last.pt", weights) if given is None else None
    if other_weights:  # in the one note; the Trainer, not given them, says nothing more
        flags.append(other_weights)
        weights = None
    if given is None and flags:
        say("    " + resume_flags_note(out / "train" / "last.pt", flags))
    note = default_recipe_note(weights=weights, recipe=recipe, resume=resume)
    if note:
        say("    " + note)
    trainer = Trainer(given, data=data, out=out / "train", weights=weights, resume=resume, progress=progress,
                      log=log, machine=machine if resume else None)  # its lines go where the pipeline's go
    res = trainer.train()
    rec = trainer.recipe
    ckpt = Path(res["best"] if Path(res["best"]).is_file() else res["last"])
    say(f"    checkpoint: {ckpt}")

    # The threads training ran at (train.threads, a setting of the machine: --set, or a resumed
    # run's) for every step but the bench, whose --threads are the counts it times: torch's for
    # the exports and the INT8 statistics, conv scan and graphs, OpenCV's too for the calibration
    # set and the evaluation's image decoding, each runtime's for the evaluation; None keeps each
    # library's default. A user limiting threads gets it everywhere.
    n = rec.train.threads
    fp32_formats = _fp32_formats(target)
    step(f"export FP32 ({', '.join(fp32_formats)}, raw onnx baseline)")
    exports: dict[str, Path] = {}
    with torch_threads(n):
        for fmt in fp32_formats:
            # force: the pipeline's own folders (a resumed run exports again)
            exports[f"{fmt} fp32"] = export_model(ckpt, format=fmt, out=out / f"{fmt}_fp32", force=True).directory
        raw = export_model(ckpt, format="onnx", out=out / "onnx_raw", raw=True, force=True)

    if int8:
        step(f"INT8 ({target})")
        from .quantize.calib import build_calibration_set
        from .quantize.ptq import QuantizeOptions, quantize_checkpoint
        size = exports[f"{target} fp32"]
        from .export import read_metadata
        hw = tuple(read_metadata(size, verify=False)["input_size"])
        with cpu_threads(n):  # it decodes and resizes with OpenCV, whose pool took every core
            cal = build_calibration_set(data, out / "calib", img_size=hw, count=calib_count, split=train_name,
                                        force=True)  # the pipeline's own folder: a resumed run rebuilds it
        say(f"    calibration set: {len(cal.images)} images at {format_size(hw)} -> {out / 'calib'}")
        for why in cal.skipped:  # as training names each image it skips; another took its place
            say(f"    calibration skipped {why}")
        with torch_threads(n):  # as `quantize --threads N` takes them
            q = quantize_checkpoint(ckpt, calib=out / "calib", format=target, out=out / f"{target}_int8",
                                    opts=QuantizeOptions(subset_size=calib_count, threads=n), progress=progress,
                                    log=None, force=True)  # the pipeline's own folder: a resumed run replaces it
        exports[f"{target} int8"] = q.directory

    step("evaluate every artifact")
    rows, per_class = [], []
    bundled = f"{target} int8" if int8 else f"{target} fp32"
    for name, path in {"torch fp32": ckpt, **exports}.items():
        # the runtime takes n threads itself; each image's decode and resize are OpenCV's, whose
        # pool took every core, and a torch model's loading is torch's
        with cpu_threads(n):
            pred = load_predictor(path, conf=EVAL_CONF, iou=EVAL_NMS_IOU, max_det=EVAL_MAX_DET, threads=n)
            ev = evaluate(pred, val, progress=progress)
        if name == bundled:  # the bundle's card quotes it, in the form `eval --json` writes
            record = evaluation_record(path, pred, data, val_name, ev)
            bundled_eval = out / "eval_bundled.json"
            atomic_write_bytes(bundled_eval, lambda f: f.write(json.dumps(record, indent=2).encode()))
        rows.append({"artifact": name, "path": str(path), "AP": ev["AP"], "AP50": ev["AP50"]})
        say(f"    {name:<14} AP {ev['AP']:.4f}  AP50 {ev['AP50']:.4f}")
        if name == bundled and len(ev["per_class"]) > 1:
            per_class = ev["per_class"]
    if per_class:  # the shipped model's weakest classes: where more data or labels would help
        say(f"    per class, {bundled} (worst AP first):")
        for line in per_class_lines(per_class):
            say("  " + line)
    eval_json = out / "eval.json"
    atomic_write_bytes(eval_json, lambda f: f.write(json.dumps(rows, indent=2).encode()))

    step("benchmark")
    bench = run_bench([str(p) for p in exports.values()], threads=list(threads), warmup=3, runs=bench_runs,
                      baseline=str(raw.model_file), rss=False, progress=progress)
    bench_json = out / "bench.json"
    atomic_write_bytes(bench_json, lambda f: f.write(json.dumps(bench, indent=2).encode()))
    by_path: dict[str, dict] = {}
    for r in bench["rows"]:
        if r["threads"] == min(threads):
            by_path[r["artifact"]] = r
    for row in rows:
        b = by_path.get(row["path"])
        if b:
            row.update({"e2e_p50_ms": b["latency_ms"]["e2e"]["p50"], "size_mb": mib(b["size_bytes"]),
                        "out_bytes": b["output_bytes_per_image"]})
    base = next((r for r in bench["rows"] if r["baseline"] and r["threads"] == min(threads)), None)
    if base:
        rows.append({"artifact": "official-style baseline", "path": str(raw.model_file), "AP": None, "AP50": None,
                     "e2e_p50_ms": base["latency_ms"]["e2e"]["p50"], "size_mb": mib(base["size_bytes"]),
                     "out_bytes": base["output_bytes_per_image"]})

    step("bundle")
    bundle = out / _bundle_name(rec.model.variant, target, int8)
    # The pipeline's own folder: a resumed run re-packages from this run's exports and figures.
    package_bundle(exports[bundled], target=target, out=bundle, eval_json=bundled_eval, bench_json=bench_json,
                   force=True)
    step.close()
    return PipelineResult(out, ckpt, bundle, rows, step.times)


@deprecated_keywords("threads")  # summary_table(res, 2), the earlier form
def summary_table(res: PipelineResult, *, threads: int = 1) -> str:
    """The Markdown table the pipeline ends with: per artifact its AP, AP50, e2e p50 latency at
    ``threads``, size and output bytes per image (``res.rows``)."""
    lines = [f"| artifact | AP | AP50 | e2e p50 ms ({threads} thread) | size MiB | bytes out/img |", "|---|---|---|---|---|---|"]
    for r in res.rows:
        ap = "" if r["AP"] is None else f"{r['AP']:.4f}"
        ap50 = "" if r["AP50"] is None else f"{r['AP50']:.4f}"
        lines.append(f"| {r['artifact']} | {ap} | {ap50} | {r.get('e2e_p50_ms', '')} | {r.get('size_mb', '')} | "
                     f"{r.get('out_bytes', '')} |")
    return "\n".join(lines)


def _fp32_formats(target: str) -> list[str]:
    """The FP32 exports a run writes: the target, plus ONNX for the eval/bench rows."""
    return list(dict.fromkeys([target, "onnx"]))


def _bundle_name(variant: str, target: str, int8: bool) -> str:
    return f"yolox_{variant}_{target}_{'int8' if int8 else 'fp32'}.zip"


def _refuse_foreign_outputs(out: Path, target: str, variant: str, int8: bool) -> None:
    """UserError, before step 1, when --out holds a file or folder of a name a new run writes (its
    calibration set, exports, eval.json, bench.json, bundle) with no earlier pipeline run beside it:
    a user's own calib/ and eval.json in the project folder given as --out were replaced without a word."""
    names = [f"{fmt}_fp32" for fmt in _fp32_formats(target)] + ["onnx_raw", "eval.json", "eval_bundled.json",
                                                                  "bench.json", _bundle_name(variant, target, int8)]
    if int8:
        names += ["calib", f"{target}_int8"]
    taken = [n for n in names if (out / n).exists() or (out / n).is_symlink()]
    if taken:
        raise UserError(f"{out}: already holds {first_few(sorted(taken), 4)}, not from a pipeline run (no train/ "
                        f"run beside them), and this run would write over them; move them away or choose another {OUT}")
