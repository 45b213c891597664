"""A quantize run that stops part-way (Ctrl-C, an error) leaves --out as it was, says what it
kept and how to run again; a later run is not refused. The stops are injected, so no real QAT
runs here, nor NNCF: ``fake_export`` stands in for a format's INT8 export."""
from __future__ import annotations

import hashlib
import json

import pytest


def fake_export(detector, ckpt, source, cal, fmt, out_dir, opts):
    """What ``ptq.quantize_detector`` leaves: a model file, then metadata.json naming it."""
    from yolox_edge.quantize.ptq import QuantizeResult

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"m.{fmt}").write_bytes(fmt.encode())
    meta = {"schema_version": 1, "format": fmt, "files": {f"m.{fmt}": hashlib.sha256(fmt.encode()).hexdigest()},
            "quantization": {"method": "ptq"}}
    (out_dir / "metadata.json").write_text(json.dumps(meta))
    return QuantizeResult(out_dir, out_dir / f"m.{fmt}", [out_dir / f"m.{fmt}", out_dir / "metadata.json"], meta)


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from yolox_edge.data.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes_int"), n_train=2, n_val=2, size=(64, 80))


def _hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_ctrl_c_during_qat_removes_the_out_it_made_and_says_how_to_rerun(tiny_ckpt, tiny_calib, spec, tmp_path,
                                                                          monkeypatch, run_cli):
    import yolox_edge.quantize.qat as qat

    seen = {}

    def interrupted_qat(*a, work_dir=None, **k):
        seen["work_dir"] = work_dir
        (work_dir / ".qat_x" / "run").mkdir(parents=True)  # what the trainer writes per epoch
        (work_dir / ".qat_x" / "run" / "last.pt").write_bytes(b"epoch 1")
        raise KeyboardInterrupt

    monkeypatch.setattr(qat, "run_qat", interrupted_qat)
    out = tmp_path / "qat_out"
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "onnx", "--qat",
                           "--data", spec, "--out", out)
    assert code == 130
    assert seen["work_dir"].parent == out  # the trainer's files were staged inside --out ...
    assert not out.exists()  # ... and went with the folder this run had made
    assert "interrupted during QAT fine-tuning: nothing was written" in err
    assert "(there is no --resume): run the same command again" in err
    assert err.rstrip().endswith("yolox-edge quantize: interrupted")


def test_a_stop_in_the_second_format_leaves_nothing_a_rerun_refuses(tiny_ckpt, tiny_calib, tmp_path, monkeypatch,
                                                                     capsys):
    """One format of two used to stay in --out/onnx; the next run refused it ('--force')."""
    import yolox_edge.quantize.pipeline as pipeline

    calls = []

    def fails_second(*a):
        calls.append(a[4])
        if len(calls) == 2:
            raise RuntimeError("disk full, say")
        return fake_export(*a)

    monkeypatch.setattr(pipeline, "quantize_detector", fails_second)
    out = tmp_path / "two"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    with pytest.raises(RuntimeError, match="disk full"):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "openvino"], out=out)
    assert calls == ["onnx", "openvino"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no export, no staging left
    err = capsys.readouterr().err
    assert "stopped by the error below during the openvino INT8 export: nothing was written" in err
    assert f"{out} holds what it held before the run (an earlier export there is untouched). Run the same " \
           "command again." in err
    monkeypatch.setattr(pipeline, "quantize_detector", fake_export)
    res = pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "openvino"], out=out, progress=False,
                                log=None)  # not refused
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "onnx", "openvino"]
    for fmt, r in res.items():  # moved into place, and the results say where they are now
        assert r.directory == out / fmt and (out / fmt / f"m.{fmt}").read_bytes() == fmt.encode()
        assert r.model_file == out / fmt / f"m.{fmt}" and (out / fmt / "metadata.json").is_file()


