"""--help says what the README says the flags do (drift found by following the README as a new user)."""
from __future__ import annotations

import re


def help_text(run_cli, *argv: str) -> str:
    code, out, err = run_cli(*argv, "--help")
    assert code == 0, err
    return re.sub(r"\s+", " ", out)  # argparse wraps at the terminal width


def test_data_check_no_decode_reads_the_end_markers_too(run_cli) -> None:
    """--no-decode reads each image's header and end marker (a JPEG or PNG cut short is found);
    the help said headers only and that it misses an image damaged past its header."""
    text = help_text(run_cli, "data", "check")
    assert "headers and end markers" in text and "between the two" in text, text


def test_defaults_the_readme_gives_are_in_the_help(run_cli) -> None:
    assert "default 10;" in help_text(run_cli, "bench").split("--runs-per-turn", 2)[2].split("--fps")[0]
    assert "default 300)" in help_text(run_cli, "quantize").split("--subset-size", 2)[2].split("--topk")[0]


def test_every_option_of_every_command_has_help() -> None:
    """models --num-classes, convert --batch/--seed and export --format had no help text at all."""
    import argparse

    from yolox_edge.cli import build_parser

    def parsers(p: argparse.ArgumentParser, name: str):
        yield name, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub, sp in a.choices.items():
                    yield from parsers(sp, f"{name} {sub}")

    bare = [f"{name} {'/'.join(a.option_strings)}" for name, p in parsers(build_parser(), "yolox-edge")
            for a in p._actions if a.option_strings and not a.help and a.help != argparse.SUPPRESS]
    assert bare == [], bare
