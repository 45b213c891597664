"""The AP of what QAT exported, beside the AP it saw while training, labelled apart.

QAT keeps the epoch with the best *fake-quantized torch* AP (training-time), but every format
then re-derives its own INT8 graph from the calibration set: the deployed model scores
differently (coco_tiny, 1 epoch: 31.08 in training, 30.47 for the OpenVINO export). Users quote
the figure printed last, so the exported model's AP is measured on the same val split, in the
runtime it ships for, and printed and recorded as the one that describes the export.
"""
from __future__ import annotations

from pathlib import Path

from ..export.metadata import write_metadata
from .ptq import QuantizeResult

SPLIT = "val"  # the split engine.trainer.Trainer scores QAT's epochs on (recipe data.val_split)


def has_val_split(data: str | Path) -> bool:
    """Whether the data spec has the split QAT scores on (without it, neither is scored)."""
    from ..data.spec import load_spec

    return SPLIT in load_spec(data).splits


def score_export(directory: Path, data: str | Path, *, progress: bool = True, desc: str = "eval INT8",
                 threads: int | None = None) -> dict:
    """COCO AP of one INT8 export folder on ``data``'s val split (f32 hint: accuracy, not speed);
    ``per_class`` is for the report only (``record_exported_eval`` leaves it out of metadata)."""
    from .report import PRECISION_HINT, evaluate_artifact

    res = evaluate_artifact(directory, data, SPLIT, progress=progress, desc=desc, threads=threads)
    return {"AP": res["AP"], "AP50": res["AP50"], "data": str(data), "split": SPLIT, "images": res["images"],
            "backend": res["backend"], "precision_hint": PRECISION_HINT, "per_class": res["per_class"]}


def record_exported_eval(res: QuantizeResult, record: dict) -> None:
    """Write ``record`` into the export's metadata.json as ``quantization.qat.exported_eval``
    (a copy of the ``qat`` section: it is shared by every format, the score is this one's)."""
    quant = res.metadata["quantization"]
    record = {k: v for k, v in record.items() if k != "per_class"}  # a row per class would swamp metadata.json
    quant["qat"] = {**quant["qat"], "exported_eval": record}
    write_metadata(res.directory, res.metadata, list(res.metadata["files"]))


def ap_summary(qat: dict, exported: dict[str, dict], targets: dict[str, Path]) -> list[str]:
    """The lines printed after a QAT run: each export's measured AP first, the training-time
    figure after it, each saying what it is (AP in percent, as in ``--report``)."""
    first = next(iter(exported.values()))
    lines = [f"QAT result on {first['data']}:{first['split']} ({first['images']} images: the split QAT scored "
             "its epochs on), COCO AP in %:"]
    for fmt, rec in exported.items():
        runtime = rec["precision_hint"] if rec["backend"] == fmt else f"{rec['backend']}, {rec['precision_hint']}"
        lines.append(f"  exported INT8 AP   {100 * rec['AP']:6.2f}  {fmt} ({runtime}), measured on the model "
                     f"written to {targets[fmt]}: the figure to quote")
    kept, ap = qat["kept_epoch"], qat.get("fake_quant_ap")
    if ap is not None:
        which = "epoch 0, the untrained start" if kept == 0 else f"epoch {kept}, its 'AP {ap:.4f}' above"
        lines.append(f"  training-time AP   {100 * ap:6.2f}  fake-quantized torch model during QAT ({which}); "
                     "not the exported model's")
    return lines
