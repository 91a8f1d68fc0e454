"""Links (issue 12, item 1): a view's link carries the model (name, content hash), z and presenter
mode; a new session opened on it shows the same view; whatever in it is unknown, stale or
malformed is ignored with a short note, never an exception."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from streamlit.testing.v1 import AppTest
from test_pages import APP, TIMEOUT, compare_prefix, compare_sliders, explore_prefix, explore_sliders, run_app

from vae.core.checkpoint import load_checkpoint

PAIR_LABEL = "mnist-2d (VAE + AE pair)"


def open_link(params: dict[str, str], page: str | None = None) -> AppTest:
    """A new session on a link: its page (a file under pages/, or Explore) and its query parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    if page is not None:
        at.switch_page(page)  # the first run is on that page, as a browser opening the link
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def link_of(at: AppTest) -> dict[str, str]:
    """The query parameters of the page's "Copy link" control (the link in its code block)."""
    (link,) = [c.value for c in at.code if "model=" in c.value]
    return dict(parse_qsl(urlsplit(link).query))


def warnings(at: AppTest) -> str:
    return " | ".join(w.value for w in at.main.warning)


def sha(folder: Path, stem: str) -> str:
    return load_checkpoint(folder / f"{stem}.safetensors").sha256


def test_explore_round_trip(app_env: Path) -> None:
    at = run_app()
    prefix = explore_prefix(app_env)
    for slider, v in zip(explore_sliders(at, prefix), (1.2, -0.6), strict=True):
        slider.set_value(v)
    at.sidebar.toggle(key="presenter_toggle").set_value(True).run()
    params = link_of(at)
    assert params["model"] == "mnist-2d" and params["present"] == "1"
    assert params["hash"] == f"{sha(app_env, 'mnist-2d-vae')[:12]}-{sha(app_env, 'mnist-2d-ae')[:12]}"

    new = open_link(params)
    assert new.sidebar.selectbox(key="model_choice").value == PAIR_LABEL
    assert [s.value for s in explore_sliders(new, prefix)] == pytest.approx([1.2, -0.6])
    assert new.session_state["presenting"] is True and new.sidebar.toggle(key="presenter_toggle").value is True
    assert not new.main.warning and not new.main.info
    assert link_of(new) == params  # the same view gives the same link


def test_compare_round_trip_and_a_link_selects_its_model(app_env: Path) -> None:
    at = run_app()
    at.switch_page("pages/compare.py").run()
    prefix = compare_prefix(app_env)
    for slider, v in zip(compare_sliders(at, prefix), (-1.5, 2.0), strict=True):
        slider.set_value(v)
    at.run()
    params = link_of(at)
    assert "present" not in params

    new = open_link(params, "pages/compare.py")
    assert [s.value for s in compare_sliders(new, prefix)] == pytest.approx([-1.5, 2.0])
    assert new.session_state["presenting"] is False

    # the lone VAE, by its own hash: the link selects it rather than the default pair
    alone = open_link({"model": "mnist-2d-vae", "hash": sha(app_env, "mnist-2d-vae")[:12], "z": "0.5,0.25"})
    assert alone.sidebar.selectbox(key="model_choice").value.startswith("mnist-2d-vae ")
    assert [s.value for s in explore_sliders(alone, explore_prefix(app_env))] == pytest.approx([0.5, 0.25])


def test_live_pad_takes_the_links_z(app_env: Path) -> None:
    vae_sha, ae_sha = sha(app_env, "mnist-2d-vae"), sha(app_env, "mnist-2d-ae")
    at = open_link({"model": "mnist-2d", "hash": f"{vae_sha[:12]}-{ae_sha[:12]}", "z": "0.75,-1"}, "pages/live.py")
    assert at.session_state[f"live_{vae_sha[:10]}_{ae_sha[:10]}_z"].tolist() == [0.75, -1.0]
    assert link_of(at)["z"] == "0.75,-1"


@pytest.mark.parametrize(("params", "words"), [
    ({"z": "nan,0"}, "finite"),
    ({"z": "1,2,3"}, "3 values"),
    ({"z": "1e300,0"}, "within"),
    ({"z": "a,b"}, "numbers separated by commas"),
    ({"hash": "not-hex"}, "hex digits"),
    ({"present": "perhaps"}, "present=1"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
    ({"model": "mnist-2d", "hash": "0123456789ab-ba9876543210", "z": "1,1"}, "content hash differs"),
    ({"model": "gone-model", "hash": "0123456789ab", "z": "1,1"}, "not on this server"),
])
def test_a_bad_link_is_a_note_and_the_default_view(app_env: Path, params: dict[str, str], words: str) -> None:
    at = open_link(params)
    assert words in warnings(at), warnings(at)
    assert at.sidebar.selectbox(key="model_choice").value == PAIR_LABEL  # the default model
    assert [s.value for s in explore_sliders(at, explore_prefix(app_env))] == [0.0, 0.0]  # z untouched
    assert at.session_state["presenting"] is False
    at.run()  # the note stays on the page it was about, and nothing is applied twice
    assert words in warnings(at)
    at.switch_page("pages/generate.py").run()
    assert not at.main.warning  # another page: the note is gone


def test_present_1_opens_presenter_mode_and_hides_developer_readouts(app_env: Path) -> None:
    at = open_link({"present": "1"}, "pages/live.py")
    assert at.session_state["presenting"] is True
    assert not [c for c in at.code if c.language == "json"]  # the raw z JSON
    assert not [m for m in at.metric if m.label == "browser vs PyTorch"]
    at.switch_page("pages/explore.py").run()
    assert not [c for c in at.code if c.value.startswith("z = [")]
    at.sidebar.toggle(key="presenter_toggle").set_value(False).run()  # the toggle wins over the link from now on
    assert at.session_state["presenting"] is False
    assert [c for c in at.code if c.value.startswith("z = [")]