def test_the_stop_note_goes_to_log_when_one_is_given(tiny_ckpt, tiny_calib, tmp_path, monkeypatch, capsys):
    """With ``log=print`` (the CLI) the note goes to stderr beside the error; a given ``log``
    receives it as it receives the other lines; ``log=None`` says nothing."""
    import yolox_edge.quantize.pipeline as pipeline

    def fails(*a):
        raise RuntimeError("disk full, say")

    monkeypatch.setattr(pipeline, "quantize_detector", fails)
    lines: list[str] = []
    with pytest.raises(RuntimeError):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "a", progress=False,
                              log=lines.append)
    assert capsys.readouterr() == ("", "")
    assert "quantize: stopped by the error below during the onnx INT8 export: nothing was written" in lines[-1]
    with pytest.raises(RuntimeError):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "b", progress=False, log=None)
    assert capsys.readouterr() == ("", "")


def test_force_keeps_the_earlier_export_until_the_new_one_is_ready(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """--force removed the earlier export before minutes of work; a stop then lost both."""
    import yolox_edge.quantize.pipeline as pipeline

    out = tmp_path / "q"
    fake_export(None, None, None, None, "onnx", out, None)  # an earlier run's export
    (out / "report.md").write_text("FP32 vs INT8 (ptq) on d.yaml:val\n|...")  # and its report
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "quantize_detector", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=out, progress=False, log=None,
                              force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.setattr(pipeline, "quantize_detector", fake_export)
    pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="openvino", out=out, progress=False, log=None,
                          force=True)
    assert sorted(p.name for p in out.iterdir()) == ["m.openvino", "metadata.json"]  # replaced at the end


def test_a_stop_while_force_moves_the_exports_in_waits_for_them(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """Ctrl-C after --force removed the earlier exports, as the new ones moved in, left neither, and
    the note said the earlier ones were untouched: the stop now waits until the new ones are in."""
    import os
    import signal

    import yolox_edge.quantize.pipeline as pipeline
    from yolox_edge.quantize.staging import StagedOutput

    out = tmp_path / "q"
    fake_export(None, None, None, None, "onnx", out, None)  # an earlier run's export
    real = StagedOutput.commit

    def stop_then_commit(self, staged, targets):
        os.kill(os.getpid(), signal.SIGINT)
        return real(self, staged, targets)

    monkeypatch.setattr(pipeline, "quantize_detector", fake_export)
    monkeypatch.setattr(StagedOutput, "commit", stop_then_commit)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="openvino", out=out, progress=False, log=None,
                              force=True)
    assert sorted(p.name for p in out.iterdir()) == ["m.openvino", "metadata.json"]  # the new one, whole


def test_a_stop_during_the_report_keeps_the_finished_exports(tiny_ckpt, tiny_calib, spec, tmp_path, monkeypatch,
                                                              capsys):
    import yolox_edge.quantize.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "quantize_detector", fake_export)
    monkeypatch.setattr(pipeline, "_report", interrupted)
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=out, report=True, data=str(spec))
    assert (out / "metadata.json").is_file() and not _hidden(out)
    err = capsys.readouterr().err
    assert f"interrupted during the FP32-vs-INT8 report: complete and kept: {out}" in err
    assert "the report was not written" in err and "--force" in err


def test_an_out_that_cannot_be_made_gets_only_its_error_line(tiny_ckpt, tiny_calib, tmp_path, monkeypatch, run_cli):
    """A read-only --out: the note said 'during starting: nothing was written; OUT holds what it held
    before ... Run the same command again', which fails the same way, about a folder that does not exist."""
    import yolox_edge.quantize.staging as staging
    from yolox_edge.errors import UserError

    def read_only(out):
        raise UserError(f"{out}: Read-only file system; check the path, its permissions and free space")

    monkeypatch.setattr(staging, "output_folder", read_only)
    out = tmp_path / "ro" / "int8"
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "onnx", "--out", out)
    assert code == 2
    assert "Read-only file system" in err
    assert "nothing was written" not in err and "Run the same command again" not in err
    assert "during starting" not in err


