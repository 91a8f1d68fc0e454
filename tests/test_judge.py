"""The judge: accuracy on digits and the bundled MNIST split, the safetensors cache, the verdict."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch

import vae.analysis.judge as judge_mod
from vae.analysis.judge import RECOGNISED, Judge, JudgeRecipe, Verdict, judge_for, judge_path, judge_steps, train_judge
from vae.core.data import Dataset, load_dataset

TINY = JudgeRecipe(channels=(4, 8), hidden=16, samples=1024, batch_size=128)  # 8 steps: for the cache's mechanics, not accuracy


@pytest.fixture(scope="session")
def judge_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("judge-cache")


@pytest.fixture(scope="session")
def digits_judge(digits, judge_cache) -> Judge:
    """The default recipe's digits judge, trained once per session (about 2 s) into a private cache."""
    judge = judge_for(digits, judge_cache)
    assert judge is not None
    return judge


@pytest.fixture(autouse=True)
def _fresh_memo():
    yield
    judge_mod.clear_memo()


def refuse_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the judge was trained again although a valid cache file was there")

    monkeypatch.setattr(judge_mod, "train_judge", refuse)


# --- accuracy ---------------------------------------------------------------------------


def test_digits_judge_reaches_95_percent_on_the_test_split(digits, digits_judge):
    assert digits_judge.test_accuracy >= 0.95
    assert digits_judge.test_accuracy == pytest.approx(digits_judge.accuracy(digits.x_test, digits.y_test))
    assert digits_judge.class_names == digits.class_names and digits_judge.image_shape == (1, 8, 8)
    assert math.isfinite(digits_judge.train_seconds) and digits_judge.train_seconds > 0


@pytest.mark.slow
def test_bundled_mnist_judge_reaches_97_percent_on_the_test_split(tmp_path):
    data = load_dataset("mnist-bundled")
    judge = judge_for(data, tmp_path)
    assert judge is not None
    assert judge.test_accuracy >= 0.97, judge
    assert judge.accuracy(data.x_test, data.y_test) == pytest.approx(judge.test_accuracy)
    assert judge.path is not None and judge.path.name.startswith("mnist-bundled-")


def test_the_judge_never_sees_the_test_split(digits):
    """Replacing the test images by noise changes nothing in the trained weights."""
    noise = torch.rand(digits.x_test.shape, generator=torch.Generator().manual_seed(1))
    other = dataclasses.replace(digits, x_test=noise, y_test=torch.zeros_like(digits.y_test))
    a, b = train_judge(digits, TINY), train_judge(other, TINY)
    for (name, wa), wb in zip(a.net.state_dict().items(), b.net.state_dict().values(), strict=True):
        assert torch.equal(wa, wb), name


def test_training_is_seeded_and_leaves_the_global_rng_alone(digits):
    state = torch.random.get_rng_state()
    a = train_judge(digits, TINY)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = train_judge(digits, TINY)
    for wa, wb in zip(a.net.state_dict().values(), b.net.state_dict().values(), strict=True):
        assert torch.equal(wa, wb)
    c = train_judge(digits, dataclasses.replace(TINY, seed=1))
    assert not torch.equal(a.net[0].weight, c.net[0].weight)


# --- the verdict ------------------------------------------------------------------------


