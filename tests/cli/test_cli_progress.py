"""`--no-progress` on every command with long work: the flag parses and the bars go."""
from __future__ import annotations

import pytest

from yolox_edge.cli import build_parser


@pytest.mark.parametrize("argv", [
    ["train", "--data", "d.yaml", "--out", "o"], ["eval", "m.pt", "--data", "d.yaml"], ["pipeline"],
    ["quantize", "m.pt", "--calib", "c", "--out", "o"], ["bench", "m.pt"], ["data", "check", "d.yaml"],
    ["convert", "m.pt", "--to", "nano_hswish", "--calib", "c", "--out", "o"], ["predict", "m.pt", "a.jpg"],
])
def test_every_long_command_takes_no_progress(argv) -> None:
    assert build_parser().parse_args([*argv, "--no-progress"]).no_progress is True
    assert build_parser().parse_args(argv).no_progress is False


def test_eval_and_data_check_without_bars(run_cli, tmp_path) -> None:
    from test_cli_eval import write_data

    from yolox_edge.engine import save_checkpoint
    from yolox_edge.models import create_model

    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    data = write_data(tmp_path / "data")
    code, _out, err = run_cli("eval", ckpt, "--data", data)
    assert code == 0 and "eval: 100%" in err, err  # off a terminal: the bar's plain last line
    code, out, err = run_cli("eval", ckpt, "--data", data, "--no-progress")
    assert code == 0 and "eval:" not in err and "AP " in out, err
    code, _out, err = run_cli("data", "check", data)
    assert code == 0 and "check val: 100%" in err, err
    code, _out, err = run_cli("data", "check", data, "--no-progress")
    assert code == 0 and "check val" not in err, err
