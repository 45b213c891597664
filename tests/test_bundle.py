"""Bundles: package, verify, and refuse what is damaged or hostile (zip slip, sizes, sha256)."""
from __future__ import annotations

import hashlib
import io
import json
import random
import re
import zipfile
from pathlib import Path

import pytest

from yolox_edge.bundle import package_bundle, safe_extract, verify_bundle
from yolox_edge.bundle import safezip
from yolox_edge.data.preprocess import PreprocessConfig
from yolox_edge.errors import UserError
from yolox_edge.export.metadata import build_metadata, output_specs, write_metadata

NAMES = ["person", "bicycle", "car"]


def fake_export(folder: Path, fmt: str = "ncnn", kind: str = "topk", category_ids: list[int] | None = None) -> Path:
    """An export folder whose model files are opaque bytes: enough for everything but inference."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"ncnn": ["model.ncnn.param", "model.ncnn.bin"], "onnx": ["model.onnx"],
             "openvino": ["model.xml", "model.bin"]}[fmt]
    rng = random.Random(0)
    for f in files:
        (folder / f).write_bytes(bytes(rng.randrange(256) for _ in range(3000)))
    outputs = output_specs(kind, batch=1, num_anchors=84, num_classes=3, topk=10, label_dtype="float32",
                           blobs=["out0", "out1", "out2"][: 3 if kind == "topk" else 2])
    meta = build_metadata(fmt=fmt, model_file=files[0], model_name="yolox_test", variant="test", class_names=NAMES,
                          preprocess=PreprocessConfig(input_size=(64, 64)), strides=(8, 16, 32), kind=kind, topk=10,
                          input_name="in0", batch=1, outputs=outputs, precision="fp32", source_sha256="ab" * 32,
                          category_ids=category_ids)
    write_metadata(folder, meta, files)
    return folder


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    out = tmp_path / "b.zip"
    package_bundle(fake_export(tmp_path / "export"), target="ncnn", out=out, conf=0.35)
    return out


def rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a zip entry by entry; ``edit(name, data)`` returns new (name, data) or None to drop it."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            res = edit(info.filename, zin.read(info))
            if res is not None:
                zout.writestr(res[0], res[1])
    return dst


def test_package_contents_and_verify(bundle: Path, run_cli) -> None:
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("metadata.json"))
        sums = zf.read("SHA256SUMS").decode()
        card = zf.read("MODEL_CARD.md").decode()
        labels = zf.read("labels.txt").decode().splitlines()
        for line in sums.splitlines():  # sha256sum's own format, every other entry
            digest, name = line.split("  ")
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
    assert names == {"model.ncnn.param", "model.ncnn.bin", "metadata.json", "labels.txt", "MODEL_CARD.md", "SHA256SUMS"}
    assert len(sums.splitlines()) == len(names) - 1
    assert labels == NAMES and meta["postprocess"]["conf"] == 0.35 and meta["bundle"]["target"] == "ncnn"
    for word in ("variant | test", "precision | fp32", "input size | 64x64", "3 (labels.txt)", "ab" * 32, "Not measured"):
        assert word in card
    rep = verify_bundle(bundle)
    assert rep["ok"] and rep["classes"] == 3 and rep["target"] == "ncnn" and len(rep["files"]) == 5
    code, out, err = run_cli("verify", bundle)
    assert code == 0 and "OK" in out, err
    before = bundle.read_bytes()  # a shipped bundle is not replaced by a typo in --out
    code, out, err = run_cli("package", bundle.parent / "export", "--target", "ncnn", "--out", bundle)
    assert code == 2 and "a bundle is already there" in err and "--force" in err
    assert bundle.read_bytes() == before
    code, out, err = run_cli("package", bundle.parent / "export", "--target", "ncnn", "--out", bundle, "--force")
    assert code == 0, err
    bundle.write_bytes(bundle.read_bytes()[:-40])  # damaged: --json still gives a record to read
    code, out, err = run_cli("verify", bundle, "--json")
    assert code == 2 and json.loads(out)["ok"] is False and str(bundle) in err


def test_package_is_deterministic_and_checks_target(tmp_path: Path) -> None:
    exp = fake_export(tmp_path / "e")
    a, b = package_bundle(exp, target="ncnn", out=tmp_path / "a.zip"), package_bundle(exp, target="ncnn",
                                                                                      out=tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes() and a["files"] == b["files"]
    with pytest.raises(UserError, match="is an ncnn export, not onnx; export it with 'yolox-edge export"):
        package_bundle(exp, target="onnx", out=tmp_path / "c.zip")
    # an INT8 folder: quantize makes the other format, export would make an FP32 one
    q = fake_export(tmp_path / "q")
    meta_q = json.loads((q / "metadata.json").read_text())
    meta_q["quantization"] = {"method": "ptq"}
    (q / "metadata.json").write_text(json.dumps(meta_q))
    with pytest.raises(UserError, match=r"is an ncnn export, not openvino; quantize it with 'yolox-edge quantize "
                                        r"CHECKPOINT --calib DIR --format openvino' or pass --target ncnn"):
        package_bundle(q, target="openvino", out=tmp_path / "q.zip")
    with pytest.raises(UserError, match=r"\.zip"):
        package_bundle(exp, target="ncnn", out=tmp_path / "c.tar")
    (exp / "model.ncnn.bin").write_bytes(b"edited")
    with pytest.raises(UserError, match="sha256"):
        package_bundle(exp, target="ncnn", out=tmp_path / "d.zip")
    raw = fake_export(tmp_path / "raw", kind="raw")
    with pytest.raises(UserError, match="decode in the graph"):
        package_bundle(raw, target="ncnn", out=tmp_path / "e.zip")
    before = (tmp_path / "a.zip").read_bytes()  # the library refuses to replace a bundle, as the CLI does
    with pytest.raises(UserError, match="already there"):
        package_bundle(fake_export(tmp_path / "e2"), target="ncnn", out=tmp_path / "a.zip", conf=0.5)
    assert (tmp_path / "a.zip").read_bytes() == before
    assert package_bundle(fake_export(tmp_path / "e2"), target="ncnn", out=tmp_path / "a.zip", conf=0.5,
                          force=True)["ok"]


@pytest.mark.parametrize("name", ["traffic\u2028light", "a\x0bb", "", "two\nlines"])
def test_a_class_name_that_is_not_one_line_is_refused_and_nothing_written(tmp_path: Path, name: str) -> None:
    exp = fake_export(tmp_path / "e")
    meta = json.loads((exp / "metadata.json").read_text())
    meta["class_names"][1] = name
    (exp / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="cannot be written to labels.txt"):
        package_bundle(exp, target="ncnn", out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_package_names_the_app_thresholds_the_graph_overrides(tmp_path: Path) -> None:
    exp = fake_export(tmp_path / "e", fmt="onnx")  # top-K 10 in its graph
    meta = json.loads((exp / "metadata.json").read_text())
    meta["graph"]["nms"] = {"iou": 0.65, "conf": 0.001, "class_aware": True}
    (exp / "metadata.json").write_text(json.dumps(meta))
    assert package_bundle(exp, target="onnx", out=tmp_path / "a.zip", max_det=10)["notes"] == []
    notes = package_bundle(exp, target="onnx", out=tmp_path / "b.zip", conf=0.0001, iou=0.8, max_det=300)["notes"]
    assert len(notes) == 3 and "at most 10 detections" in notes[0] and "--topk 300" in notes[0]
    assert "scores above 0.001" in notes[1] and "IoU 0.65" in notes[2]


def test_the_top_k_note_at_the_anchor_count_says_the_anchors_not_topk() -> None:
    """A top-K capped at the anchors (84 at 64 px) said 'export with --topk 100', which gives 84 again."""
    from yolox_edge.bundle.package import graph_limits

    (note,) = graph_limits({"output_kind": "topk", "topk": 84}, 0.25, 0.45, 100, anchors=84)
    assert "at most 84 candidates (one per anchor at its input size)" in note and "--topk" not in note
    (note,) = graph_limits({"output_kind": "topk", "topk": 10}, 0.25, 0.45, 100, anchors=84)
    assert "export with --topk 100" in note


def test_a_bench_of_the_model_file_is_the_card_of_its_folder(tmp_path: Path) -> None:
    """bench q/x.param, package q: 'has no rows for q' when the JSON timed another artifact too."""
    exp = fake_export(tmp_path / "e", fmt="ncnn")
    meta = json.loads((exp / "metadata.json").read_text())
    row = {"baseline": False, "threads": 1, "backend": "ncnn", "precision": meta["precision"],
           "input_size": meta["input_size"]}
    rows = [dict(row, artifact=str(exp / "model.ncnn.param"), latency_ms={"model": {"p50": 7.0}}),
            dict(row, artifact=str(tmp_path / "other"), latency_ms={"model": {"p50": 3.0}})]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine": {"cpu": "c"}, "rows": rows}))
    rep = package_bundle(exp, target="ncnn", out=tmp_path / "o.zip", bench_json=bench)
    assert rep["latency"]["threads"] == {"1": {"model_p50_ms": 7.0}}


def test_extract_into_a_file_or_full_folder_is_one_clear_error(bundle: Path, run_cli) -> None:
    code, out, err = run_cli("verify", bundle, "--extract", bundle)  # a typo: the bundle itself
    assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err
    code, out, err = run_cli("verify", bundle, "--extract", bundle / "sub")
    assert code == 2 and "cannot create this folder" in err
    full = bundle.parent / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    code, out, err = run_cli("verify", bundle, "--extract", full)
    assert code == 2 and "not empty" in err and (full / "keep.txt").read_text() == "mine"
    code, out, err = run_cli("verify", bundle, "--extract", bundle.parent / "new")
    assert code == 0 and (bundle.parent / "new" / "labels.txt").read_text().split() == NAMES, err


def test_card_records_eval_and_bench(tmp_path: Path) -> None:
    exp = fake_export(tmp_path / "e", fmt="onnx")
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps({"AP": 0.2561, "AP50": 0.41, "data": "coco.yaml", "split": "val", "images": 80,
                              "backend": "onnxruntime", "precision": "fp32"}))
    bench = tmp_path / "bench.json"
    row = {"artifact": str(exp), "baseline": False, "threads": 2, "latency_ms": {"model": {"p50": 8.81}, "e2e": {"p50": 10.2}}}
    bench.write_text(json.dumps({"machine": {"cpu": "Test CPU"}, "rows": [row, dict(row, artifact="x", baseline=True)]}))
    rep = package_bundle(exp, target="onnx", out=tmp_path / "o.zip", eval_json=ev, bench_json=bench)
    assert rep["evaluation"]["AP"] == 0.2561 and rep["latency"]["threads"]["2"]["model_p50_ms"] == 8.81
    with zipfile.ZipFile(tmp_path / "o.zip") as zf:
        card = zf.read("MODEL_CARD.md").decode()
    assert "AP 0.2561" in card and "Test CPU" in card and "model 8.81 ms" in card
    ev.write_text("{}")
    with pytest.raises(UserError, match="eval --json"):
        package_bundle(exp, target="onnx", out=tmp_path / "p.zip", eval_json=ev)


@pytest.mark.parametrize("change, named", [
    ({"backend": "torch", "model": "best.pt"}, "runtime torch"),  # the FP32 checkpoint's AP
    ({"precision": "int8 weights, int8 layers + f32 inference"}, "precision int8"),
    ({"input_size": [320, 320]}, "input size [320, 320]"),  # eval --img-size 320
    ({"model": "OTHER"}, "not the export in"),  # another export of the same kind
])
def test_card_refuses_an_evaluation_of_another_model(tmp_path: Path, change: dict, named: str) -> None:
    exp = fake_export(tmp_path / "e", fmt="onnx")
    other = fake_export(tmp_path / "other", fmt="onnx")
    good = {"AP": 0.25, "AP50": 0.4, "backend": "onnxruntime", "precision": "fp32",
            "input_size": json.loads((exp / "metadata.json").read_text())["preprocess"]["input_size"]}
    ev = tmp_path / "ev.json"
    for model in (str(exp), str(exp / "metadata.json"), "elsewhere/relative"):  # this export, or unknown: kept
        ev.write_text(json.dumps(dict(good, model=model)))
        assert package_bundle(exp, target="onnx", out=tmp_path / "ok.zip", eval_json=ev,
                              force=True)["evaluation"]["AP"] == 0.25
    ev.write_text(json.dumps({**good, **change, "model": str(other) if change.get("model") == "OTHER"
                              else change.get("model", str(exp))}))
    with pytest.raises(UserError, match=re.escape(named) + ".*eval .*--json") as e:
        package_bundle(exp, target="onnx", out=tmp_path / "bad.zip", eval_json=ev)
    assert "ev.json" in str(e.value) and not (tmp_path / "bad.zip").exists()


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:]


def test_flipped_byte_in_model_fails_verify(bundle: Path, tmp_path: Path, run_cli) -> None:
    data = bundle.read_bytes()
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo("model.ncnn.bin")
    # The entry's compressed bytes start after its local header (30 bytes + name + extra).
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    bad = tmp_path / "flipped.zip"
    bad.write_bytes(_flip(data, start + info.compress_size // 2))
    code, out, err = run_cli("verify", bad)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "model.ncnn.bin" in err and "flipped.zip" in err


def test_edited_entry_with_valid_crc_fails_on_sha256(bundle: Path, tmp_path: Path) -> None:
    # Re-zipped with a fresh CRC: only the sha256 in SHA256SUMS can notice.
    bad = rewrite(bundle, tmp_path / "edited.zip",
                  lambda n, d: (n, _flip(d, 100) if n == "model.ncnn.param" else d))
    with pytest.raises(UserError, match=r"model.ncnn.param does not match its sha256 in SHA256SUMS"):
        verify_bundle(bad)
    extra = rewrite(bundle, tmp_path / "extra.zip", lambda n, d: (n, d))
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("payload.so", b"\x7fELF")
    with pytest.raises(UserError, match="payload.so is not listed in SHA256SUMS"):
        verify_bundle(extra)
    dropped = rewrite(bundle, tmp_path / "dropped.zip", lambda n, d: None if n == "labels.txt" else (n, d))
    with pytest.raises(UserError, match="labels.txt is listed in SHA256SUMS but missing"):
        verify_bundle(dropped)


@pytest.mark.parametrize("evil", ["../evil.txt", "/etc/evil", "a/../../evil", "C:/evil", "a\\..\\evil"])
def test_zip_slip_is_refused(bundle: Path, tmp_path: Path, run_cli, evil: str) -> None:
    bad = rewrite(bundle, tmp_path / "slip.zip", lambda n, d: (n, d))
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr(zipfile.ZipInfo(evil), b"owned")
    dest = tmp_path / "dest" / "inner"
    dest.mkdir(parents=True)
    with pytest.raises(UserError, match="zip slip|unsafe file name"):
        safe_extract(bad, dest)
    assert not any(dest.iterdir()) and not (tmp_path / "dest" / "evil.txt").exists()
    code, out, err = run_cli("verify", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "slip.zip" in err


def test_truncated_zip_fails_verify(bundle: Path, tmp_path: Path, run_cli) -> None:
    data = bundle.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        bad = tmp_path / f"cut{cut}.zip"
        bad.write_bytes(data[:cut])
        code, out, err = run_cli("verify", bad)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "truncated or damaged" in err, err


def test_a_file_that_is_no_zip_is_named_as_such_not_as_a_damaged_bundle(tmp_path: Path, run_cli) -> None:
    """verify dog.jpg said 'truncated or damaged; download it again or rebuild it'."""
    photo = tmp_path / "dog.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    code, _, err = run_cli("verify", photo)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "dog.jpg: not a zip file, so not a bundle; give the .zip file 'yolox-edge package' wrote" in err, err


def test_size_and_entry_bounds(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(safezip, "MAX_ENTRY_BYTES", 1000)
    with pytest.raises(UserError, match="over the 1000 byte limit"):
        verify_bundle(bundle)
    monkeypatch.setattr(safezip, "MAX_ENTRY_BYTES", 1 << 20)
    monkeypatch.setattr(safezip, "MAX_TOTAL_BYTES", 5000)
    with pytest.raises(UserError, match="uncompressed is over"):
        verify_bundle(bundle)
    monkeypatch.setattr(safezip, "MAX_ENTRIES", 3)
    with pytest.raises(UserError, match="entry limit"):
        verify_bundle(bundle)


def test_a_zip_that_is_plainly_not_a_bundle_says_what_it_is(tmp_path: Path, monkeypatch, run_cli) -> None:
    """verify model.pt (torch.save writes a zip) said '468 entries is over the 64 entry limit; not a
    yolox_edge bundle'. Told from the zip's listing alone: no entry is read."""
    torch = pytest.importorskip("torch")

    ckpt = tmp_path / "model.pt"
    torch.save({"model": [torch.zeros(2) for _ in range(safezip.MAX_ENTRIES + 10)]}, ckpt)
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("a.jpg", b"x")

    def no_reading(*a, **kw):
        raise AssertionError("an entry was read")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(UserError, match=re.escape(
            f"{ckpt}: a torch checkpoint (zip), not a yolox_edge bundle; export it ('yolox-edge export {ckpt} "
            "--format ncnn --out EXPORT') and package that with 'yolox-edge package EXPORT --target ncnn "
            "--out NAME.zip'")):
        verify_bundle(ckpt)
    with pytest.raises(UserError, match=re.escape(
            f"{other}: a zip without SHA256SUMS or metadata.json, not a yolox_edge bundle; package an export with "
            "'yolox-edge package EXPORT --target ncnn --out NAME.zip'")):
        safe_extract(other, tmp_path / "dest")
    monkeypatch.undo()
    code, out, err = run_cli("verify", ckpt)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "a torch checkpoint (zip)" in err, err


def test_symlink_entry_is_refused(bundle: Path, tmp_path: Path) -> None:
    bad = rewrite(bundle, tmp_path / "link.zip", lambda n, d: (n, d))
    link = zipfile.ZipInfo("model.link")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(UserError, match="link or special file"):
        verify_bundle(bad)


def test_entries_differing_only_in_case_are_refused_in_one_line(bundle: Path, tmp_path: Path, run_cli) -> None:
    """'labels.txt' and 'Labels.txt' are one file on macOS and Windows: extracting there stopped
    with a FileExistsError traceback. Refused from the listing, on every system, before any byte."""
    bad = rewrite(bundle, tmp_path / "case.zip", lambda n, d: (n, d))
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("Labels.txt", b"x\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UserError, match="'labels.txt' and 'Labels.txt' differ only in case"):
        safe_extract(bad, dest)
    assert not any(dest.iterdir())
    code, _, err = run_cli("verify", bad)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "differ only in case" in err, err


def test_every_single_byte_flip_is_caught_or_harmless(bundle: Path, tmp_path: Path) -> None:
    """No flipped byte may crash verify or change what it extracts: it is refused or provably harmless."""
    data = bundle.read_bytes()
    good = tmp_path / "good"
    good.mkdir()
    ref = {e.name: e.sha256 for e in safe_extract(bundle, good)}
    rng = random.Random(1)
    positions = sorted(set(range(0, 64)) | set(range(len(data) - 200, len(data)))
                       | {rng.randrange(len(data)) for _ in range(150)})
    refused = 0
    for pos in positions:
        bad = tmp_path / "f.zip"
        bad.write_bytes(_flip(data, pos))
        try:
            rep = verify_bundle(bad)
        except UserError:
            refused += 1
            continue
        # Accepted: only zip bookkeeping (dates, attributes, comment) was hit; the content is identical.
        assert {n: f["sha256"] for n, f in rep["files"].items()} == ref, pos
    assert refused > len(positions) // 2


def test_bundle_text_entries_are_bounded(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    """labels.txt and metadata.json are read whole: only SHA256SUMS was bounded, and a 0.6 MB zip
    whose labels.txt held 64 MiB of newlines took 700 MiB of memory before any check refused it."""
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(bundle) as zf, zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as out:
        for n in zf.namelist():
            out.writestr(n, b"\n" * 5000 if n == "labels.txt" else zf.read(n))
    assert big.stat().st_size < 3 * bundle.stat().st_size
    monkeypatch.setattr(safezip, "MAX_TEXT_BYTES", 4096)
    with pytest.raises(UserError, match=r"big\.zip: entry 'labels\.txt' is 5000 bytes, over the 4096 byte limit; "
                                        r"refusing to extract it"):
        verify_bundle(big)
    verify_bundle(bundle)  # its own text entries are under the limit; a model file may be far over it
    monkeypatch.setattr(safezip, "MAX_TEXT_BYTES", 10)
    with pytest.raises(UserError, match=r"entry '(metadata\.json|labels\.txt|MODEL_CARD\.md|SHA256SUMS)' is \d+ "
                                        r"bytes, over the 10 byte limit"):
        verify_bundle(bundle)


def test_labels_must_match_metadata(bundle: Path, tmp_path: Path) -> None:
    # Consistent sha256s but labels that disagree with metadata: refused at the contract check.
    contents = {}
    with zipfile.ZipFile(bundle) as zf:
        for n in zf.namelist():
            contents[n] = zf.read(n)
    contents["labels.txt"] = b"person\nbike\ncar\n"
    contents["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in contents.items()
                                     if n != "SHA256SUMS").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in contents.items():
            zf.writestr(n, d)
    bad = tmp_path / "labels.zip"
    bad.write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="labels.txt does not match"):
        verify_bundle(bad)


@pytest.fixture(scope="module")
def nano_onnx_bundle(nano_coco_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official Nano exported to ONNX (top-K in the graph) and packaged."""
    from yolox_edge.export.api import export_model

    d = tmp_path_factory.mktemp("nano_bundle")
    export_model(nano_coco_ckpt, format="onnx", out=d / "export")
    out = d / "nano_onnx.zip"
    package_bundle(d / "export", target="onnx", out=out)
    return out


