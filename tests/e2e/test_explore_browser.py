"""Explore in Chromium (issue 9, item 7), where only a browser shows the symptom: a click on a
dot leaves every other dot at full strength (Plotly dims unselected points by default).
(Item 3, z kept across the PCA/t-SNE switch, is tested with AppTest in
tests/app/test_explore_compare.py: on the digits' 359 test images both maps use the same
sample, so a browser here could not show the jump.)"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import wait_until_idle

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def e2e_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-D AE alone ("three-d-ae"), briefly trained."""
    from vae.data import load_dataset
    from vae.workflow import default_run, train_models

    folder = tmp_path_factory.mktemp("explore-browser-models")
    data = load_dataset("digits")
    model_config, train_config = default_run(data, which="ae", latent_dim=3)
    train_models(data, "ae", model_config, replace(train_config, epochs=3), folder, "three-d-ae")
    return folder


def open_explore(page: Any, url: str) -> None:
    page.goto(url)
    page.locator('[data-testid="stImage"]').filter(has_text="decoded image").wait_for(timeout=120_000)
    wait_until_idle(page)


def test_a_click_on_a_dot_leaves_every_dot_at_full_strength(streamlit_server: str, page: Any) -> None:
    open_explore(page, streamlit_server)
    opacities_js = """() => [...document.querySelectorAll('.js-plotly-plot .scatterlayer .trace')].slice(1)
        .flatMap(t => [...t.querySelectorAll('path.point')]).map(p => getComputedStyle(p).opacity)"""
    before = page.evaluate(opacities_js)
    point = page.evaluate("""() => { const t = document.querySelectorAll('.js-plotly-plot .scatterlayer .trace')[1];
        const b = t.querySelectorAll('path.point')[3].getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; }""")

    page.mouse.click(point[0], point[1])
    page.get_by_text(re.compile(r"^test image #\d+")).wait_for(timeout=30_000)
    wait_until_idle(page)
    page.wait_for_timeout(500)

    after = page.evaluate(opacities_js)
    assert len(after) == len(before) > 50
    assert set(after) == set(before) == {"0.75"}, sorted(set(after))
