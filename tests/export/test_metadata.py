"""metadata.json: write/read round trip, sha256 checks, and the bytes each output kind costs."""
from __future__ import annotations

import json

import pytest

from yolox_edge.data.preprocess import PreprocessConfig
from yolox_edge.errors import UserError
from yolox_edge.export.metadata import (
    build_metadata, model_info, output_bytes_per_image, output_specs, read_metadata, write_metadata,
)

NANO_ANCHORS = 52 * 52 + 26 * 26 + 13 * 13


def _meta(kind: str = "topk", topk: int | None = 100, fmt: str = "onnx", category_ids: list[int] | None = None) -> dict:
    outs = output_specs(kind, batch=1, num_anchors=NANO_ANCHORS, num_classes=80, topk=topk)
    return build_metadata(fmt=fmt, model_file="m.onnx", model_name="yolox_nano", variant="nano",
                          class_names=[f"c{i}" for i in range(80)], preprocess=PreprocessConfig(),
                          strides=(8, 16, 32), kind=kind, topk=topk, input_name="images", batch=1, outputs=outs,
                          precision="fp32", source_sha256="ab" * 32, nms={"iou": 0.65, "conf": 0.001,
                                                                          "class_aware": True},
                          category_ids=category_ids)


def test_output_bytes() -> None:
    assert output_bytes_per_image(_meta("raw", None)) == 1_206_660  # the official [1, 3549, 85] float32
    assert output_bytes_per_image(_meta("topk", 100)) == 100 * (16 + 4 + 8) <= 4096
    assert output_bytes_per_image(_meta("decoded", None)) == NANO_ANCHORS * (4 + 80) * 4


