"""A small classroom (bench/classroom.py, shortened): 3 sessions move sliders for 10 s on a
real server while one more session trains from the Train page. Checks correctness only
(every session moves, no errors, training makes progress, memory does not balloon); the
latency numbers belong to the benchmark, whose machine-dependent targets a test must not gate on."""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from bench import classroom
from vae.core.data import load_dataset
from vae.services.workflow import default_run, train_models

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default pair, briefly trained, so the server skips its first-run training."""
    folder = tmp_path_factory.mktemp("classroom-models")
    data = load_dataset("digits")
    model_config, train_config = default_run(data)
    train_models(data, "both", model_config, replace(train_config, epochs=3, snapshot_points=50), folder, "mnist-2d")
    return folder


def test_three_sessions_move_sliders_while_a_fourth_trains(pretrained: Path) -> None:
    if not Path(classroom.CHROMIUM).exists():
        if os.environ.get("VAE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VAE_REQUIRE_BROWSER=1 but there is no Chromium at {classroom.CHROMIUM}")
        pytest.skip(f"no Chromium at {classroom.CHROMIUM}")
    args = classroom.build_parser().parse_args(
        ["--sessions", "3", "--browsers", "1", "--seconds", "10", "--models-dir", str(pretrained)]
    )
    # The session-scoped Playwright sync API (conftest's `browser`) keeps an asyncio loop running
    # on this thread once any earlier test used it, and asyncio.run refuses to nest; a worker
    # thread has no running loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(asyncio.run, classroom.run(args)).result()

    assert result["all"]["errors"] == 0, result["error_samples"]
    assert result["browser"]["moves"] >= 1 and result["light"]["moves"] >= 2, result
    epochs = [int(m.group(1)) for m in (re.search(r"epoch (\d+)/", result.get(k, "")) for k in ("training_at_start", "training_at_end")) if m]
    assert len(epochs) == 2 and epochs[1] > epochs[0], (result.get("training_at_start"), result.get("training_at_end"))
    assert result["rss_mib"]["peak"] - result["rss_mib"]["before_window"] < 300, result["rss_mib"]
