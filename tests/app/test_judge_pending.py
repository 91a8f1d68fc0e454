"""A fresh cache: the dataset's judge trains in the background (pages/ui/widgets.judge_pending)
while Explore goes on, the meter says so, and the judge's parts come once it is there."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from test_pages import run_app

from pages.ui import widgets


def meter_lines(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(m.value for m in at.main.markdown if "round trip" in m.value)


def test_explore_goes_on_while_the_judge_trains_and_shows_it_when_ready(app_env: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "fresh-cache"))  # no judge on disk yet
    widgets.dataset_judge.clear()
    widgets._judge_training.clear()
    from vae.analysis import judge as judge_module
    from vae.services import jobs

    monkeypatch.setattr(judge_module, "_MEMO", {})
    monkeypatch.setattr(judge_module, "_TRAINED", {})
    gate = tmp_path / "go"

    def gated(dataset: str) -> list[str]:  # the real child process (python -m vae judge), held until the page was seen
        return [sys.executable, "-c", "import pathlib, runpy, sys, time\n"
                f"while not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.05)\n"
                f"sys.argv = ['vae', 'judge', '--dataset', {dataset!r}]\n"
                "runpy.run_module('vae', run_name='__main__')"]

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the judge was trained in the server's process, not in its child")

    monkeypatch.setattr(jobs, "judge_command", gated)
    monkeypatch.setattr(judge_module, "train_judge", refuse)
    at = run_app()
    assert not at.exception, [e.value for e in at.exception]
    assert "judge: being trained…" in meter_lines(at)
    assert any("Training this dataset's judge once" in c.value for c in at.main.caption)
    assert at.main.get("image")  # the decoded image did not wait for the judge
    gate.touch()
    deadline = time.time() + 120
    while widgets._judge_training("digits", None).is_alive() and time.time() < deadline:  # type: ignore[arg-type]
        time.sleep(0.2)
    at.run()
    assert "judge: **" in meter_lines(at) and "being trained" not in meter_lines(at)
    assert not any("Training this dataset's judge once" in c.value for c in at.main.caption)