def test_a_stop_takes_away_the_empty_folders_it_made_above_out(tiny_ckpt, tiny_calib, tmp_path, monkeypatch,
                                                                capsys):
    """Only --out itself went; the folders made above it for a deep --out stayed, empty (export
    took them away already). A folder that was there before stays, even empty."""
    import yolox_edge.quantize.pipeline as pipeline

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "quantize_detector", interrupted)
    out = tmp_path / "new" / "deeper" / "int8"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=out, progress=False)
    assert not (tmp_path / "new").exists()
    assert f"{out} was removed (this run had made it, with the 2 empty folders it made above it)" \
        in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "mine" / "q", progress=False)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
    assert f"{tmp_path / 'mine' / 'q'} was removed (this run had made it). Run" in capsys.readouterr().err


def test_a_folder_filled_meanwhile_stays(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """Another process's file in a folder this run made: that folder, and those above it, stay."""
    import yolox_edge.quantize.pipeline as pipeline

    out = tmp_path / "new" / "int8"

    def interrupted(*a):
        (tmp_path / "new" / "theirs.txt").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "quantize_detector", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=out, progress=False, log=None)
    assert not out.exists() and sorted(p.name for p in (tmp_path / "new").iterdir()) == ["theirs.txt"]


def test_quantize_checkpoint_takes_away_the_folders_it_made(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """The one-format call (the pipeline's INT8 step) left an empty --out and its parents, as export did."""
    import yolox_edge.quantize.ptq as ptq

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ptq, "export_int8_graph", stop)
    with pytest.raises(KeyboardInterrupt):
        ptq.quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "new" / "q", progress=False,
                                log=None)
    assert not (tmp_path / "new").exists()


def test_a_one_format_quantize_removes_the_folder_a_killed_one_left(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """quantize_checkpoint (one format, written in place) worked in '.quantize_XXXXXXXX' inside --out,
    which a kill -9 left there for good. Named for its process now, as export's: the next one into
    that --out removes it once that process is gone, never a live one's or another host's. It now
    stages its export as run_quantize does (an earlier export is replaced only once the new one is
    whole), so a killed run's '.quantize_run_*' goes too, said in its own line."""
    import os
    import subprocess
    import sys

    import yolox_edge.quantize.ptq as ptq
    from yolox_edge.owners import host_tag, owner_tag

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a PID no process has now
    out, host = tmp_path / "q", host_tag()
    dead = out / f".quantize_int8_{host}.{ended.pid}.a1b2c3d4"
    kept = [out / f".quantize_int8_{host}.{os.getpid()}.e5f6g7h8", out / f".quantize_int8_gpu-node-7.{ended.pid}.i9j0",
            out / f".quantize_run_{host}.{ended.pid}.k1l2m3n4"]
    for p in [dead] + kept:
        p.mkdir(parents=True)
        (p / "model.onnx").write_bytes(b"half a model")
    work = []

    def stop(deploy, fmt, example, cal, tmp, *a):
        work.append(tmp)
        raise KeyboardInterrupt

    monkeypatch.setattr(ptq, "export_int8_graph", stop)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        ptq.quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=out, progress=False,
                                log=lines.append)
    stage = work[0].parent.parent  # out/.quantize_run_<this process>/onnx/.quantize_int8_<this process>.*
    assert stage.parent == out and stage.name.startswith(f".quantize_run_{owner_tag()}.")
    assert work[0].name.startswith(f".quantize_int8_{owner_tag()}.")
    assert any(kept[2].name in line for line in lines), lines  # the killed run's staging folder, said
    # its own folders went too; the live process's and the other host's stay
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in kept[:2])


