"""Fill in missing pixels and Generate (issue 11, items 7 and 8): the sentences state measured
numbers, and say so where a measure favours the AE. AppTest on the default digits pair (tests/app/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from test_pages import run_app  # tests/app is on sys.path (rootdir-relative imports)

import pages.ui.measures
import vae.analysis.metrics
from vae.analysis.metrics import FILL_IMAGES, compare_fill_reports, compare_reports, fill_in_report, judge_or_none
from vae.core.checkpoint import load_checkpoint
from vae.core.data import load_dataset

PAIR = "mnist-2d"  # the session default pair (tests/conftest.py), trained on digits


def open_page(name: str) -> AppTest:
    at = run_app()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def pair(models: Path) -> dict[str, Any]:
    return {kind: load_checkpoint(models / f"{PAIR}-{kind}.safetensors") for kind in ("vae", "ae")}


@pytest.fixture
def fresh_measures() -> None:
    """Forget the measures cached by an earlier test (another models folder, a stub)."""
    pages.ui.measures.fill_reports.clear()
    pages.ui.measures.checkpoint_report.clear()
    pages.ui.measures.measured_keys().clear()


def test_inpaint_states_the_measured_numbers(app_env: Path, fresh_measures: None) -> None:
    at = open_page("inpaint")
    data = load_dataset("digits")
    models = pair(app_env)
    n = min(FILL_IMAGES, int(data.x_test.shape[0]))
    assert n >= 200
    judge = judge_or_none(data)
    mask = at.selectbox(key="inpaint_mask").value
    reports = {k: fill_in_report(c.model, data.x_test, data.y_test, judge, mask, n_images=n) for k, c in models.items()}
    expected = compare_fill_reports(reports["vae"], reports["ae"])
    shown = "\n".join(texts(at))
    assert expected["headline"] in shown, shown
    assert f"Over {n} test images with the {mask} hidden" in expected["headline"]
    for row in expected["rows"]:
        assert row["sentence"] in shown
    mae = expected["rows"][0]
    assert f"{reports['vae']['mean']['mae']:.3f}" == mae["vae_text"] and f"{reports['ae']['mean']['mae']:.3f}" == mae["ae_text"]
    # the table holds the same values
    (table,) = at.table
    frame = table.value
    assert list(frame["VAE"]) == [r["vae_text"] for r in expected["rows"]]
    assert list(frame["AE"]) == [r["ae_text"] for r in expected["rows"]]


def test_inpaint_shows_the_ae_fill_and_four_vae_fills(app_env: Path, fresh_measures: None) -> None:
    at = open_page("inpaint")
    captions = [c for img in at.image for c in img.captions]
    assert len([c for c in captions if c.startswith("AE's fill")]) == 1, captions
    assert len([c for c in captions if c.startswith("VAE's fill, z = μ")]) == 1, captions
    (draws,) = [c for c in captions if "VAE fills, z drawn from q(z|x̃)" in c]
    assert draws.startswith("4 VAE fills") and len(re.findall(r"\d\.\d{3}", draws)) == 4, draws
    before = [img for img in at.image if draws in img.captions][0].value[0]
    at.button(key="inpaint_redraw").click().run()
    assert not at.exception
    (after,) = [img for img in at.image if any("VAE fills, z drawn" in c for c in img.captions)]
    assert after.value[0] != before  # new draws, new fills


def test_inpaint_measures_larger_images_behind_a_button(app_env: Path, fresh_measures: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Images larger than QUICK_PIXELS (28 x 28) take seconds: the measure waits for the button, then stays shown."""
    monkeypatch.setattr(pages.ui.measures, "QUICK_PIXELS", 0)
    at = open_page("inpaint")
    assert not any(m.value.startswith("**Over ") for m in at.markdown)
    (button,) = [b for b in at.button if b.key == "inpaint_measure"]
    assert button.label.startswith("Measure over ") and int(button.label.split()[2]) >= 200
    button.click().run()
    assert any(m.value.startswith("**Over ") for m in at.markdown)
    at.slider(key="inpaint_iters").set_value(10).run()  # a rerun: measured once, shown without asking again
    assert any(m.value.startswith("**Over ") for m in at.markdown)


def fake_fill(kind: str, mae: float, true_label: float) -> dict[str, Any]:
    n = 300
    per = {"mae": [mae] * n, "true_label": [true_label] * n}
    fill = {"mae": mae, "true_label": true_label, "recognised": 0.9, "any_true_label": true_label, "per_image": per}
    report = {"kind": kind, "mask": "top half", "n_images": n, "hidden_pixels": 32, "iterations": 30, "seed": 0,
              "judge": True, "grey": {"mae": 0.4, "true_label": 0.5, "recognised": 0.8, "any_true_label": 0.5},
              "mean": fill, "n_samples": None, "sampled": None, "spread": None}
    if kind == "vae":
        report.update(n_samples=4, sampled=dict(fill, any_true_label=true_label + 0.1), spread=0.05)
    return report


def test_inpaint_says_so_when_the_ae_fills_better(app_env: Path, fresh_measures: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def stub(model, x, y, judge, mask, **kw):  # type: ignore[no-untyped-def]
        return fake_fill("vae", 0.2, 0.6) if model.stochastic else fake_fill("ae", 0.1, 0.7)

    monkeypatch.setattr(vae.analysis.metrics, "fill_in_report", stub)
    at = open_page("inpaint")
    shown = "\n".join(texts(at))
    assert "the AE's fills are closer to the truth (MAE 0.100 vs 0.200)" in shown, shown
    assert "the judge recognises the true class in 60 % of the VAE's fills and 70 % of the AE's" in shown
    assert "This one favours the AE." in shown
    assert "at least one of the VAE's 4 sampled fills" in shown


def test_generate_prior_tab_states_the_measured_shares(app_env: Path, fresh_measures: None) -> None:
    at = open_page("generate")
    models = pair(app_env)
    compared = compare_reports(models["vae"].metrics, models["ae"].metrics)
    shown = "\n".join(texts(at))
    recognised = [r for r in compared["rows"] if r["label"] == "prior samples the judge recognises"]
    assert recognised and recognised[0]["sentence"] in shown, shown
    assert "A VAE was trained so that" not in shown  # the unmeasured claim is gone


def test_generate_says_so_when_the_ae_covers_more(app_env: Path, fresh_measures: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def stub(sha, ckpt, data):  # type: ignore[no-untyped-def]
        report = dict(ckpt.metrics)
        samples = dict(report["prior_samples"])
        samples.update(recognised=0.5 if ckpt.kind == "vae" else 0.9, classes_covered=4 if ckpt.kind == "vae" else 9)
        report["prior_samples"] = samples
        return report

    monkeypatch.setattr(pages.ui.measures, "checkpoint_report", stub)
    at = open_page("generate")
    shown = "\n".join(texts(at))
    assert "The judge recognises 50 % of the VAE's prior samples and 90 % of the AE's. This one favours the AE." in shown, shown
    assert "The VAE's prior samples cover 4 of 10 classes, the AE's 9. This one favours the AE." in shown