def test_verdict_shapes_ranges_and_confidence_is_the_top_probability(digits, digits_judge):
    verdict = digits_judge.judge(digits.x_test[:50])
    assert verdict.classes.shape == (50,) and verdict.classes.dtype == np.int64
    assert verdict.confidence.shape == (50,) and verdict.confidence.dtype == np.float32
    assert verdict.probs.shape == (50, 10) and verdict.probs.dtype == np.float32
    assert (verdict.probs >= 0).all() and (verdict.probs <= 1).all()
    np.testing.assert_allclose(verdict.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(verdict.confidence, verdict.probs.max(axis=1))
    np.testing.assert_array_equal(verdict.classes, verdict.probs.argmax(axis=1))
    assert (verdict.confidence >= 1 / 10).all()
    np.testing.assert_array_equal(verdict.recognised, verdict.confidence >= RECOGNISED)
    assert (verdict.classes == digits.y_test[:50].numpy()).mean() >= 0.9


def test_verdict_of_no_images_and_of_the_wrong_shape(digits_judge):
    empty = digits_judge.judge(torch.zeros(0, 1, 8, 8))
    assert empty.classes.shape == (0,) and empty.confidence.shape == (0,) and empty.probs.shape == (0, 10)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        digits_judge.judge(torch.zeros(3, 1, 28, 28))


def test_recognised_is_top_probability_at_least_the_threshold():
    assert RECOGNISED == 0.5
    confidence = np.array([0.3, 0.4999, 0.5, 0.51, 1.0], dtype=np.float32)
    probs = np.stack([confidence, 1 - confidence], axis=1)
    verdict = Verdict(classes=np.zeros(5, dtype=np.int64), confidence=confidence, probs=probs)
    assert verdict.recognised.tolist() == [False, False, True, True, True]


def test_a_blank_image_is_judged_with_less_confidence_than_digits(digits, digits_judge):
    blank = digits_judge.judge(torch.zeros(1, 1, 8, 8)).confidence[0]
    real = digits_judge.judge(digits.x_test).confidence
    assert blank < np.median(real)


# --- the cache --------------------------------------------------------------------------


def test_a_new_process_loads_the_file_and_a_second_call_is_the_memo(digits, digits_judge, judge_cache, monkeypatch):
    path = judge_path(digits, judge_cache)
    assert digits_judge.path == path and path.is_file()
    assert path.parent == judge_cache / "judges" and path.name.startswith("digits-") and path.suffix == ".safetensors"
    judge_mod.clear_memo()  # as a fresh process would be
    refuse_training(monkeypatch)
    loaded = judge_for(digits, judge_cache)
    assert loaded is not None and loaded is not digits_judge and loaded.path == path
    assert judge_for(digits, judge_cache) is loaded  # the memo
    assert loaded.test_accuracy == digits_judge.test_accuracy and loaded.class_names == digits_judge.class_names
    assert loaded.train_seconds == digits_judge.train_seconds
    a, b = digits_judge.judge(digits.x_test), loaded.judge(digits.x_test)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.classes, b.classes)


def test_the_cache_file_is_safetensors_with_the_metadata(digits, digits_judge):
    from safetensors import safe_open

    assert digits_judge.path is not None
    with safe_open(str(digits_judge.path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "latent-explorer-judge" and meta["key"] == digits_judge.key
    assert meta["class_names"] == '["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'
    assert float(meta["test_accuracy"]) == digits_judge.test_accuracy


def tiny_cached(digits, tmp_path):
    """A TINY judge trained and cached in tmp_path, the memo then cleared: (judge, its file)."""
    judge = judge_for(digits, tmp_path, TINY)
    assert judge is not None and judge.path is not None and judge.path.is_file()
    judge_mod.clear_memo()
    return judge, judge.path


class Exploding:
    """Unpickling this runs code; the cache must never do that."""

    ran = False

    def __reduce__(self):
        return (_mark_unpickled, ())


def _mark_unpickled():
    Exploding.ran = True
    return "unpickled"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "pickle", "empty", "other-shapes"])
def test_a_broken_cache_file_is_retrained_never_unpickled(digits, tmp_path, damage):
    judge, path = tiny_cached(digits, tmp_path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64 + b"not a judge")
    elif damage == "pickle":
        torch.save({"net": Exploding()}, path)
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a well-formed judge file, but from another recipe, under this file's name
        other = judge_for(digits, tmp_path / "other", dataclasses.replace(TINY, hidden=8))
        assert other is not None and other.path is not None
        shutil.copyfile(other.path, path)
        judge_mod.clear_memo()
    Exploding.ran = False
    again = judge_for(digits, tmp_path, TINY)
    assert not Exploding.ran
    assert again is not None and again.path == path
    np.testing.assert_array_equal(again.judge(digits.x_test).probs, judge.judge(digits.x_test).probs)  # seeded: the same judge
    judge_mod.clear_memo()
    assert judge_mod.load_judge(path.read_bytes(), digits.class_names, digits.image_shape, TINY, again.key).test_accuracy == again.test_accuracy