def test_round_trip_and_sha(tmp_path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    path = write_metadata(tmp_path, _meta(), ["m.onnx"])
    assert not list(tmp_path.glob(".*.tmp"))
    meta = read_metadata(tmp_path / "m.onnx")  # found beside the model file
    assert meta["files"]["m.onnx"] == json.loads(path.read_text())["files"]["m.onnx"]
    info = model_info(meta)
    assert info.output_kind == "topk" and info.name == "yolox_nano" and len(info.class_names) == 80
    assert tuple(info.preprocess.input_size) == (416, 416) and info.strides == (8, 16, 32)

    (tmp_path / "m.onnx").write_bytes(b"model bytes, edited")
    with pytest.raises(UserError, match="sha256"):
        read_metadata(tmp_path)
    assert read_metadata(tmp_path, verify=False)["format"] == "onnx"
    (tmp_path / "m.onnx").unlink()
    with pytest.raises(UserError, match="missing"):
        read_metadata(tmp_path)


def test_rejects_foreign_or_newer(tmp_path) -> None:
    with pytest.raises(UserError, match="no metadata.json"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(UserError, match="missing"):
        read_metadata(tmp_path)
    meta = _meta()
    meta["schema_version"] = 99
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="newer"):
        read_metadata(tmp_path)


def test_a_folder_of_exports_or_a_bare_onnx_gets_the_way_forward(tmp_path) -> None:
    for sub in ("onnx", "fp32/openvino", ".quantize_run_x/ncnn"):  # a quantize --out folder (one run killed)
        (tmp_path / "q" / sub).mkdir(parents=True)
        (tmp_path / "q" / sub / "m.onnx").write_bytes(b"model bytes")
        write_metadata(tmp_path / "q" / sub, _meta(), ["m.onnx"])
    with pytest.raises(UserError, match=r"holds exports in subfolders.*q/fp32/openvino, .*q/onnx$") as e:
        read_metadata(tmp_path / "q")
    assert ".quantize_run" not in str(e.value)
    (tmp_path / "official.onnx").write_bytes(b"not ours")  # the official YOLOX ONNX, say
    with pytest.raises(UserError, match=r"official.onnx: an ONNX without metadata.json.*import-official.*--baseline"):
        read_metadata(tmp_path / "official.onnx")
    (tmp_path / "models").mkdir()  # a folder holding only that ONNX: the same way forward
    (tmp_path / "models" / "yolox_nano.onnx").write_bytes(b"not ours")
    with pytest.raises(UserError, match=r"models/yolox_nano.onnx: an ONNX without metadata.json"):
        read_metadata(tmp_path / "models")


@pytest.mark.parametrize("edit", ["input_size", "class_names", "input_shape"])
def test_metadata_that_contradicts_its_graph_is_refused(tmp_path, edit) -> None:
    """A hand-edited metadata.json (not hashed itself) must not run the graph at a size or with
    classes it was not exported for: ncnn accepts any input size and returned junk boxes."""
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    meta = _meta("decoded", None, fmt="ncnn", category_ids=list(range(100, 180)))
    write_metadata(tmp_path, meta, ["m.onnx"])
    read_metadata(tmp_path)  # as written: consistent
    m = json.loads((tmp_path / "metadata.json").read_text())
    if edit == "input_size":
        m["input_size"] = m["preprocess"]["input_size"] = [320, 320]
        m["input"]["shape"] = [1, 3, 320, 320]
    elif edit == "class_names":
        m["class_names"] = m["class_names"][:3]
    else:
        m["preprocess"]["input_size"] = m["input_size"] = [320, 320]
    (tmp_path / "metadata.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="does not describe its graph"):
        read_metadata(tmp_path)


@pytest.mark.parametrize("edit, says", [
    ("files a list", "files must map file names in the export's folder to their sha256"),
    ("files outside", "files must map file names in the export's folder to their sha256"),
    ("model_file outside", "model_file '../other/m.onnx' is not one of the files it lists"),
    ("class_names a string", r"class_names must be a list of names \(strings\), not abc"),
    ("strides empty", r"strides \[\] are not the model's"),
    ("outputs renamed", r"outputs \['boxes', 'score'\] are not the decoded graph's \['boxes', 'scores'\]"),
    # bundle verify passed these, then predict (or verify itself) stopped in a TypeError traceback
    ("input_size an int", r"input_size 416 is not \[height, width\]"),
    ("input shape null", r"input\.shape None is not the graph's input shape \(a list\)"),
    ("input name a list", r"input\.name \['images'\] is not the name of the graph's input \(a string\)"),
    ("blob a list", r"each output's blob must be the name of a graph blob \(a string\)"),
    ("std a number", r"preprocess\.std 1 is not null or three numbers above 0"),
    ("mean without std", r"preprocess\.mean is given without std"),
    # predicted with rc 0 while the app and verify's ncnn check refused them
    ("letterbox center", r"preprocess\.letterbox 'center' is not top-left"),
    ("box_format cxcywh", r"graph\.box_format 'cxcywh' is not xyxy"),
    ("input_size 64.5", r"input_size, input, strides or outputs are malformed"),
])
def test_metadata_fields_of_the_wrong_form_are_refused(tmp_path, edit, says) -> None:
    """Each was an AttributeError, KeyError or ValueError traceback in predict, 'abc' three class
    names, and a model_file outside the folder ran a file no sha256 covered."""
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    write_metadata(tmp_path, _meta("decoded", None, fmt="ncnn"), ["m.onnx"])
    m = json.loads((tmp_path / "metadata.json").read_text())
    if edit == "files a list":
        m["files"] = list(m["files"])
    elif edit == "files outside":
        m["files"]["../other/m.onnx"] = "0" * 64
    elif edit == "model_file outside":
        m["model_file"] = "../other/m.onnx"
    elif edit == "class_names a string":
        m["class_names"] = "abc"
    elif edit == "strides empty":
        m["strides"] = []
    elif edit == "input_size an int":
        m["input_size"] = 416
    elif edit == "input shape null":
        m["input"]["shape"] = None
    elif edit == "input name a list":
        m["input"]["name"] = ["images"]
    elif edit == "blob a list":
        m["outputs"][0]["blob"] = ["out0"]
    elif edit == "std a number":
        m["preprocess"].update(mean=[0, 0, 0], std=1)
    elif edit == "mean without std":
        m["preprocess"].update(mean=[1, 2, 3], std=None)
    elif edit == "letterbox center":
        m["preprocess"]["letterbox"] = "center"
    elif edit == "box_format cxcywh":
        m["graph"]["box_format"] = "cxcywh"
    elif edit == "input_size 64.5":
        m["preprocess"]["input_size"] = [416.5, 416]
    else:
        m["outputs"][1]["name"] = "score"
    (tmp_path / "metadata.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match=says):
        read_metadata(tmp_path)


def test_a_null_pad_value_and_an_absent_input_size_read_as_their_defaults(tmp_path) -> None:
    """pad_value null passed every check and reached the letterbox as None (a TypeError in predict);
    without the top-level input_size (optional: the app reads preprocess's) verify stopped on a KeyError."""
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    write_metadata(tmp_path, _meta(), ["m.onnx"])
    m = json.loads((tmp_path / "metadata.json").read_text())
    m["preprocess"]["pad_value"] = None
    m["preprocess"]["input_size"] = [416.0, 416.0]  # whole numbers a JSON writer gave as floats: the letterbox crashed
    del m["input_size"]
    (tmp_path / "metadata.json").write_text(json.dumps(m))
    meta = read_metadata(tmp_path)
    info = model_info(meta)
    assert meta["input_size"] == [416, 416] and info.preprocess.pad_value == 114
    assert info.preprocess.input_size == (416, 416) and all(type(v) is int for v in info.preprocess.input_size)


def test_category_ids_are_an_optional_field(tmp_path) -> None:
    """Written when the checkpoint had them (COCO data), absent otherwise; the runtime reads either."""
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    ids = [i + 1 for i in range(90) if i + 1 not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    write_metadata(tmp_path, _meta(category_ids=ids), ["m.onnx"])
    meta = read_metadata(tmp_path)
    assert meta["category_ids"] == ids and model_info(meta).category_ids == ids
    write_metadata(tmp_path, _meta(), ["m.onnx"])
    meta = read_metadata(tmp_path)
    assert "category_ids" not in meta and model_info(meta).category_ids is None
    for bad, why in ((ids[:3], "3 ids for 80 classes"), (ids[:-1] + [ids[0]], "listed twice"), (ids[:-1] + [1.5], "whole numbers"),
                     ("1,2,3", "not a list")):
        m = json.loads((tmp_path / "metadata.json").read_text())
        m["category_ids"] = bad
        (tmp_path / "metadata.json").write_text(json.dumps(m))
        with pytest.raises(UserError, match=f"metadata.json: category_ids .*{why}.*re-export the model"):
            read_metadata(tmp_path)


def test_a_key_given_twice_is_refused(tmp_path) -> None:
    """A hand edit that added a second "conf" under "nms" was read as the last one without a word
    (and another JSON reader may keep the first)."""
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    write_metadata(tmp_path, _meta(), ["m.onnx"])
    text = (tmp_path / "metadata.json").read_text()
    assert text.count('"conf": 0.001') == 1
    (tmp_path / "metadata.json").write_text(text.replace('"conf": 0.001', '"conf": 0.001, "conf": 0.5'))
    with pytest.raises(UserError, match=r"metadata\.json: key 'conf' appears twice in one object"):
        read_metadata(tmp_path)