def test_staging_folders_of_killed_runs_are_removed_by_the_next_run(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """A kill -9 left .quantize_run_* (QAT checkpoints, tens of MB) in --out for good. Its name now
    carries the run's host and PID: the next run on that host removes it once that process is gone,
    never while it lives. A PID of another host (an --out on a shared file system, another
    container) says nothing here: such a folder was removed while its run went on; now it is
    named, as are the older names without a host (a PID-only one whose process is gone here may
    be another host's)."""
    import os
    import subprocess
    import sys

    import yolox_edge.quantize.pipeline as pipeline
    from yolox_edge.quantize.staging import host_tag

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a PID no process has now
    out = tmp_path / "q"
    host = host_tag()
    dead = out / f".quantize_run_{host}.{ended.pid}.a1b2c3d4"
    live = out / f".quantize_run_{host}.{os.getpid()}.e5f6g7h8"  # a run going on now
    other = out / f".quantize_run_gpu-node-7.{ended.pid}.k1l2m3n4"  # another host's: its PID means nothing here
    older = out / ".quantize_run_x9y8z7w6"  # an earlier yolox_edge's, no PID in the name
    pid_only = out / f".quantize_run_{ended.pid}.q1w2e3r4"  # the last one's, PID but no host
    pid_only_live = out / f".quantize_run_{os.getpid()}.t5y6u7i8"  # alive here: left alone, unsaid
    for d in (dead, live, other, older, pid_only, pid_only_live):
        (d / ".qat_x" / "run").mkdir(parents=True)
        (d / ".qat_x" / "run" / "last.pt").write_bytes(b"epoch 1")
    seen = {}

    def recording(*a):
        seen["stage"] = a[5].parent.name
        return fake_export(*a)

    monkeypatch.setattr(pipeline, "quantize_detector", recording)
    lines: list[str] = []
    pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "ncnn"], out=out, progress=False,
                          log=lines.append)
    assert not dead.exists() and (live / ".qat_x" / "run" / "last.pt").is_file()
    assert seen["stage"].startswith(f".quantize_run_{host}.{os.getpid()}.")  # this run's own, with host and PID
    kept = [live, other, older, pid_only, pid_only_live]
    assert sorted(_hidden(out)) == sorted(d.name for d in kept)
    assert all((d / ".qat_x" / "run" / "last.pt").is_file() for d in kept)
    assert (f"quantize: removed 1 staging folder left in {out} by a quantize run that was killed ({dead.name}; "
            "its process is gone)") in lines, lines
    assert (f"quantize: {pid_only.name}, {older.name} in {out}: left by an older yolox-edge quantize (no host name "
            "in the name, so not removed: it may be a run going on, here or on another machine); delete it if no "
            "quantize is writing into this folder now") in lines, lines
    assert (f"quantize: {other.name} in {out}: a quantize run's staging folder from gpu-node-7, not this machine "
            f"({host}): not removed, as whether that run goes on cannot be told from here; delete it if no quantize "
            "there is writing into this folder") in lines, lines
    lines.clear()
    pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "ncnn"], out=out, progress=False,
                          log=lines.append, force=True)
    assert not any(line.startswith("quantize: removed") for line in lines) and live.is_dir()


def test_on_windows_this_hosts_staging_folders_are_named_not_swept_unsaid(tmp_path, monkeypatch):
    """Windows cannot probe a PID (os.kill ends the process): this host's folders were taken for a
    run going on and left with nothing said, for good. Now they are named in one line; a PID-only
    one joins the older ones' line; this process's own is still left unsaid."""
    import os

    import yolox_edge.quantize.staging as staging
    from yolox_edge import owners

    class WindowsOs:  # os.name is read by pathlib too: patched for owners only
        name = "nt"

        def __getattr__(self, key):
            return getattr(os, key)

    monkeypatch.setattr(owners, "os", WindowsOs())  # the PID probe staging shares with atomic writes
    host = staging.host_tag()
    out = tmp_path / "q"
    killed = out / f".quantize_run_{host}.999999.a1b2c3d4"
    pid_only = out / ".quantize_run_999998.q1w2e3r4"
    own = out / f".quantize_run_{host}.{os.getpid()}.e5f6g7h8"
    for d in (killed, pid_only, own):
        d.mkdir(parents=True)
    removed, older, elsewhere, unprobed = staging.sweep_stale_stages(out)
    assert (removed, older, elsewhere, unprobed) == ([], [pid_only], [], [killed])
    assert killed.is_dir() and pid_only.is_dir() and own.is_dir()
    lines = staging.stale_stage_lines(out, removed, older, elsewhere, unprobed)
    assert len(lines) == 2 and lines[1] == (
        f"quantize: {killed.name} in {out}: a quantize run's staging folder from this machine, left if that run "
        "was killed: not removed, as Windows cannot tell whether its process is still running; delete it if no "
        "quantize is writing into this folder now"), lines


