"""``models.model_table``: the ``yolox-edge models`` table as a library call, same rows as the CLI's JSON."""
from __future__ import annotations

import json

import pytest
import torch

from yolox_edge.errors import UserError
from yolox_edge.models import model_table


def test_model_table_is_what_the_cli_prints(run_cli) -> None:
    rows = model_table(num_classes=3, variants=["test", "yolox_test_dw"])
    assert [r["name"] for r in rows] == ["test", "test_dw"]
    assert all(r["official_params_m"] is None for r in rows)  # official figures count 80 classes
    code, out, err = run_cli("models", "--json", "--num-classes", "3", "--variant", "test", "--variant", "yolox_test_dw")
    assert code == 0, err
    assert json.loads(out) == rows


def test_model_table_keeps_the_callers_random_stream() -> None:
    """Building each variant drew from torch's global generator: a seeded notebook got other weights
    after printing the table."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model_table(variants=["test"])
    assert torch.equal(torch.rand(3), expected)


def test_model_table_unknown_variant() -> None:
    with pytest.raises(UserError, match="nope"):
        model_table(variants=["nope"])


def test_counts_on_the_meta_device_equal_a_real_forwards() -> None:
    """Variants from 2M parameters are counted on the meta device (shapes only, no real forward):
    the same figures as building and running the model."""
    from yolox_edge.models import count_gflops, count_params, create_model, variant_counts
    from yolox_edge.models.profile import META_FROM_PARAMS

    torch.manual_seed(0)
    real = create_model("tiny", num_classes=7)
    assert count_params(real) >= META_FROM_PARAMS  # so variant_counts takes the meta path
    expected = {"params_m": round(count_params(real) / 1e6, 4), "gflops": round(count_gflops(real, img_size=(64, 96)), 3)}
    assert variant_counts("tiny", num_classes=7, input_hw=(64, 96)) == expected
    assert variant_counts("test", num_classes=7, input_hw=(64, 96))["params_m"] < META_FROM_PARAMS / 1e6