@pytest.mark.refdata
@pytest.mark.slow
def test_predict_eval_bench_accept_a_bundle(nano_onnx_bundle: Path, refdata: Path, run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("verify", nano_onnx_bundle)
    assert code == 0 and "yolox_nano (nano) onnx fp32, 80 classes, input 416x416" in out, err
    code, out, err = run_cli("predict", nano_onnx_bundle, refdata / "images" / "dog.jpg", "--json")
    assert code == 0, err
    dets = json.loads(out)[0]["detections"]
    assert [d["name"] for d in dets[:3]] == ["dog", "bicycle", "car"]
    # Official reference (refdata README): dog [133,207,326,543], bicycle [52,137,572,424], car [466,78,692,171].
    for d, ref in zip(dets, ([133, 207, 326, 543], [52, 137, 572, 424], [466, 78, 692, 171])):
        assert max(abs(a - b) for a, b in zip(d["box"], ref)) <= 1.0
    code, out, err = run_cli("bench", nano_onnx_bundle, "--threads", "1", "--warmup", "1", "--runs", "2",
                             "--mode", "model", "--no-rss")
    assert code == 0 and "onnx" in out.lower(), err
    data = refdata / "coco_tiny" / "data.yaml"
    code, out, err = run_cli("eval", nano_onnx_bundle, "--data", data, "--split", "val", "--json", tmp_path / "ev.json")
    assert code == 0, err
    ap = json.loads((tmp_path / "ev.json").read_text())["AP"]
    assert ap > 0.15  # official Nano on 80 real COCO val images; a broken bundle scores ~0


def _repack(bundle: Path, dst: Path, edit_meta) -> Path:
    """Rebuild a bundle with edited metadata.json and a matching SHA256SUMS (a careful forger)."""
    def edit(contents: dict[str, bytes]) -> None:
        meta = json.loads(contents["metadata.json"])
        edit_meta(meta)
        contents["metadata.json"] = json.dumps(meta).encode()

    return _resum(bundle, dst, edit)


def test_metadata_must_agree_with_the_files(bundle: Path, tmp_path: Path) -> None:
    bad = _repack(bundle, tmp_path / "m1.zip", lambda m: m.update(model_file="../../etc/passwd.param"))
    with pytest.raises(UserError, match=r"model_file '../../etc/passwd.param' is not one of the files it lists"):
        verify_bundle(bad)
    # A bundle never names a checkpoint (or anything else the runtime would unpickle) as its model.
    bad = _repack(bundle, tmp_path / "m0.zip", lambda m: m.update(model_file="model.ncnn.bin"))
    with pytest.raises(UserError, match="is not a ncnn model"):
        verify_bundle(bad)
    bad = _repack(bundle, tmp_path / "m2.zip", lambda m: m["files"].update({"model.ncnn.bin": "0" * 64}))
    with pytest.raises(UserError, match="model.ncnn.bin in metadata.json does not match"):
        verify_bundle(bad)
    bad = _repack(bundle, tmp_path / "m3.zip", lambda m: m.pop("bundle"))
    with pytest.raises(UserError, match="lacks the bundle section"):
        verify_bundle(bad)


def test_card_states_the_network_size_from_metadata(bundle: Path) -> None:
    from yolox_edge.bundle.card import render_card

    with zipfile.ZipFile(bundle) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert "size of the network | unknown" in render_card(meta, target="ncnn", files={}, evaluation=None, latency=None)
    meta["counts"] = {"params_m": 0.9122, "gflops": 1.079}
    card = render_card(meta, target="ncnn", files={}, evaluation=None, latency=None)
    assert "size of the network | 0.912 M parameters, 1.08 GFLOPs at the input size" in card


def test_card_says_how_many_calibration_images_the_statistics_took(bundle: Path) -> None:
    from yolox_edge.bundle.card import render_card

    with zipfile.ZipFile(bundle) as zf:
        meta = json.loads(zf.read("metadata.json"))
    meta["quantization"] = {"method": "ptq", "engine": "nncf", "calibration": {"count": 100, "used": 16,
                                                                               "source": "calib", "sha256": "ab"}}
    assert "calibration 16 of 100 images from calib" in render_card(meta, target="ncnn", files={}, evaluation=None,
                                                                     latency=None)
    meta["quantization"]["calibration"]["used"] = 100
    assert "calibration 100 images from calib" in render_card(meta, target="ncnn", files={}, evaluation=None,
                                                              latency=None)


def _resum(bundle: Path, dst: Path, edit) -> Path:
    """Rebuild a bundle after ``edit(contents)`` changed its entries, with SHA256SUMS summed again."""
    with zipfile.ZipFile(bundle) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    edit(contents)
    contents["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in contents.items()
                                     if n != "SHA256SUMS").encode()
    with zipfile.ZipFile(dst, "w") as zf:
        for n, d in contents.items():
            zf.writestr(n, d)
    return dst


@pytest.mark.parametrize("edit, said", [
    (lambda m: m.update(files=sorted(m["files"])), "files must map file names in the export's folder to their sha256"),
    (lambda m: m["files"].update({"model.ncnn.bin": 5}), "files must map file names"),
    (lambda m: m.update(model_file=3), "model_file 3 is not one of the files it lists"),
    (lambda m: m["bundle"].update(schema_version="2"), "schema_version '2' is not a whole number"),
    (lambda m: m.update(schema_version="1"), "schema_version must be a number"),
    (lambda m: m.update(graph=[]), "graph an object"),
    (lambda m: m.update(postprocess="fast"), "postprocess 'fast'"),
    (lambda m: m["postprocess"].update(conf=30), "conf and nms in [0, 1]"),  # a percentage: the app shows nothing
    (lambda m: m["postprocess"].update(max_det=2.5), "max_det from 1 to 2147483647"),
    (lambda m: m["postprocess"].update(max_det=2**31), "max_det from 1 to 2147483647"),  # the app's int
    (lambda m: m["postprocess"].update(agnostic="no"), "agnostic true/false"),
    (lambda m: m["postprocess"].pop("nms"), "conf and nms"),
    (lambda m: m["bundle"].update(evaluation="0.3"), "no numeric AP"),
    (lambda m: m["bundle"].update(evaluation={"AP50": 0.4}), "no numeric AP"),
    (lambda m: m["bundle"].update(latency=[1]), "latency is not a table"),
])
def test_hand_edited_metadata_is_one_line_not_a_traceback(bundle: Path, tmp_path: Path, run_cli, edit, said) -> None:
    # SHA256SUMS is no signature: whoever edits metadata.json can sum again; verify, info and predict
    # (which use these fields as they are) must still answer with one line and exit 2.
    def change(contents: dict) -> None:
        meta = json.loads(contents["metadata.json"])
        edit(meta)
        contents["metadata.json"] = json.dumps(meta).encode()

    bad = _resum(bundle, tmp_path / "edited.zip", change)
    with pytest.raises(UserError, match=re.escape(said)):
        verify_bundle(bad)
    for cmd in ("verify", "info"):
        code, out, err = run_cli(cmd, bad)
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "edited.zip" in err and said in err


def test_labels_that_are_not_utf8_are_one_line(bundle: Path, tmp_path: Path, run_cli) -> None:
    bad = _resum(bundle, tmp_path / "latin1.zip", lambda c: c.update({"labels.txt": "caf\xe9\n".encode("latin-1")}))
    code, out, err = run_cli("verify", bad)
    assert code == 2 and "labels.txt is not UTF-8" in err and "Traceback" not in err, err


def test_a_file_summed_in_after_packaging_is_refused(bundle: Path, tmp_path: Path) -> None:
    # Listed in SHA256SUMS but neither in metadata.json nor a bundle file: prepare_assets.sh would
    # copy it into the app with the model.
    bad = _resum(bundle, tmp_path / "extra.zip", lambda c: c.update({"run.sh": b"#!/bin/sh\n"}))
    with pytest.raises(UserError, match="run.sh is neither listed in metadata.json nor a bundle file"):
        verify_bundle(bad)


def test_verify_a_folder_says_it_is_a_folder(tmp_path: Path, run_cli) -> None:
    (tmp_path / "b.zip").mkdir()  # unzipped by a file manager into a folder of the same name
    code, out, err = run_cli("verify", tmp_path / "b.zip")
    assert code == 2 and "is a folder, not a bundle" in err, err


@pytest.mark.parametrize("rows", [
    [{"artifact": "x"}],  # no threads
    [{"artifact": "x", "threads": "two", "latency_ms": {"model": {"p50": 1.0}}}],
    [{"artifact": "x", "threads": 2, "latency_ms": {"model": {"p50": "fast"}}}],
    [{"artifact": "x", "threads": 2, "latency_ms": ["model"]}],
])
def test_a_malformed_bench_json_is_one_line(tmp_path: Path, rows: list) -> None:
    exp = fake_export(tmp_path / "e", fmt="onnx")
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine": {"cpu": "Test CPU"}, "rows": rows}))
    with pytest.raises(UserError, match="not the JSON of 'yolox-edge bench --json'"):
        package_bundle(exp, target="onnx", out=tmp_path / "o.zip", bench_json=bench)
    with pytest.raises(UserError, match="missing.json: not found"):
        package_bundle(exp, target="onnx", out=tmp_path / "o.zip", bench_json=tmp_path / "missing.json")
    assert not (tmp_path / "o.zip").exists()


def test_a_bench_of_another_model_run_elsewhere_is_not_put_on_the_card(tmp_path: Path) -> None:
    """A bench JSON of one artifact is taken for this export when run from another folder (paths
    differ); a bench of a torch checkpoint went onto an ONNX bundle's card as its latency."""
    exp = fake_export(tmp_path / "e", fmt="onnx")
    meta = json.loads((exp / "metadata.json").read_text())
    bench = tmp_path / "bench.json"
    row = {"artifact": "elsewhere/onnx", "baseline": False, "threads": 1, "backend": "onnxruntime",
           "precision": meta["precision"], "input_size": meta["input_size"],
           "latency_ms": {"model": {"p50": 5.0}, "e2e": {"p50": 6.0}}}
    bench.write_text(json.dumps({"machine": {"cpu": "c"}, "rows": [row]}))
    rep = package_bundle(exp, target="onnx", out=tmp_path / "o.zip", bench_json=bench)  # the same model: taken
    assert rep["latency"]["threads"]["1"]["model_p50_ms"] == 5.0
    bench.write_text(json.dumps({"machine": {"cpu": "c"}, "rows": [dict(row, artifact="m.pt", backend="torch")]}))
    with pytest.raises(UserError, match=r"bench\.json: times m\.pt \(torch fp32 at .*\), not .* \(onnxruntime"):
        package_bundle(exp, target="onnx", out=tmp_path / "p.zip", bench_json=bench)
    assert not (tmp_path / "p.zip").exists()


def test_the_card_takes_the_f32_row_of_a_bench_with_precision_hints(tmp_path: Path) -> None:
    """bench --precision-hint f32,bf16 gives an artifact a row per hint at each thread count: the
    last (bf16's) went onto the card, unnamed, as the export's latency."""
    exp = fake_export(tmp_path / "e", fmt="openvino")
    meta = json.loads((exp / "metadata.json").read_text())
    row = {"artifact": str(exp), "baseline": False, "threads": 1, "backend": "openvino",
           "precision": meta["precision"], "input_size": meta["input_size"]}
    rows = [dict(row, precision_hint="f32", latency_ms={"model": {"p50": 9.0}}),
            dict(row, precision_hint="bf16", latency_ms={"model": {"p50": 4.0}})]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine": {"cpu": "c"}, "rows": rows}))
    rep = package_bundle(exp, target="openvino", out=tmp_path / "o.zip", bench_json=bench)
    assert rep["latency"]["threads"] == {"1": {"model_p50_ms": 9.0}}
    bench.write_text(json.dumps({"machine": {"cpu": "c"}, "rows": rows[1:]}))  # bf16 alone: not the app's f32
    with pytest.raises(UserError, match=r"times .* only at --precision-hint bf16, and the app runs it in f32"):
        package_bundle(exp, target="openvino", out=tmp_path / "q.zip", bench_json=bench)
    for r in rows:  # an earlier bench's rows, which did not say their hint: not guessed
        del r["precision_hint"]
    bench.write_text(json.dumps({"machine": {"cpu": "c"}, "rows": rows}))
    with pytest.raises(UserError, match=r"bench\.json: times .* in several precisions at one thread count"):
        package_bundle(exp, target="openvino", out=tmp_path / "p.zip", bench_json=bench)


def test_nan_never_reaches_the_apps_metadata(bundle: Path, tmp_path: Path) -> None:
    # Python's json writes and reads NaN; the app's strict JSON reader refuses the whole file.
    exp = fake_export(tmp_path / "e", fmt="onnx")
    ev = tmp_path / "ev.json"
    ev.write_text('{"AP": NaN, "AP50": 0.4}')
    with pytest.raises(UserError, match="ev.json: holds NaN or Infinity"):
        package_bundle(exp, target="onnx", out=tmp_path / "o.zip", eval_json=ev)
    bench = tmp_path / "bench.json"
    bench.write_text('{"rows": [{"artifact": "x", "threads": 1, "latency_ms": {"model": {"p50": Infinity}}}]}')
    with pytest.raises(UserError, match="bench.json: holds NaN or Infinity"):
        package_bundle(exp, target="onnx", out=tmp_path / "o.zip", bench_json=bench)
    meta = json.loads((exp / "metadata.json").read_text())
    (exp / "metadata.json").write_text(json.dumps(dict(meta, counts={"params_m": float("nan"), "gflops": 1.0})))
    with pytest.raises(UserError, match="metadata.json: holds NaN or Infinity"):
        package_bundle(exp, target="onnx", out=tmp_path / "o.zip")
    assert not (tmp_path / "o.zip").exists()

    def nan_ap(contents: dict) -> None:  # a bundle written before this check
        m = json.loads(contents["metadata.json"])
        m["bundle"]["evaluation"] = {"AP": float("nan"), "AP50": 0.4}
        contents["metadata.json"] = json.dumps(m).encode()

    with pytest.raises(UserError, match="NaN or Infinity"):
        verify_bundle(_resum(bundle, tmp_path / "nan.zip", nan_ap))


def _no_sdk_path(tmp_path: Path) -> str:
    """A PATH with the tools prepare_assets.sh uses but not yolox-edge: its unzip + sha256sum path."""
    import shutil

    tools = ("bash", "unzip", "sha256sum", "mktemp", "mkdir", "rm", "mv", "grep", "ls", "tr", "basename",
             "dirname", "find", "sort", "uniq")
    found = {t: shutil.which(t) for t in tools}
    if not all(found.values()):
        pytest.skip(f"needs {', '.join(t for t, w in found.items() if not w)}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for t, where in found.items():
        (bin_dir / t).symlink_to(where)
    return str(bin_dir)


def test_prepare_assets_without_the_sdk_refuses_a_link(bundle: Path, tmp_path: Path) -> None:
    # unzip makes a symlink entry a link; sha256sum follows it, so a link to a file whose sha256 is
    # known passed, and Gradle would pack the developer's file into the APK.
    import shutil
    import stat
    import subprocess

    demo = tmp_path / "android_demo"  # a copy: the script writes the assets beside itself
    demo.mkdir()
    script = Path(__file__).resolve().parents[1] / "android_demo" / "prepare_assets.sh"
    shutil.copy(script, demo / "prepare_assets.sh")
    secret = tmp_path / "secret.txt"
    secret.write_text("the developer's\n")
    with zipfile.ZipFile(bundle) as zf:
        contents = {i.filename: (i, zf.read(i)) for i in zf.infolist()}
    link = zipfile.ZipInfo("MODEL_CARD.md")
    link.create_system, link.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    contents["MODEL_CARD.md"] = (link, str(secret).encode())
    sums = {n: hashlib.sha256(secret.read_bytes() if n == "MODEL_CARD.md" else d).hexdigest()
            for n, (_, d) in contents.items() if n != "SHA256SUMS"}
    contents["SHA256SUMS"] = (contents["SHA256SUMS"][0], "".join(f"{h}  {n}\n" for n, h in sums.items()).encode())
    bad = tmp_path / "linked.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for info, data in contents.values():
            zf.writestr(info, data)
    env = {"PATH": _no_sdk_path(tmp_path), "HOME": str(tmp_path)}
    res = subprocess.run(["bash", str(demo / "prepare_assets.sh"), str(bad)], env=env, capture_output=True, text=True)
    assert res.returncode == 2 and "link" in res.stderr, res.stderr
    assert not (demo / "app" / "src" / "main" / "assets" / "bundles" / "linked").exists()
    res = subprocess.run(["bash", str(demo / "prepare_assets.sh"), str(bundle)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr  # a good bundle still goes in
    assert (demo / "app" / "src" / "main" / "assets" / "bundles" / "b" / "labels.txt").read_text().split() == NAMES


def _raw_outputs(m: dict) -> None:
    """A top-K ncnn bundle's metadata edited to say raw outputs, consistently (as a forger would)."""
    anchors = sum((64 // s) ** 2 for s in m["strides"])
    m["graph"].update(output_kind="raw", decode=False, topk=None, box_format="raw", raw_activated=True)
    m["outputs"] = output_specs("raw", batch=1, num_anchors=anchors, num_classes=len(m["class_names"]), topk=None)


# Edits of an ncnn bundle's metadata.json that the app's reader (metadata.cpp) refuses; package
# never writes them. tests/native feeds the same kinds of edit to the C++ reader.
APP_REFUSES = [
    (_raw_outputs, "graph.output_kind"),
    (lambda m: m.update(outputs=m["outputs"][:2]), "outputs"),  # top-K without its labels
    (lambda m: m["preprocess"].update(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]), "preprocess.mean"),
    (lambda m: m["preprocess"].update(std=[58.395, 57.12, 57.375]), "preprocess.std"),
    (lambda m: m["preprocess"].update(channel_order="GRAY"), "preprocess.channel_order"),
    (lambda m: m["preprocess"].update(letterbox="center"), "preprocess.letterbox"),
    (lambda m: m["preprocess"].update(pad_value=114.5), "preprocess.pad_value"),
    (lambda m: m["graph"].update(box_format="cxcywh"), "graph.box_format"),
    (lambda m: m["input"].update(name=None), "input.name"),
    (lambda m: m.update(precision=8), "precision"),
]


@pytest.mark.parametrize("edit, field", APP_REFUSES)
def test_verify_refuses_an_ncnn_bundle_the_app_refuses(bundle: Path, tmp_path: Path, run_cli, edit, field) -> None:
    bad = _repack(bundle, tmp_path / "edited.zip", edit)
    code, out, err = run_cli("verify", bad)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "edited.zip" in err and (f"metadata.json {field} " in err or f"metadata.json: {field} " in err), err


def test_mean_std_and_raw_outputs_stay_fine_outside_the_app(tmp_path: Path) -> None:
    # ONNX and OpenVINO bundles run in yolox_edge's own runtime, which applies mean/std and decodes.
    bundle = tmp_path / "o.zip"
    package_bundle(fake_export(tmp_path / "e", fmt="onnx"), target="onnx", out=bundle)
    edited = _repack(bundle, tmp_path / "edited.zip", lambda m: (APP_REFUSES[0][0](m), APP_REFUSES[2][0](m)))
    rep = verify_bundle(edited)
    assert rep["ok"] and rep["output_kind"] == "raw"


@pytest.mark.parametrize("max_det", [2**31, 10**12, 0, 2.5, True, "100"])
def test_package_refuses_a_max_det_the_app_cannot_read(tmp_path: Path, max_det) -> None:
    # The app reads max_det as a 32-bit int and refuses a whole bundle with more.
    exp = fake_export(tmp_path / "e")
    given = re.escape(f"--max-det {max_det} (max_det={max_det!r} in Python): ")
    with pytest.raises(UserError, match=given + ".*from 1 to 2147483647"):
        package_bundle(exp, target="ncnn", out=tmp_path / "b.zip", max_det=max_det)
    assert not (tmp_path / "b.zip").exists()


def test_package_max_det_at_the_app_limit_and_past_the_graph(tmp_path: Path, run_cli) -> None:
    import numpy as np

    exp = fake_export(tmp_path / "e", kind="decoded")  # 64x64 at strides 8, 16, 32: 84 anchors
    rep = package_bundle(exp, target="ncnn", out=tmp_path / "a.zip", max_det=np.int64(2**31 - 1))
    assert rep["postprocess"]["max_det"] == 2**31 - 1 and "at most 84 candidates" in rep["notes"][0]
    assert package_bundle(exp, target="ncnn", out=tmp_path / "b.zip", max_det=84)["notes"] == []
    code, out, err = run_cli("package", exp, "--target", "ncnn", "--out", tmp_path / "c.zip", "--max-det", str(2**31))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "argument --max-det" in err and "2147483647" in err, err
    assert not (tmp_path / "c.zip").exists()


# Python's reprs on a card: None, True/False, a dict or a list; class names here have none of them.
_RAW_VALUE = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|[{}\[\]']")


@pytest.mark.parametrize("kind, graph_nms", [("topk", {"iou": 0.65, "conf": 0.001, "class_aware": True}),
                                             ("topk", False), ("decoded", False), ("raw", False)])
def test_card_says_values_in_words_not_python_reprs(tmp_path: Path, kind: str, graph_nms) -> None:
    from yolox_edge.bundle.card import render_card

    exp = fake_export(tmp_path / "e", fmt="onnx", kind=kind)
    meta = json.loads((exp / "metadata.json").read_text())
    meta["graph"]["nms"] = graph_nms
    meta["postprocess"] = {"conf": 0.3, "nms": 0.45, "max_det": 100, "agnostic": False}
    meta["quantization"] = {"method": "ptq", "engine": None, "calibration": {"count": 8, "source": None, "sha256": None}}
    evaluation = {"AP": 0.25, "AP50": 0.4, "images": 80, "data": "coco.yaml", "split": None}  # no backend recorded
    card = render_card(meta, target="onnx", files={"model.onnx": 3000}, evaluation=evaluation, latency=None)
    table = card.split("## Classes")[0]
    assert not _RAW_VALUE.search(table), _RAW_VALUE.search(table).group() + "\n" + table
    assert "values 0..255, no mean/std" in card and "AP50 0.4000 on coco.yaml (80 images)" in card
    if kind == "topk":
        assert "top-K: 10" in card and ("NMS in graph: IoU 0.65, scores > 0.001, per class" in card) is bool(graph_nms)
    else:
        assert "top-K: none (all candidates)" in card and "NMS in graph: none" in card
    assert ("no decode (raw outputs: decode on the host)" in card) is (kind == "raw")
    assert f"outputs | {'raw 1x84x8' if kind == 'raw' else 'boxes 1x'}" in card


def test_card_states_mean_and_std_as_numbers(bundle: Path) -> None:
    from yolox_edge.bundle.card import render_card

    with zipfile.ZipFile(bundle) as zf:
        meta = json.loads(zf.read("metadata.json"))
    meta["preprocess"].update(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], channel_order="RGB")
    card = render_card(meta, target="onnx", files={}, evaluation=None, latency=None)
    assert "RGB values 0..255, mean 123.675, 116.28, 103.53, std 58.395, 57.12, 57.375" in card


def _late_failing_bundle(bundle: Path, dst: Path) -> Path:
    """Every entry sound and summed, labels.txt edited: refused by the last check, after every file is out."""
    return _resum(bundle, dst, lambda c: c.update({"labels.txt": b"person\nbike\ncar\n"}))


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_extract_leaves_dest_as_it_was(bundle: Path, tmp_path: Path, existing: bool) -> None:
    from yolox_edge.bundle import extract_bundle

    bad = _late_failing_bundle(bundle, tmp_path / "late.zip")
    dest = tmp_path / "out" / "deeper" / "dest"
    if existing:
        dest.mkdir(parents=True)
    with pytest.raises(UserError, match="labels.txt does not match"):
        extract_bundle(bad, out=dest)
    if existing:  # still there, still empty, and no extraction folder left beside it
        assert dest.is_dir() and not any(dest.iterdir()) and list(dest.parent.iterdir()) == [dest]
    else:  # nothing made for it, not even its parents
        assert not (tmp_path / "out").exists()
    folder, meta = extract_bundle(bundle, out=dest)  # a good bundle then goes in, with a plain folder's mode
    assert folder == dest and sorted(p.name for p in dest.iterdir()) == sorted(
        ["model.ncnn.param", "model.ncnn.bin", "metadata.json", "labels.txt", "MODEL_CARD.md"])
    assert list(dest.parent.iterdir()) == [dest] and dest.stat().st_mode & 0o700 == 0o700
    assert meta["class_names"] == NAMES


def test_a_failed_extract_through_the_cli_leaves_no_files(bundle: Path, tmp_path: Path, run_cli) -> None:
    bad = _late_failing_bundle(bundle, tmp_path / "late.zip")
    code, out, err = run_cli("verify", bad, "--extract", tmp_path / "x")
    assert code == 2 and "labels.txt does not match" in err and not (tmp_path / "x").exists()


def test_extract_into_the_working_folder_fills_it_in_place(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    # An empty folder that exists is filled, not replaced: a shell standing in it keeps its folder.
    from yolox_edge.bundle import extract_bundle

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    inode = here.stat().st_ino
    folder, _ = extract_bundle(bundle, out=".")
    assert folder == Path(".") and Path.cwd() == here and here.stat().st_ino == inode
    assert (here / "labels.txt").read_text().split() == NAMES
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no extraction folder left


def test_a_file_that_appears_in_dest_during_the_checks_undoes_the_extract(bundle: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    from yolox_edge.bundle import extract_bundle, opener

    dest = tmp_path / "dest"
    dest.mkdir()
    checked = opener._extract_checked

    def and_meanwhile(b, folder):  # another program writes into dest while the bundle is checked
        meta = checked(b, folder)
        (dest / "metadata.json").write_text("theirs")
        return meta

    monkeypatch.setattr(opener, "_extract_checked", and_meanwhile)
    with pytest.raises(UserError, match="metadata.json appeared there"):
        extract_bundle(bundle, out=dest)
    assert [p.name for p in dest.iterdir()] == ["metadata.json"] and (dest / "metadata.json").read_text() == "theirs"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no extraction folder left



def _demo(tmp_path: Path) -> Path:
    """A copy of android_demo/prepare_assets.sh in its own folder: the script writes the assets beside itself."""
    import shutil

    demo = tmp_path / "android_demo"
    demo.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "android_demo" / "prepare_assets.sh", demo / "prepare_assets.sh")
    return demo


def _prepare(demo: Path, bundle: Path, path: str):
    import subprocess

    return subprocess.run(["bash", str(demo / "prepare_assets.sh"), str(bundle), "b"],
                          env={"PATH": path, "HOME": str(demo.parent)}, capture_output=True, text=True)


def test_prepare_assets_checks_every_file_against_its_own_line(bundle: Path, tmp_path: Path) -> None:
    # SHA256SUMS with labels.txt's line twice and none for an edited MODEL_CARD.md: as many lines as
    # files, and every listed file matches, yet the card is unchecked. So are names from outside.
    demo, path = _demo(tmp_path), _no_sdk_path(tmp_path)
    with zipfile.ZipFile(bundle) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    lines = contents["SHA256SUMS"].decode().splitlines()
    labels_line = next(line for line in lines if line.endswith("  labels.txt"))
    cases = {"twice": [labels_line if line.endswith("  MODEL_CARD.md") else line for line in lines],
             "outside": [line.replace("  MODEL_CARD.md", "  ../../MODEL_CARD.md") for line in lines]}
    for case, sums in cases.items():
        bad = tmp_path / f"{case}.zip"
        with zipfile.ZipFile(bad, "w") as zf:
            for n, d in contents.items():
                zf.writestr(n, ("\n".join(sums) + "\n").encode() if n == "SHA256SUMS"
                            else b"# edited\n" if n == "MODEL_CARD.md" else d)
        res = _prepare(demo, bad, path)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (case, res.stderr)
        assert f"{case}.zip" in res.stderr and ("twice" in res.stderr if case == "twice" else "SHA256SUMS line" in res.stderr)
        assert not (demo / "app").exists() or not any((demo / "app/src/main/assets/bundles").iterdir())
    edited = tmp_path / "edited.zip"
    rewrite(bundle, edited, lambda n, d: (n, b"# edited\n" if n == "MODEL_CARD.md" else d))  # its line kept
    res = _prepare(demo, edited, path)
    assert res.returncode == 2 and "MODEL_CARD.md does not match its sha256" in res.stderr, res.stderr


def test_prepare_assets_without_the_sdk_refuses_names_differing_only_in_case(bundle: Path, tmp_path: Path) -> None:
    """labels.txt and LABELS.txt are one file on macOS or Windows: the SDK's verify refused such a
    bundle, the fallback without the SDK checked both and let the second overwrite the first."""
    demo, path = _demo(tmp_path), _no_sdk_path(tmp_path)
    with zipfile.ZipFile(bundle) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    labels = contents["labels.txt"]
    sums = contents["SHA256SUMS"].decode() + f"{hashlib.sha256(labels[::-1]).hexdigest()}  LABELS.txt\n"
    bad = tmp_path / "case.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for n, d in {**contents, "SHA256SUMS": sums.encode(), "LABELS.txt": labels[::-1]}.items():
            zf.writestr(n, d)
    res = _prepare(demo, bad, path)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"prepare_assets.sh: error: {bad}: two entries whose names differ only in case; refusing it"], res.stderr
    assert _prepare(demo, bundle, path).returncode == 0


def test_prepare_assets_uses_shasum_where_there_is_no_sha256sum(bundle: Path, tmp_path: Path) -> None:
    # macOS has shasum (perl), not GNU sha256sum.
    import shutil

    path = _no_sdk_path(tmp_path)
    shasum = shutil.which("shasum")
    if not shasum or not shutil.which("perl"):
        pytest.skip("needs shasum and perl")
    (Path(path) / "sha256sum").unlink()
    (Path(path) / "shasum").symlink_to(shasum)
    demo = _demo(tmp_path)
    assert _prepare(demo, bundle, path).returncode == 0
    assert (demo / "app/src/main/assets/bundles/b/labels.txt").read_text().split() == NAMES
    edited = rewrite(bundle, tmp_path / "edited.zip", lambda n, d: (n, b"# edited\n" if n == "MODEL_CARD.md" else d))
    res = _prepare(demo, edited, path)
    assert res.returncode == 2 and "MODEL_CARD.md does not match its sha256" in res.stderr, res.stderr
    (Path(path) / "shasum").unlink()
    res = _prepare(demo, bundle, path)
    assert res.returncode == 2 and "sha256sum (Linux) or shasum (macOS)" in res.stderr, res.stderr


def test_prepare_assets_stopped_while_replacing_keeps_the_old_bundle(bundle: Path, tmp_path: Path) -> None:
    # A stop (Ctrl-C, a closed terminal) between taking the old copy away and putting the new one in
    # must not leave the app without the bundle: here `mv` of the new copy is where it stops.
    import shutil

    demo, path = _demo(tmp_path), _no_sdk_path(tmp_path)
    assert _prepare(demo, bundle, path).returncode == 0
    assets = demo / "app/src/main/assets/bundles"
    before = {p.name: p.read_bytes() for p in (assets / "b").iterdir()}
    newer = tmp_path / "newer"
    newer.mkdir()
    package_bundle(fake_export(tmp_path / "e2"), target="ncnn", out=newer / "b.zip", conf=0.5)
    real_mv = shutil.which("mv")
    (Path(path) / "mv").unlink()
    (Path(path) / "mv").write_text(f'#!{shutil.which("bash")}\n'
                                   f'case "$1" in */b) kill -TERM $PPID; exit 1;; esac\nexec {real_mv} "$@"\n')
    (Path(path) / "mv").chmod(0o755)
    res = _prepare(demo, newer / "b.zip", path)
    assert res.returncode != 0
    assert {p.name: p.read_bytes() for p in (assets / "b").iterdir()} == before
    assert [p.name for p in assets.iterdir()] == ["b"]  # nothing half-done left beside it
    (Path(path) / "mv").unlink()
    (Path(path) / "mv").symlink_to(real_mv)
    assert _prepare(demo, newer / "b.zip", path).returncode == 0  # and without the stop it is replaced
    assert json.loads((assets / "b" / "metadata.json").read_text())["postprocess"]["conf"] == 0.5
    assert [p.name for p in assets.iterdir()] == ["b"]


def test_package_does_not_write_an_ncnn_bundle_the_app_refuses(tmp_path: Path) -> None:
    exp = fake_export(tmp_path / "e")
    meta = json.loads((exp / "metadata.json").read_text())
    meta["preprocess"].update(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    (exp / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"x\.zip: metadata.json preprocess.mean .*\(not written\)"):
        package_bundle(exp, target="ncnn", out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_prepare_assets_deals_with_what_a_kill_9_left(bundle: Path, tmp_path: Path) -> None:
    # kill -9 between moving the old bundle aside and the new one in skips the exit trap: the old
    # copy stayed in .incoming.*/old, and later runs neither put it back nor deleted it.
    import os
    import shutil
    import subprocess

    demo, path = _demo(tmp_path), _no_sdk_path(tmp_path)
    assets = demo / "app/src/main/assets/bundles"
    assert _prepare(demo, bundle, path).returncode == 0  # bundles/b: a bundle to copy around
    before = {p.name: p.read_bytes() for p in (assets / "b").iterdir()}
    ended = subprocess.Popen(["true"])
    ended.wait()

    host = _bash_host()

    def left(name: str, pid: int, old: bool, at: str | None = host) -> Path:
        # as the script names it (mktemp); at=None: an earlier script's name, without the host
        d = assets / (f".incoming.{name}.{pid}.Ab12Cd" if at is None else f".incoming.{name}@{at}.{pid}.Ab12Cd")
        d.mkdir()
        if old:
            shutil.copytree(assets / "b", d / "old")
        return d

    gone = left("gone", ended.pid, True)  # no bundles/gone: put back
    earlier = left("earlier", ended.pid, True, at=None)  # an earlier script's name: still put back
    # another host's (a shared folder): its PID says nothing here, so only named
    elsewhere = left("far", ended.pid, True, at=host + "-other")
    (assets / "again").mkdir()
    (assets / "again" / "newer").write_text("a later run's")
    again = left("again", ended.pid, True)  # bundles/again replaced since: the old copy deleted
    empty = left("empty", ended.pid, False)  # killed before anything was extracted: removed
    checking = left("v1.2", ended.pid, False)  # killed during the checks (a dotted name)
    (checking / "b").mkdir()
    (checking / "b" / "labels.txt").write_text("half\n")
    live = left("live", os.getpid(), True)  # a run going on now: not touched
    older = assets / ".incoming.Xy12Zw"  # an older script's, with no name: only named
    shutil.copytree(assets / "b", older / "old")

    res = _prepare(demo, bundle, path)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 7, lines
    assert any(f"put back gone, left in {gone}" in line for line in lines), lines
    assert any(f"put back earlier, left in {earlier}" in line for line in lines), lines
    assert any(f"{elsewhere} was made by a run on {host}-other, not this machine ({host}): left alone" in line
               for line in lines), lines
    assert any(f"deleted the previous again left in {again}" in line for line in lines), lines
    assert any(f"removed {empty}," in line for line in lines) and any(f"removed {checking}," in line for line in lines)
    assert any(f"{older} is left by an older prepare_assets.sh" in line for line in lines), lines
    assert {p.name: p.read_bytes() for p in (assets / "gone").iterdir()} == before
    assert {p.name: p.read_bytes() for p in (assets / "earlier").iterdir()} == before
    assert [p.name for p in (assets / "again").iterdir()] == ["newer"]
    assert sorted(p.name for p in assets.iterdir()) == sorted(["b", "gone", "earlier", "again", live.name, older.name,
                                                               elsewhere.name])
    assert (live / "old" / "labels.txt").is_file() and (older / "old" / "labels.txt").is_file()
    assert (elsewhere / "old" / "labels.txt").is_file()

    res = _prepare(demo, bundle, path)  # nothing left to do but name the older script's and the other host's
    assert res.returncode == 0 and len(res.stderr.splitlines()) == 2, res.stderr
    assert str(older) in res.stderr and str(elsewhere) in res.stderr, res.stderr


def _bash_host() -> str:
    """This host as prepare_assets.sh puts it in a folder's name: bash's $HOSTNAME, letters, digits and '-'."""
    import subprocess

    name = subprocess.run(["bash", "-c", 'printf %s "$HOSTNAME"'], capture_output=True, text=True).stdout
    return re.sub(r"[^A-Za-z0-9-]", "-", name)[:63] or "unknown-host"


def test_prepare_assets_puts_the_host_in_its_folders_name(bundle: Path, tmp_path: Path) -> None:
    """.incoming.NAME.PID.XXXXXX: on a shared folder another host's run looked killed (its PID is
    not alive here) and its folder was swept while it ran. The name now carries the host."""
    import shutil

    demo, path = _demo(tmp_path), _no_sdk_path(tmp_path)
    real = shutil.which("mktemp")
    (Path(path) / "mktemp").unlink()
    (Path(path) / "mktemp").write_text(f'#!{shutil.which("bash")}\nprintf "%s\\n" "$@" >> {tmp_path / "made"}\n'
                                       f'exec {real} "$@"\n')
    (Path(path) / "mktemp").chmod(0o755)
    assert _prepare(demo, bundle, path).returncode == 0
    template = (tmp_path / "made").read_text().split()[-1]
    assert re.fullmatch(rf".*/\.incoming\.b@{re.escape(_bash_host())}\.[0-9]+\.XXXXXX", template), template


def test_an_ncnn_bundle_carries_the_category_ids_and_the_app_reads_it(tmp_path: Path) -> None:
    """category_ids is an optional field: verify, the app's reader (which skips fields it does not
    know) and labels.txt take the bundle as before; the card names each class's id."""
    from yolox_edge.bundle.app_contract import check_app_reads

    out = tmp_path / "ids.zip"
    package_bundle(fake_export(tmp_path / "export", category_ids=[1, 2, 3]), target="ncnn", out=out)
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("metadata.json"))
        card = zf.read("MODEL_CARD.md").decode()
        labels = zf.read("labels.txt").decode()
    assert meta["category_ids"] == [1, 2, 3] and labels == "person\nbicycle\ncar\n"
    check_app_reads(out, meta)
    assert verify_bundle(out)["ok"]
    assert "0 person (category id 1), 1 bicycle (category id 2), 2 car (category id 3)" in card
    plain = tmp_path / "plain.zip"
    package_bundle(fake_export(tmp_path / "plain_export"), target="ncnn", out=plain)
    with zipfile.ZipFile(plain) as zf:
        assert "category_ids" not in json.loads(zf.read("metadata.json"))
        assert "0 person, 1 bicycle, 2 car" in zf.read("MODEL_CARD.md").decode()


def test_package_stopped_says_whether_out_holds_the_new_or_the_earlier_bundle(tmp_path: Path, run_cli,
                                                                                monkeypatch) -> None:
    """A Ctrl-C said only 'interrupted': nothing told the earlier bundle was kept, and a stop after
    the new one was written (while its line printed) read as 'nothing was written'."""
    import yolox_edge.bundle.package as package
    import yolox_edge.fileio as fileio

    exp = fake_export(tmp_path / "export")
    out = tmp_path / "b.zip"
    args = ("package", exp, "--target", "ncnn", "--out", out)

    def stop(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # during verification: nothing was there, nothing is
        m.setattr(package, "verify_bundle", stop)
        code, _, err = run_cli(*args)
    assert code == 130 and f"package: interrupted: no bundle was written to {out}; run the same command again" in err
    assert not out.exists() and err.rstrip().endswith("yolox-edge package: interrupted")
    assert run_cli(*args)[0] == 0
    earlier = out.read_bytes()
    with monkeypatch.context() as m:  # during the rename: the earlier bundle stays
        m.setattr(fileio.os, "replace", stop)
        code, _, err = run_cli(*args, "--conf", "0.5", "--force")
    assert code == 130 and f"{out} keeps its earlier bundle, untouched" in err, err
    assert out.read_bytes() == earlier and sorted(p.name for p in tmp_path.iterdir()) == ["b.zip", "export"]
    with monkeypatch.context() as m:  # after it was written, while its notes print
        m.setattr(package, "graph_limits", stop)
        code, _, err = run_cli(*args, "--conf", "0.5", "--force")
    assert code == 130 and (f"interrupted after the bundle was written: {out} holds the new one, whole and "
                            f"verified; 'yolox-edge verify {out}'") in err, err
    assert out.read_bytes() != earlier and verify_bundle(out)["postprocess"]["conf"] == 0.5
    with monkeypatch.context() as m:  # the same bytes again (package is deterministic): still the new file
        m.setattr(package, "graph_limits", stop)
        code, _, err = run_cli(*args, "--conf", "0.5", "--force")
    assert code == 130 and "after the bundle was written" in err, err


def test_package_refuses_a_preprocessing_the_app_would_not_honour(tmp_path: Path, run_cli) -> None:
    """The app fills 0..255 pixels, NCHW, and read neither preprocess.value_range nor layout: an
    export stating [0, 1] was packaged, verified and run on the phone with 255 times its values."""
    exp = fake_export(tmp_path / "export")
    meta = json.loads((exp / "metadata.json").read_text())
    for key, value, said in (("value_range", [0.0, 1.0], "is not [0, 255]"), ("layout", "NHWC", "is not NCHW")):
        edited = dict(meta, preprocess={**meta["preprocess"], key: value})
        (exp / "metadata.json").write_text(json.dumps(edited))
        code, out, err = run_cli("package", exp, "--target", "ncnn", "--out", tmp_path / "b.zip")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"metadata.json preprocess.{key} {value!r} {said}" in err and "the Android app" in err, err
        assert not (tmp_path / "b.zip").exists()
    (exp / "metadata.json").write_text(json.dumps(meta))
    assert run_cli("package", exp, "--target", "ncnn", "--out", tmp_path / "b.zip")[0] == 0


@pytest.mark.parametrize("empty_dest", [False, True])
def test_an_extracted_bundle_is_on_disk_when_extract_returns(bundle: Path, tmp_path: Path, fsync_log,
                                                              empty_dest: bool) -> None:
    """verify --extract DEST: every extracted file and the staging folder are flushed before the
    folder is renamed to DEST, and DEST's parent after (into an empty DEST: each file flushed
    before its move, DEST after). The renames were unflushed: after a power loss DEST could be
    missing, or hold empty files under names that passed the sha256 check."""
    from yolox_edge.bundle.opener import extract_bundle

    dest = tmp_path / "app" / "model"
    if empty_dest:
        dest.mkdir(parents=True)
    folder, _ = extract_bundle(bundle, out=dest)
    files = sorted(folder.iterdir())
    assert folder == dest and files
    if empty_dest:
        for f in files:
            fsync_log.assert_durable(f)
    else:
        renamed = fsync_log.named(dest)
        assert all(fsync_log.synced(f, 0, renamed) for f in files), fsync_log.events
        assert fsync_log.synced(dest, 0, renamed) and fsync_log.synced(dest.parent, renamed + 1), fsync_log.events



def test_prepare_assets_flushes_the_bundle_before_its_rename_and_the_folder_after(bundle: Path, tmp_path: Path) -> None:
    """The bundle's files were moved into place with mv and never synced: a power loss soon after
    could leave the app a bundle of empty files, or the old one back, after 'b.zip -> ...' was
    said. The files and their folder are flushed before the rename, the assets folder after it;
    where sync takes no files (macOS) a plain sync does it, and with no sync at all the copy is
    still made."""
    import shutil

    demo, path = _demo(tmp_path), _no_sdk_path(tmp_path)
    assets = demo / "app/src/main/assets/bundles"
    log = tmp_path / "sync.log"
    bash = shutil.which("bash")
    # records each call: its files (each marked '+' if it exists then) and whether bundles/b is there yet
    (Path(path) / "sync").write_text(
        f'#!{bash}\n[ "$1" = -- ] && shift\nfor f in "$@"; do [ -e "$f" ] && printf "+%s " "$f" || printf "-%s " "$f"; '
        f'done >> {log}\n[ -d {assets / "b"} ] && echo "| in place" >> {log} || echo "| not yet" >> {log}\n')
    (Path(path) / "sync").chmod(0o755)
    res = _prepare(demo, bundle, path)
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2, calls
    named, _, state = calls[0].partition(" | ")
    assert state == "not yet" and all(f.startswith("+") for f in named.split()), calls[0]  # each there, b not yet
    flushed = [Path(f[1:]) for f in named.split()]
    assert sorted(f.name for f in flushed[:-1]) == sorted(p.name for p in (assets / "b").iterdir())
    assert flushed[-1].name == "b" and flushed[-1].parent.name.startswith(".incoming.b@")  # the staged folder
    assert all(f.parent == flushed[-1] for f in flushed[:-1])
    assert calls[1] == f"+{assets} | in place"  # after the rename
    # sync without files (macOS ignores them; an older busybox refuses them): a plain sync
    log.unlink()
    (Path(path) / "sync").write_text(f'#!{bash}\n[ $# -eq 0 ] || exit 1\necho plain >> {log}\n')
    assert _prepare(demo, bundle, path).returncode == 0
    assert log.read_text().splitlines() == ["plain", "plain"]
    (Path(path) / "sync").unlink()  # none at all: the copy is still made
    res = _prepare(demo, bundle, path)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert (assets / "b" / "labels.txt").read_text().split() == NAMES


def test_extract_bundle_writes_to_out_and_its_earlier_dest_still_works(bundle: Path, tmp_path: Path) -> None:
    """The folder a call writes is out= everywhere; extract_bundle's was dest, by position or keyword."""
    from yolox_edge.bundle import extract_bundle

    folder, meta = extract_bundle(bundle, out=tmp_path / "new")
    assert folder == tmp_path / "new" and (folder / "labels.txt").is_file() and meta["class_names"] == NAMES
    with pytest.warns(DeprecationWarning, match=r"^extract_bundle\(\): passing out by position is deprecated"):
        folder, _ = extract_bundle(bundle, tmp_path / "positional")
    assert folder == tmp_path / "positional" and (folder / "labels.txt").is_file()
    with pytest.warns(DeprecationWarning, match=r"^extract_bundle\(dest=\) is deprecated; pass out=\.\.\. instead"):
        folder, _ = extract_bundle(bundle, dest=tmp_path / "keyword")
    assert folder == tmp_path / "keyword" and (folder / "labels.txt").is_file()
    with pytest.raises(TypeError, match="dest= and out="):
        extract_bundle(bundle, dest=tmp_path / "a", out=tmp_path / "b")


def _dead_pid() -> int:
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid  # no process has it now


@pytest.fixture
def system_temp(tmp_path: Path, monkeypatch) -> Path:
    """The system temp folder, as tempfile.gettempdir() gives it, private to the test; and this
    process as a new one that has not swept it yet."""
    import tempfile

    from yolox_edge import owners

    temp = tmp_path / "system_tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(owners, "_TEMPS_SWEPT", set())
    return temp


def test_package_removes_what_a_killed_package_left_in_the_temp_folder(tmp_path: Path, system_temp: Path, run_cli,
                                                                        monkeypatch) -> None:
    """A kill -9 of package left 'yolox_edge_package_XXXXXXXX' (the trial zip) and
    'yolox_edge_verify_XXXXXXXX' (its extraction) in the system temp folder for good: about twice
    the bundle, 200 MB for a 100 MB model. Their names carry the process now, and package removes
    those of a process that is gone, never a running one's or another host's."""
    import yolox_edge.bundle.package as package
    from yolox_edge.owners import host_tag, owner_tag

    host, pid = host_tag(), _dead_pid()
    dead = [system_temp / f"yolox_edge_package_{host}.{pid}.a1b2c3d4", system_temp / f"yolox_edge_verify_{host}.{pid}.e5f6"]
    live = system_temp / f"yolox_edge_verify_{owner_tag()}.i9j0k1l2"  # a verify running now in this process
    other = system_temp / f"yolox_edge_package_gpu-node-7.{pid}.m3n4o5p6"
    for p in dead + [live, other]:
        p.mkdir()
        (p / "b.zip").write_bytes(b"half a bundle")
    seen = []
    real = package.check_extracted

    def check_extracted(*a):  # while package's two folders are there
        seen.extend(sorted(p.name for p in system_temp.iterdir()))
        return real(*a)

    monkeypatch.setattr(package, "check_extracted", check_extracted)
    out = tmp_path / "b.zip"
    code, _, err = run_cli("package", fake_export(tmp_path / "export"), "--target", "ncnn", "--out", out)
    assert code == 0, err
    mine = [n for n in seen if n.startswith((f"yolox_edge_package_{owner_tag()}.", f"yolox_edge_verify_{owner_tag()}."))
            and n != live.name]
    assert len(mine) == 2 and sorted(seen) == sorted(mine + [live.name, other.name]), seen
    assert sorted(p.name for p in system_temp.iterdir()) == sorted([live.name, other.name])  # its own removed too
    assert verify_bundle(out)["ok"]


def test_package_acts_on_a_stop_while_it_compresses_the_model(tmp_path: Path, system_temp: Path, run_cli,
                                                              monkeypatch) -> None:
    """A Ctrl-C came 3-7 s late with a 100 MB model: zlib compressed the whole model in one call, in
    which Python acts on no signal. The model goes to zlib a MiB at a time (1 KiB here) now, so a
    stop is seen after at most a MiB of it; nothing is left, in --out or the temp folder."""
    import yolox_edge.bundle.package as package

    monkeypatch.setattr(package, "_CHUNK", 1024, raising=False)
    exp = fake_export(tmp_path / "export")  # model files of 3000 bytes
    out = tmp_path / "b.zip"
    fed: list[tuple[str, int]] = []
    real = zipfile._ZipWriteFile.write

    def write(self, data):
        fed.append((self._zinfo.filename, len(data)))
        n = real(self, data)
        if self._zinfo.filename == "model.ncnn.bin":  # a Ctrl-C during this call: Python sees it as it returns
            raise KeyboardInterrupt
        return n

    monkeypatch.setattr(zipfile._ZipWriteFile, "write", write)
    code, _, err = run_cli("package", exp, "--target", "ncnn", "--out", out)
    assert code == 130 and f"package: interrupted: no bundle was written to {out}; run the same command again" in err
    assert fed[-1] == ("model.ncnn.bin", 1024) and max(n for _, n in fed) <= 1024, fed  # not the 3000 bytes at once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "system_tmp"] and not any(system_temp.iterdir())
    monkeypatch.setattr(zipfile._ZipWriteFile, "write", real)
    with monkeypatch.context() as m:  # a stop in verification: the trial zip and its extraction go too
        def stop(*a):
            assert len(list(system_temp.iterdir())) == 2  # package's folder and verify's
            raise KeyboardInterrupt

        m.setattr(package, "check_extracted", stop)
        code, _, err = run_cli("package", exp, "--target", "ncnn", "--out", out)
    assert code == 130 and "no bundle was written" in err and not out.exists() and not any(system_temp.iterdir())
    assert run_cli("package", exp, "--target", "ncnn", "--out", out)[0] == 0
    assert out.read_bytes() == _writestr_bundle(tmp_path)  # a MiB at a time: the same bytes as one writestr


def _writestr_bundle(tmp_path: Path) -> bytes:
    """The bundle of ``fake_export`` as zipfile.writestr writes it, entry by entry in one call each."""
    import yolox_edge.bundle.package as package

    ref = tmp_path / "ref.zip"
    package_bundle(tmp_path / "export", target="ncnn", out=ref)
    with zipfile.ZipFile(ref) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(package._zip_entry(name), data)
    return buf.getvalue()


def test_a_bundle_opened_as_a_model_is_extracted_into_a_folder_named_for_its_process(bundle: Path,
                                                                                      system_temp: Path) -> None:
    """predict, eval and bench hold an opened bundle's model in a temp folder until the process
    exits; a kill -9 left it there for good. Named for its process now, another run removes it once
    that process is gone (and never while it runs: the next open in this process keeps it)."""
    from yolox_edge.bundle import extract_bundle
    from yolox_edge.owners import host_tag, owner_tag

    dead = system_temp / f"yolox_edge_bundle_{host_tag()}.{_dead_pid()}.a1b2c3d4"
    dead.mkdir()
    folder, _ = extract_bundle(bundle)
    assert folder.parent == system_temp and folder.name.startswith(f"yolox_edge_bundle_{owner_tag()}.")
    assert not dead.exists() and (folder / "metadata.json").is_file()
    again, _ = extract_bundle(bundle)  # a second open in the same process: the first one stays
    assert (folder / "metadata.json").is_file() and again != folder


def test_extract_removes_the_folder_a_killed_extract_left_beside_out(bundle: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    """verify --extract checks the bundle in '.OUT.extracting-XXXXXXXX' beside OUT: a kill -9 left
    it (the whole model) there for good. Named for its process now, the next extract into OUT
    removes it once that process is gone, never a running one's or another host's."""
    from yolox_edge.bundle import extract_bundle, opener
    from yolox_edge.owners import host_tag, owner_tag

    host, pid = host_tag(), _dead_pid()
    dead = tmp_path / f".dest.extracting-{host}.{pid}.a1b2c3d4"
    kept = [tmp_path / f".dest.extracting-{owner_tag()}.e5f6g7h8", tmp_path / f".dest.extracting-gpu-node-7.{pid}.i9j0",
            tmp_path / f".other.extracting-{host}.{pid}.k1l2"]  # another OUT's: its own extract's to remove
    for p in [dead] + kept:
        p.mkdir()
        (p / "model.ncnn.bin").write_bytes(b"half a model")
    checked, work = opener._extract_checked, []

    def extract_checked(b, folder):
        work.append(folder)
        return checked(b, folder)

    monkeypatch.setattr(opener, "_extract_checked", extract_checked)
    folder, _ = extract_bundle(bundle, out=tmp_path / "dest")
    assert work[0].name.startswith(f".dest.extracting-{owner_tag()}.") and (folder / "metadata.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == sorted(p.name for p in kept)
