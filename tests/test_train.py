"""Training runs: determinism, resumption, the JSON and plots, and each preset against fp32."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fpsim import data, nn


def _weights(run):
    return [p.value for p in run.model.parameters()]


def _epochs(run):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in run["epochs"]]


def test_fp32_training_is_deterministic_for_a_seed():
    a = nn.train("fp32", "lenet", "synthetic", epochs=2, seed=3, progress=False)
    b = nn.train("fp32", "lenet", "synthetic", epochs=2, seed=3, progress=False)
    c = nn.train("fp32", "lenet", "synthetic", epochs=2, seed=4, progress=False)
    assert _epochs(a) == _epochs(b)
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(_weights(a), _weights(c)))


@pytest.mark.parametrize("recipe, model, every, stop", [
    ("fp32", "mlp", 4, 10), ("fp8_wang2018", "mlp", 4, 10), ("flexpoint_koster2017", "mlp", 4, 10),
    ("fp4_sun2020", "mlp", 4, 10),
    # only end-of-epoch checkpoints (15 steps per epoch): resumed right after an evaluation
    ("bm8_fox2021", "mlp", 100, 18), ("flexpoint_koster2017", "mlp", 100, 18)])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, recipe, model, every,
                                                                stop):
    """Stochastic rounding keys, Autoflex and GradScale state all come back from the checkpoint;
    the run stops without a checkpoint of its own, as a kill would."""
    kw = dict(epochs=2, seed=1, progress=False, checkpoint_every=every)
    whole = nn.train(recipe, model, "synthetic", **kw)
    ckpt = tmp_path / "run.ckpt"
    assert nn.train(recipe, model, "synthetic", checkpoint=str(ckpt), stop_after=stop,
                    **kw) is None
    assert ckpt.exists()
    resumed = nn.train(recipe, model, "synthetic", checkpoint=str(ckpt), resume=True, **kw)
    assert _epochs(resumed) == _epochs(whole)
    for a, b in zip(_weights(whole), _weights(resumed)):
        np.testing.assert_array_equal(a, b)


def test_evaluation_does_not_steer_training():
    """Autoflex statistics seen during evaluation are put back: the weights after two epochs
    equal those of a run whose evaluation is skipped."""
    from fpsim.nn import training
    kw = dict(epochs=2, seed=2, progress=False)
    a = nn.train("flexpoint_koster2017", "mlp", "synthetic", **kw)
    real = training.evaluate
    training.evaluate = lambda *args, with_loss=False: (0.0, 0.0) if with_loss else 0.0
    try:
        b = nn.train("flexpoint_koster2017", "mlp", "synthetic", **kw)
    finally:
        training.evaluate = real
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, wb)


def test_killed_process_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL a real `fpsim train` after its first checkpoint; --resume finishes the run with the
    curves of an uninterrupted one."""
    args = ["--recipe", "fp32", "--model", "lenet", "--dataset", "synthetic",
            "--epochs", "15", "--quiet"]
    cmd = [sys.executable, "-m", "fpsim", "train"] + args
    killed = tmp_path / "killed.json"
    proc = subprocess.Popen(cmd + ["--json", str(killed)], stdout=subprocess.DEVNULL)
    ckpt = tmp_path / "killed.json.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not killed.exists()
    subprocess.run(cmd + ["--json", str(killed), "--resume"], check=True,
                   stdout=subprocess.DEVNULL)
    whole = tmp_path / "whole.json"
    subprocess.run(cmd + ["--json", str(whole)], check=True, stdout=subprocess.DEVNULL)
    a, b = json.loads(killed.read_text()), json.loads(whole.read_text())
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in a["epochs"]] == \
        [{k: v for k, v in e.items() if k != "seconds"} for e in b["epochs"]]
    assert a["test_accuracy"] == b["test_accuracy"]


@pytest.mark.parametrize("model, recipe", [("resnet", "hfp8_sun2019"),
                                           ("resnet_rangebn", "fp8_wang2018")])
def test_smoke_residual_models_train_under_low_precision(model, recipe):
    """Smoke test: a residual model runs 3 epochs on the synthetic 8x8 set under a low-precision
    preset, its loss falls and it beats chance; no claim about accuracy parity with fp32."""
    run = nn.train(recipe, model, "synthetic", epochs=3, progress=False)
    assert run["epochs"][-1]["loss"] < 0.9 * run["epochs"][0]["loss"]
    assert run["test_accuracy"] > 0.2                        # 10 classes: chance is 0.1


