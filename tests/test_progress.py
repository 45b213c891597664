"""Progress bars: live on a terminal, a few plain lines in a log file."""
from __future__ import annotations

import dataclasses
import io
import warnings

import pytest

from yolox_edge.progress import (LOG_INTERVAL_S, StatusLine, deprecated_keywords, progress_bar, renamed,
                                 renamed_attribute)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_lines_not_carriage_return_frames() -> None:
    log = io.StringIO()
    for _ in progress_bar(range(500), desc="eval", file=log, leave=False):  # the last state stays in a log
        pass
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("eval: 100%") and "500/500" in lines[-1]


def test_a_terminal_gets_the_live_bar() -> None:
    tty = _Tty()
    for _ in progress_bar(range(50), desc="eval", file=tty, mininterval=0):
        pass
    assert tty.getvalue().count("\r") > 10  # redrawn in place


def test_disabled_writes_nothing() -> None:
    log = io.StringIO()
    for _ in progress_bar(range(5), file=log, disable=True):
        pass
    assert log.getvalue() == ""


def test_status_line_redraws_in_place_on_a_terminal() -> None:
    tty = _Tty()
    status = StatusLine(file=tty, interval=0.5)
    status.show("frame 1  a longer line", now=10.0)
    status.show("frame 2", now=10.2)  # not due yet: dropped
    assert not status.due(now=10.4) and status.due(now=10.5)
    status.show("frame 3", now=10.6)
    status.close()
    # one line, redrawn: the shorter text blanks the end of the longer one, then a newline
    assert tty.getvalue() == "\rframe 1  a longer line" + "\rframe 3".ljust(23) + "\n"


def test_status_line_in_a_log_is_sparse_plain_lines() -> None:
    log = io.StringIO()
    status = StatusLine(file=log)
    for i in range(100):
        status.show(f"frame {i}", now=i * 1.0)
    status.close()
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [f"frame {i}" for i in range(0, 100, int(LOG_INTERVAL_S))]
    quiet = io.StringIO()
    off = StatusLine(file=quiet, enabled=False)
    off.show("frame 1")
    off.close()
    assert quiet.getvalue() == "" and not off.due()


def test_counted_says_one_in_the_singular() -> None:
    from yolox_edge.progress import counted

    assert [counted(n, "frame") for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]


def test_first_few_names_the_rest_by_count() -> None:
    from yolox_edge.progress import first_few

    assert first_few(["a", "b"], 3) == "a, b"
    assert first_few(["a", "b", "c"], 3) == "a, b, c"
    assert first_few(["a", "b", "c", "d", "e"], 3) == "a, b, c and 2 more"


@deprecated_keywords("fmt", "out", old_out=renamed("out"))
def _made(model: str, *, fmt: str = "onnx", out: str = "o") -> tuple:
    return model, fmt, out


def test_the_new_forms_call_through_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _made("m", fmt="ncnn", out="x") == ("m", "ncnn", "x")
        assert _made(model="m") == ("m", "onnx", "o")


def test_a_moved_positional_still_binds_and_warns_naming_its_keyword() -> None:
    """export_model(ckpt, "onnx", "out") as it was written before format= and out= were keyword-only."""
    with pytest.warns(DeprecationWarning, match=r"_made\(\): passing fmt, out by position is deprecated; pass "
                                                r"fmt=, out= by keyword") as caught:
        assert _made("m", "ncnn", "x") == ("m", "ncnn", "x")
    assert caught[0].filename == __file__  # the caller's line, not the shim's
    with pytest.warns(DeprecationWarning, match=r"passing fmt by position"):
        assert _made("m", "ncnn", out="y") == ("m", "ncnn", "y")


def test_a_moved_positional_and_an_old_keyword_together() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        assert _made("m", "ncnn", old_out="z") == ("m", "ncnn", "z")
    assert [str(w.message) for w in caught] == [
        "_made(): passing fmt by position is deprecated; pass fmt= by keyword",
        "_made(old_out=) is deprecated; pass out=... instead"]
    assert all(w.filename == __file__ for w in caught)


def test_a_value_given_twice_or_too_many_positionals_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="multiple values for fmt"):
        _made("m", "ncnn", fmt="onnx")
    with pytest.raises(TypeError, match=r"at most 3 positional arguments \(1 without the deprecated ones\) but 4"):
        _made("m", "ncnn", "x", "extra")
    with pytest.raises(TypeError, match="old_out= and out="):
        _made("m", out="a", old_out="b")


