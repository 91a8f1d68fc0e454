"""Explore's and Compare's map layers in Chromium (issue 11, item 5): with every layer on, the
"current z" marker still lands exactly where Plotly draws z after slider moves, and a slider
move does not redraw the layered chart (the layers are part of the figure, which changes only
when the layer pills do)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import save_screenshot
from tests.e2e.test_explore_browser import (
    KEEP_JS,
    KEPT_JS,
    assert_marker_at,
    compare_markers_follow_the_sliders,
    map_boxes,
    move_sliders,
    open_explore,
    settle,
    slider_z,
)

pytestmark = pytest.mark.e2e

LAYER_PILLS = ("Decoded landscape", "Prior 1-3σ", "q(z)", "q(z|x)")


def all_layers_on(page: Any) -> None:
    for name in LAYER_PILLS:
        page.get_by_role("button", name=name, exact=True).first.click()
        settle(page)
    page.wait_for_timeout(500)


def test_with_every_layer_on_the_markers_still_sit_on_z(pair_server: str, page: Any) -> None:
    open_explore(page, pair_server)
    all_layers_on(page)
    (box,) = map_boxes(page)
    page.wait_for_function("(box) => (document.querySelector('.st-key-' + box + ' .js-plotly-plot')?.data?.length ?? 0) > 12",
                           arg=box, timeout=30_000)  # the click layer, ten classes and the layers' traces
    settle(page)
    assert_marker_at(page, box, np.zeros(2))
    page.evaluate(KEEP_JS, box)
    move_sliders(page, {"z1": ("ArrowRight", 7), "z2": ("ArrowLeft", 4)})
    z = slider_z(page)
    assert z[0] > 0 and z[1] < 0
    assert_marker_at(page, box, z)
    assert page.evaluate(KEPT_JS, box)  # the layered chart was not redrawn by the slider moves
    save_screenshot(page, "explore-layers-1280")

    page.goto(pair_server + "/compare")
    page.get_by_text("The same z, decoded by both").wait_for(timeout=60_000)
    settle(page)
    all_layers_on(page)
    boxes = map_boxes(page)
    assert len(boxes) == 2
    for b in boxes:
        page.wait_for_function("(box) => (document.querySelector('.st-key-' + box + ' .js-plotly-plot')?.data?.length ?? 0) > 12",
                               arg=b, timeout=30_000)
    settle(page)
    compare_markers_follow_the_sliders(page, boxes)
    save_screenshot(page, "compare-layers-1280")
