"""Out-of-range numbers stop at parse time: exit 2 and argparse's one error line naming the
flag, before any model is loaded (the files named below do not exist)."""
from __future__ import annotations

import argparse

import pytest

from yolox_edge.cli import build_parser
from yolox_edge.cli.argtypes import (img_size, int_list, non_negative, non_negative_float, positive, positive_float,
                                     unit_interval)

BAD = [
    ("bench", "m.pt", "--threads", "0"),
    ("bench", "m.pt", "--threads", ","),
    ("bench", "m.pt", "--threads", "1,x"),
    ("bench", "m.pt", "--cpus", "-1"),
    ("bench", "m.pt", "--warmup", "-1"),
    ("bench", "m.pt", "--img-size", "0"),
    ("bench", "m.pt", "--img-size", "416x"),
    ("eval", "m.pt", "--data", "d.yaml", "--img-size", "416x0"),
    ("export", "m.pt", "--format", "onnx", "--out", "o", "--img-size", "416,320"),
    ("quantize", "m.pt", "--calib", "c", "--out", "o", "--img-size", "416x320x3"),
    ("calibrate", "--data", "d", "--out", "o", "--img-size", "wide"),
    ("calibrate", "--data", "d", "--out", "o", "--img-size", "0x320"),
    ("predict", "m.pt", "a.jpg", "--conf", "1.5"),
    ("predict", "m.pt", "a.jpg", "--nms", "-0.1"),
    ("predict", "m.pt", "a.jpg", "--max-det", "0"),
    ("predict", "m.pt", "a.jpg", "--threads", "0"),
    ("eval", "m.pt", "--data", "d.yaml", "--batch", "0"),
    ("eval", "m.pt", "--data", "d.yaml", "--conf", "nan"),
    ("export", "m.pt", "--format", "onnx", "--out", "o", "--topk", "-1"),
    ("quantize", "m.pt", "--calib", "c", "--out", "o", "--lr", "0"),
    ("quantize", "m.pt", "--calib", "c", "--out", "o", "--nncf-keep-float", "-2"),
    ("quantize", "m.pt", "--calib", "c", "--out", "o", "--max-drop", "2"),
    ("train", "--recipe", "r.yaml", "--data", "d.yaml", "--out", "o", "--epochs", "0"),
    ("convert", "m.pt", "--to", "nano_hswish", "--calib", "c", "--out", "o.pt", "--steps", "0"),
    ("package", "m", "--target", "ncnn", "--out", "b.zip", "--max-det", "0"),
    ("package", "m", "--target", "ncnn", "--out", "b.zip", "--max-det", "2147483648"),
    ("pipeline", "--threads", "0,1"),
    ("pipeline", "--img-size", "416x"),
    ("train", "--recipe", "r.yaml", "--data", "d.yaml", "--out", "o", "--img-size", "0x320"),
    ("models", "--num-classes", "0"),
    ("bench-compare", "a.json", "b.json", "--tolerance", "-1"),
    ("bench-compare", "a.json", "b.json", "--fail-slower", "nan"),
    ("bench-compare", "a.json", "b.json", "--fail-slower", "inf"),
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_out_of_range_numbers_exit_2_naming_the_flag(argv, run_cli) -> None:
    code, _out, err = run_cli(*argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # the error and where help is, not a dozen lines of usage above it
    flag = next(a for a in reversed(argv) if a.startswith("--"))
    assert f"argument {flag}" in lines[0] and "expected" in lines[0]
    assert f"(see 'yolox-edge {argv[0]} --help')" in lines[0]


def test_in_range_values_parse_to_numbers() -> None:
    """The same flags take their edge values: 0 where 0 means something, 1 where it is the least."""
    args = build_parser().parse_args(["bench", "m.pt", "--threads", " 1, 2 ", "--cpus", "0", "--warmup", "0"])
    assert args.threads == [1, 2] and args.cpus == [0] and args.warmup == 0
    args = build_parser().parse_args(["export", "m.pt", "--format", "onnx", "--out", "o", "--topk", "0",
                                      "--conf", "0", "--nms", "1"])
    assert args.topk == 0 and args.conf == 0.0 and args.nms == 1.0


def test_types_directly() -> None:
    assert positive("3") == 3 and non_negative("0") == 0 and unit_interval("0.25") == 0.25
    assert positive_float("1e-4") == 1e-4 and int_list(0)("0,3") == [0, 3]
    assert non_negative_float("0") == 0.0 and non_negative_float("12.5") == 12.5
    for fn, s in ((positive, "0"), (positive, "1.5"), (non_negative, "-1"), (unit_interval, "inf"),
                  (positive_float, "-1e-3"), (positive_float, "inf"), (int_list(1), ""),
                  (non_negative_float, "-0.1"), (non_negative_float, "inf"), (non_negative_float, "x")):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(s)


def test_img_size_takes_a_side_or_width_x_height() -> None:
    """S is an int; WIDTHxHEIGHT comes back as (H, W), the order of PreprocessConfig.input_size."""
    assert img_size("416") == 416 and img_size("416x416") == 416
    assert img_size("416x320") == (320, 416) and img_size("96X64") == (64, 96) and img_size(" 320x416 ") == (416, 320)
    for s in ("0", "-32", "416x", "x320", "416x320x1", "416,320", "416 320", "a", "", "416x-320"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"S \(e.g. 416\) or WIDTHxHEIGHT \(e.g. 416x320\)"):
            img_size(s)


def test_img_size_has_an_upper_bound() -> None:
    """--img-size 65536 asked for 12 GiB at the first canvas: a MemoryError traceback."""
    from yolox_edge.errors import BadArgument, check_input_size

    assert img_size("8192") == 8192 and img_size("8192x32") == (32, 8192)
    for s in ("8193", "65536", "416x9000"):
        with pytest.raises(argparse.ArgumentTypeError, match="at most 8192 pixels a side"):
            img_size(s)
    with pytest.raises(BadArgument, match=r"--img-size 9024x320 \(img_size=\(320, 9024\) in Python\): at most 8192"):
        check_input_size((320, 9024), (8, 16, 32))


def test_img_size_flags_parse_width_x_height() -> None:
    parse = build_parser().parse_args
    assert parse(["export", "m.pt", "--format", "ncnn", "--out", "o", "--img-size", "416x320"]).img_size == (320, 416)
    assert parse(["quantize", "m.pt", "--calib", "c", "--out", "o", "--img-size", "416x320"]).img_size == (320, 416)
    assert parse(["calibrate", "--data", "d", "--out", "o", "--img-size", "416x320"]).size == (320, 416)
    assert parse(["calibrate", "--data", "d", "--out", "o"]).size == 416
    assert parse(["eval", "m.pt", "--data", "d.yaml", "--img-size", "320"]).img_size == 320
    assert parse(["bench", "m.pt", "--img-size", "416x320"]).img_size == (320, 416)
    assert parse(["train", "--recipe", "r", "--data", "d", "--out", "o", "--img-size", "416x320"]).img_size == (320, 416)
    assert parse(["train", "--recipe", "r", "--data", "d", "--out", "o", "--img-size", "416"]).img_size == 416
    assert parse(["pipeline", "--img-size", "416x256"]).img_size == (256, 416)


def test_check_input_size_names_what_was_given_and_the_nearest_valid() -> None:
    from yolox_edge.errors import UserError, check_input_size

    check_input_size(416, (8, 16, 32))
    check_input_size((320, 416), (8, 16, 32))
    cases = {400: "--img-size 400 (img_size=400 in Python): the size must be a positive multiple of 32; the nearest "
                  "that is: 416",
             (300, 416): "--img-size 416x300 (img_size=(300, 416) in Python): each side (width and height) must be a "
                         "positive multiple of 32; the nearest that is: 416x288",
             (320, 10): "--img-size 10x320 (img_size=(320, 10) in Python): each side (width and height) must be a "
                        "positive multiple of 32; the nearest that is: 32x320"}
    for size, msg in cases.items():
        with pytest.raises(UserError) as e:
            check_input_size(size, (8, 16, 32))
        assert str(e.value) == msg
