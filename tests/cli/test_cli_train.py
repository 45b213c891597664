"""`yolox-edge train`: its closing lines (one set per run, from the rank that wrote the checkpoints) and what --resume passes on."""
import pytest

from yolox_edge.cli.train import _summary


def _res(main: bool, best_epoch: int = 2) -> dict:
    return {"best_ap": 0.41, "best_epoch": best_epoch, "best": "runs/ft/best.pt", "last": "runs/ft/last.pt",
            "skipped_samples": 0, "main": main}


def test_main_rank_names_best_and_last(capsys) -> None:
    assert _summary(_res(main=True)) == 0
    assert capsys.readouterr().out == "done: best AP 0.4100 at epoch 2 -> runs/ft/best.pt; last -> runs/ft/last.pt\n"


def test_other_ranks_print_nothing(capsys) -> None:
    # under torchrun every rank returns from Trainer.train; a second rank without the best AP
    # used to add "done: last -> ...", as if that rank had written last.pt
    assert _summary(_res(main=False, best_epoch=-1)) == 0
    assert capsys.readouterr().out == ""


def test_result_without_rank_is_a_single_process_run(capsys) -> None:
    res = _res(main=True)
    del res["main"]
    _summary(res)
    assert "done: best AP" in capsys.readouterr().out


def test_img_size_off_the_32_grid_exits_2_before_any_data_is_read(run_cli, tmp_path) -> None:
    """train and pipeline check WxH as export does: one line naming the value and the nearest size."""
    want = ("--img-size 416x300 (img_size=(300, 416) in Python): each side (width and height) must be a positive "
            "multiple of 32; "
            "the nearest that is: 416x288")
    code, out, err = run_cli("train", "--recipe", "yolox_nano", "--data", tmp_path / "none.yaml", "--out",
                             tmp_path / "run", "--img-size", "416x300")
    assert code == 2 and want in err, err
    code, out, err = run_cli("pipeline", "--out", tmp_path / "p", "--img-size", "416x300")
    assert code == 2 and want in err, err
    assert not (tmp_path / "p" / "data").exists()  # stopped before the data step
    code, out, err = run_cli("train", "--recipe", "yolox_nano", "--data", tmp_path / "none.yaml", "--out",
                             tmp_path / "run", "--set", "model.input_size=[320,400]")
    assert code == 2 and "model.input_size=[320, 400] (400x320, width x height) is not a multiple of 32" in err, err



def test_an_empty_recipe_exits_2_naming_it_in_train_and_pipeline(run_cli, tmp_path) -> None:
    """An empty --recipe trained (or ran the pipeline with) every default without a word."""
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("# to fill in\n")
    want = f"error: {recipe}: the recipe sets nothing (the file is empty or only comments); "
    code, out, err = run_cli("train", "--recipe", recipe, "--data", tmp_path / "none.yaml", "--out", tmp_path / "run")
    assert code == 2 and want in err and len(err.splitlines()) == 1, err
    code, out, err = run_cli("pipeline", "--recipe", recipe, "--out", tmp_path / "p")
    assert code == 2 and want in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "p").exists() and not (tmp_path / "run").exists()  # before any step


@pytest.mark.parametrize("command", ["train", "pipeline"])
def test_resume_with_nothing_to_resume_exits_2_in_train_and_pipeline(run_cli, tmp_path, command) -> None:
    """pipeline --resume on a new --out ran from the start (after one line) where train --resume
    stopped: a mistyped --out became an hour's run from scratch beside the run meant to go on."""
    data = ["--data", tmp_path / "none.yaml"] if command == "train" else []
    new = tmp_path / "typo"
    code, out, err = run_cli(command, *data, "--out", new, "--resume")
    last = new / "train" / "last.pt" if command == "pipeline" else new / "last.pt"
    assert code == 2 and len(err.splitlines()) == 1, err
    assert (f"error: {last}: nothing to resume ({new} does not exist: check --out (out= in Python)); run "
            f"without --resume (resume=False in Python) to start {new}") in err
    assert not new.exists()
    # a folder there (a run stopped before its first epoch saved anything): the same, without the check
    (new / "train").mkdir(parents=True)
    code, out, err = run_cli(command, *data, "--out", new, "--resume")
    assert code == 2 and f"error: {last}: nothing to resume; run without --resume" in err, err
    assert sorted(p.name for p in new.rglob("*")) == ["train"]  # nothing written


@pytest.fixture
def trainer_kwargs(monkeypatch) -> dict:
    """The arguments `train` gives the Trainer (a stand-in that trains nothing)."""
    import yolox_edge.engine.trainer as trainer_mod

    seen: dict = {}

    class FakeTrainer:
        def __init__(self, recipe, **kw) -> None:
            seen.clear()
            seen.update(kw, recipe=recipe)

        def train(self) -> dict:
            return {"best_epoch": -1, "last": "last.pt"}

    monkeypatch.setattr(trainer_mod, "Trainer", FakeTrainer)
    return seen


def test_resume_passes_the_machine_settings_and_names_the_rest(run_cli, tmp_path, trainer_kwargs) -> None:
    """--device and --set data.workers=N on --resume were named 'not used' with everything else;
    they are the machine's, so the resumed run takes them. Values of what is trained are still not used."""
    code, out, err = run_cli("train", "--data", tmp_path / "d.yaml", "--out", tmp_path / "run", "--resume",
                             "--device", "cpu", "--set", "data.workers=1", "--set", "train.epochs=9", "--epochs", "5",
                             "--set", "train.threads=2")
    assert code == 0, err
    assert trainer_kwargs["recipe"] is None and trainer_kwargs["resume"] is True
    assert trainer_kwargs["machine"] == ["data.workers=1", "train.threads=2", "train.device=cpu"]
    assert "not used: --epochs, --set train.epochs=9. To train longer" in out, out
    # only settings of the machine: nothing to say
    code, out, err = run_cli("train", "--data", tmp_path / "d.yaml", "--out", tmp_path / "run", "--resume",
                             "--device", "cpu")
    assert code == 0 and trainer_kwargs["machine"] == ["train.device=cpu"] and "not used" not in out, out
    # a new run: they are in its recipe already
    code, out, err = run_cli("train", "--recipe", "yolox_nano", "--data", tmp_path / "d.yaml", "--out",
                             tmp_path / "new", "--device", "cpu", "--set", "data.workers=1")
    assert code == 0 and trainer_kwargs["machine"] is None and trainer_kwargs["recipe"].data.workers == 1