def test_a_staging_folder_of_another_pid_namespace_is_named_not_swept(tmp_path, monkeypatch):
    """A container run with --net=host has the host's name but its own PIDs: its live run's folder
    looked dead here (no such PID) and was removed under it. The name now carries the PID
    namespace, and only ours are swept; one in the older HOST.PID form is judged as before."""
    import os
    import subprocess
    import sys

    import yolox_edge.quantize.staging as staging
    from yolox_edge import owners

    monkeypatch.setattr(owners, "pid_namespace", lambda: 4026531836)  # as /proc/self/ns/pid's inode reads
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a PID no process has here
    host, out = staging.host_tag(), tmp_path / "q"
    ours = out / f".quantize_run_{host}.{ended.pid}.4026531836.a1b2c3d4"
    container = out / f".quantize_run_{host}.{ended.pid}.4026532999.e5f6g7h8"  # alive in its own namespace
    before = out / f".quantize_run_{host}.{ended.pid}.12345678"  # HOST.PID, all-digit suffix: no namespace
    for d in (ours, container, before):
        d.mkdir(parents=True)
    removed, older, elsewhere, unprobed = staging.sweep_stale_stages(out)
    assert (sorted(removed), older, elsewhere, unprobed) == (sorted([ours, before]), [], [container], [])
    assert container.is_dir() and not ours.exists() and not before.exists()
    assert staging.stale_stage_lines(out, removed, older, elsewhere, unprobed)[1] == (
        f"quantize: {container.name} in {out}: a quantize run's staging folder from another container or PID "
        f"namespace of this machine ({host}): not removed, as whether that run goes on cannot be told from here; "
        "delete it if no quantize there is writing into this folder")
    with staging.StagedOutput(out) as stage:
        assert stage.dir.name.startswith(f".quantize_run_{host}.{os.getpid()}.4026531836.")
    monkeypatch.setattr(owners, "pid_namespace", lambda: None)  # no /proc: host and PID alone, no NS in the name
    with staging.StagedOutput(out) as stage:
        assert staging._STAGE_NAME.fullmatch(stage.dir.name).group(2, 3) == (str(os.getpid()), None)
    assert staging.sweep_stale_stages(out)[2] == [container]  # its namespace cannot be matched: left


def test_the_host_in_a_staging_folders_name_has_no_dots(monkeypatch):
    """The name splits at dots (.quantize_run_HOST.PID.XXXXXXXX): a domain name's become '-'."""
    import socket

    from yolox_edge.quantize.staging import host_tag

    monkeypatch.setattr(socket, "gethostname", lambda: "node1.lab.example.org")
    assert host_tag() == "node1-lab-example-org"
    monkeypatch.setattr(socket, "gethostname", lambda: "")
    assert host_tag() == "unknown-host"


def test_committed_exports_are_on_disk_their_model_files_before_their_metadata(tiny_ckpt, tiny_calib, tmp_path,
                                                                               monkeypatch, fsync_log):
    """The staged files (written by the exporters, unflushed) are flushed before their renames
    into the format's folder, that folder after, and metadata.json is renamed only after the
    model files' renames are on disk. They were moved by bare renames: after a power loss the
    folder could hold an empty model file, or a metadata.json naming one whose rename was lost."""
    import yolox_edge.quantize.pipeline as pipeline

    out = tmp_path / "q"
    monkeypatch.setattr(pipeline, "quantize_detector", fake_export)
    pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=out, progress=False, log=None)
    meta = fsync_log.assert_durable(out / "metadata.json")
    model = fsync_log.assert_durable(out / "m.onnx")
    assert model < meta and fsync_log.synced(out, model + 1, meta), fsync_log.events