def test_another_dataset_or_recipe_gets_another_file(digits, tmp_path):
    a = judge_path(digits, tmp_path, TINY)
    assert judge_path(digits, tmp_path, dataclasses.replace(TINY, seed=1)) != a
    shifted = dataclasses.replace(digits, x_train=digits.x_train.flip(0))
    assert judge_path(shifted, tmp_path, TINY) != a
    weird = dataclasses.replace(digits, name="idx:/some/folder with spaces")
    name = judge_path(weird, tmp_path, TINY).name
    assert "/" not in name and " " not in name and name.startswith("idx_some_folder_with_spaces-")


def test_an_unwritable_cache_folder_still_gives_a_judge(digits, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    judge = judge_for(digits, blocker, TINY)
    assert judge is not None and judge.path is None
    assert judge.judge(digits.x_test[:3]).probs.shape == (3, 10)


def test_the_default_cache_folder_comes_from_settings(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    assert judge_path(digits, None, TINY).parent == tmp_path / "judges"


# --- datasets without labels ------------------------------------------------------------


def unlabelled(digits: Dataset, class_names: tuple[str, ...] = ("0",)) -> Dataset:
    return dataclasses.replace(
        digits,
        name="unlabelled",
        y_train=torch.zeros_like(digits.y_train),
        y_test=torch.zeros_like(digits.y_test),
        class_names=class_names,
    )


def test_a_dataset_without_labels_has_no_judge(digits, tmp_path):
    assert judge_for(unlabelled(digits), tmp_path) is None
    assert judge_for(unlabelled(digits, class_names=tuple(str(i) for i in range(10))), tmp_path) is None  # one class present
    assert not (tmp_path / "judges").exists()
    with pytest.raises(ValueError, match="no labels"):
        train_judge(unlabelled(digits), TINY)


def test_the_public_api_exports_the_judge():
    import vae

    assert vae.judge_for is judge_for and vae.Judge is Judge


def test_the_cli_prints_the_judges_accuracy_and_cache(digits_judge, judge_cache, monkeypatch, capsys):
    import json

    from vae.__main__ import main

    monkeypatch.setenv("VAE_CACHE_DIR", str(judge_cache))
    refuse_training(monkeypatch)  # the session's judge is in that cache
    assert main(["judge", "--dataset", "digits", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_accuracy"] == digits_judge.test_accuracy and report["cache"] == str(digits_judge.path)
    assert report["n_train"] == 1438 and report["classes"] == list(digits_judge.class_names)
    assert main(["judge", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert f"{digits_judge.test_accuracy:.2%}" in out and str(digits_judge.path) in out
    assert main(["judge", "--dataset", "nope"]) == 2


def test_a_tiny_split_trains_for_at_most_100_epochs_a_large_one_sees_40000_images():
    assert judge_steps(19) == 100  # was 40,000 // 19 = 2,105 passes over 19 images
    assert judge_steps(300) == 100 * (300 // 128)  # the cap binds below 512 images
    assert judge_steps(1438) == judge_steps(60_000) == 40_000 // 128  # digits, MNIST: 312 steps, as before


def test_train_judge_on_19_images_takes_the_capped_steps(digits, monkeypatch):
    """A labelled folder of 19 images: train_judge runs judge_steps(19) optimiser steps, no more."""
    small = dataclasses.replace(digits, x_train=digits.x_train[:19], y_train=digits.y_train[:19])
    steps = []
    real_step = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1) or real_step(self, *a, **k))
    train_judge(small, dataclasses.replace(TINY, samples=40_000, max_epochs=30))
    assert len(steps) == 30