def test_the_suite_fails_a_test_that_calls_an_earlier_form_by_accident() -> None:
    """pyproject's filterwarnings turns the shim's two messages into errors outside pytest.warns
    (a test left on an old form fails), and only those: a third party's DeprecationWarning, even one
    that says 'is deprecated', stays a warning."""
    with pytest.raises(DeprecationWarning, match="passing fmt by position"):
        _made("m", "ncnn")
    with pytest.raises(DeprecationWarning, match=r"_made\(old_out=\) is deprecated"):
        _made("m", old_out="z")
    with pytest.warns(DeprecationWarning, match="passing fmt by position"):  # a test of the earlier form
        assert _made("m", "ncnn") == ("m", "ncnn", "o")
    with warnings.catch_warnings(record=True) as seen:
        for text in ("torch.cuda.amp.autocast(args...) is deprecated. Please use torch.amp.autocast('cuda', "
                     "args...) instead.", "`np.bool` is deprecated; pass bool instead",
                     "export() is deprecated; pass dynamo=True instead"):
            warnings.warn(text, DeprecationWarning)
    assert len(seen) == 3


class _Box:
    @deprecated_keywords("scale")
    def grown(self, size: int, *, scale: int = 1) -> int:
        return size * scale


@dataclasses.dataclass
class _Knobs:
    iou: float = 0.5
    nms_iou = renamed_attribute("iou")


_Knobs.__init__ = deprecated_keywords(nms_iou=renamed("iou"))(_Knobs.__init__)


def test_a_method_and_a_dataclass_are_named_by_their_class() -> None:
    """A method's warning said 'grown()' and a dataclass's '__init__(nms_iou=)': nothing of whose.
    self is one of the present positionals; the suite's filter matches the dotted name too."""
    with pytest.warns(DeprecationWarning, match=r"^_Box\.grown\(\): passing scale by position is deprecated"):
        assert _Box().grown(2, 3) == 6
    with pytest.warns(DeprecationWarning, match=r"^_Knobs\(nms_iou=\) is deprecated; pass iou=\.\.\. instead$"):
        assert _Knobs(nms_iou=0.6).iou == 0.6
    assert _Knobs(0.7).iou == 0.7 and dataclasses.replace(_Knobs(), iou=0.1).iou == 0.1
    with pytest.raises(DeprecationWarning, match=r"_Box\.grown\(\): passing scale"):
        _Box().grown(2, 3)


def test_an_attribute_under_its_earlier_name_reads_and_sets_the_new_one() -> None:
    """QuantizeOptions(nms_iou=) was taken but opts.nms_iou was an AttributeError. The alias is no
    dataclass field, and the suite's filter fails a test that reads it by accident."""
    knobs = _Knobs(0.6)
    with pytest.warns(DeprecationWarning, match=r"^_Knobs\.nms_iou is deprecated; use _Knobs\.iou instead$") as caught:
        assert knobs.nms_iou == 0.6
    assert caught[0].filename == __file__  # the caller's line
    with pytest.warns(DeprecationWarning, match=r"^_Knobs\.nms_iou is deprecated"):
        knobs.nms_iou = 0.3
    assert knobs.iou == 0.3 and "nms_iou" not in vars(knobs)
    assert [f.name for f in dataclasses.fields(_Knobs)] == ["iou"] and repr(knobs) == "_Knobs(iou=0.3)"
    assert isinstance(_Knobs.nms_iou, renamed_attribute)  # on the class: no instance, no warning
    with pytest.raises(DeprecationWarning, match=r"_Knobs\.nms_iou is deprecated"):
        knobs.nms_iou


def test_replace_with_an_earlier_keyword_says_to_pass_the_new_one() -> None:
    """dataclasses.replace(knobs, nms_iou=) passes iou= too (every field), so it met the 'both given'
    TypeError, which named iou= the caller never wrote. A plain function's message is as it was."""
    with pytest.raises(TypeError, match=r"^_Knobs\(\) got nms_iou= and iou=; nms_iou= is the deprecated spelling "
                                        r"of iou=: pass only those; from dataclasses\.replace\(\), which passes "
                                        r"every field, call replace\(obj, iou=\.\.\.\) instead$"):
        dataclasses.replace(_Knobs(), nms_iou=0.1)
    with pytest.raises(TypeError, match=r"old_out= and out=; old_out= is the deprecated spelling of out=: pass only "
                                        r"those$"):
        _made("m", out="a", old_out="b")