def test_json_and_plot(tmp_path):
    js, png = tmp_path / "run.json", tmp_path / "run.png"
    nn.train("hfp8_sun2019", "mlp", "synthetic", epochs=2, json_path=str(js), plot=str(png),
             progress=False)
    run = json.loads(js.read_text())
    assert run["settings"]["recipe"] == "hfp8_sun2019" and run["settings"]["epochs"] == 2
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    for e in run["epochs"]:
        assert set(e) == {"epoch", "loss", "train_accuracy", "test_accuracy", "test_loss",
                          "seconds"}
        assert 0 <= e["test_accuracy"] <= 1 and 0 <= e["train_accuracy"] <= 1 and e["loss"] > 0
    assert run["test_accuracy"] == run["epochs"][-1]["test_accuracy"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_refuses_another_runs_checkpoint(tmp_path):
    ckpt = str(tmp_path / "c.ckpt")
    nn.train("fp32", "mlp", "synthetic", epochs=1, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="another run"):
        nn.train("fp32", "mlp", "synthetic", epochs=1, seed=9, checkpoint=ckpt, resume=True,
                 progress=False)


def test_cli_train_and_compare(tmp_path):
    from fpsim.cli import main
    js, png = tmp_path / "c.json", tmp_path / "c.png"
    assert main(["compare", "--recipes", "fp8_wang2018,fp4_sun2020", "--dataset", "synthetic",
                 "--epochs", "1", "--quiet", "--json", str(js), "--plot", str(png)]) == 0
    out = json.loads(js.read_text())
    assert [r["settings"]["recipe"] for r in out["runs"]] == ["fp32", "fp8_wang2018",
                                                              "fp4_sun2020"]
    assert out["table"].count("\n") == 4 and png.exists()
    assert main(["train", "--recipe", "nope", "--quiet"]) == 2


def test_cli_recipes_lists_every_preset(capsys):
    from fpsim.cli import main
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(" | ")[0].strip("| ") for ln in lines[2:]] == list(nn.recipes.RECIPES)
    assert "fp16_169, chunk 64" in lines[3] and "Wang et al. 2018" in lines[3]


def test_datasets_split_by_seed():
    a, b, c = data.load("digits", 0), data.load("digits", 0), data.load("digits", 1)
    assert a.x_train.shape == (1348, 1, 8, 8) and a.x_test.shape == (449, 1, 8, 8)
    assert a.x_train.dtype == np.float32 and 0 <= a.x_train.min() and a.x_train.max() <= 1
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    assert sorted(np.concatenate([a.y_train, a.y_test]).tolist()) == \
        sorted(np.concatenate([c.y_train, c.y_test]).tolist())
    s = data.load("synthetic", 0)
    assert s.x_train.shape[1:] == (1, 8, 8) and set(np.unique(s.y_train)) == set(range(10))


# --- each preset on the MLP, against fp32 ----------------------------------------------------
# pow2_ortiz2018 is not held to 2 points: activations and errors rounded to powers of two lose
# up to a third of their value, and it ends 1.3 points below fp32 here (README, "Training").
PARITY_EPOCHS = 4


@pytest.fixture(scope="module")
def fp32_accuracy():
    return nn.train("fp32", "mlp", "digits", epochs=PARITY_EPOCHS, progress=False)["test_accuracy"]


@pytest.mark.parametrize("recipe", [r for r in nn.recipes.RECIPES if r != "fp32"])
def test_smoke_preset_trains_the_mlp_on_digits(recipe, fp32_accuracy):
    """Smoke test: the preset trains the MLP on the 8x8 digits for a few epochs and ends within
    a margin of fp32 (one seed, one split, 449 test images); not evidence of the paper's
    accuracy claims at scale."""
    acc = nn.train(recipe, "mlp", "digits", epochs=PARITY_EPOCHS, progress=False)["test_accuracy"]
    margin = 0.04 if recipe == "pow2_ortiz2018" else 0.02
    assert acc >= fp32_accuracy - margin, (recipe, acc, fp32_accuracy)
