"""The frame (app.py) without a browser: the model a new session opens on (the default pair
unless a teacher pinned another), the start-up screen painted before the heavy imports, upload
messages that belong to the latest file, and the one private Streamlit API the app relies on."""

from __future__ import annotations

import importlib.abc
import inspect
import json
import shutil
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae.core.checkpoint import save_checkpoint
from vae.core.config import ModelConfig
from vae.core.data import load_dataset
from vae.core.models import build_model
from vae.services.workflow import default_run

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = str(REPO_ROOT / "app.py")
TIMEOUT = 60
DEFAULT = "mnist-2d (VAE + AE pair)"


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def class_models(app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default pair plus a student's VAE + AE pair saved after it (the newest in the folder)."""
    folder = tmp_path / "class-models"
    folder.mkdir()
    for f in app_env.glob("*.safetensors"):
        shutil.copy2(f, folder / f.name)
    data = load_dataset("digits")
    model_config, train_config = default_run(data)
    for kind in ("vae", "ae"):
        config = ModelConfig(**{**model_config.to_dict(), "kind": kind}).validate()
        save_checkpoint(folder / f"student-run-{kind}.safetensors", build_model(config, seed=1), train_config, data.info(),
                        pair="student-run")
    monkeypatch.setenv("VAE_MODELS_DIR", str(folder))
    return folder


def student_label(at: AppTest) -> str:
    return "student-run (VAE + AE pair)"


def test_a_new_session_opens_on_the_default_pair_not_on_the_newest_model(class_models: Path) -> None:
    at = run_app()
    options = at.sidebar.selectbox(key="model_choice").options
    assert options[0].startswith("student-run"), options  # the newest is listed first...
    assert at.sidebar.selectbox(key="model_choice").value == DEFAULT  # ...but not opened


def test_a_pinned_model_is_what_new_sessions_open_on_until_it_is_unpinned(class_models: Path) -> None:
    teacher, other = run_app(), run_app()
    label = student_label(teacher)
    teacher.sidebar.selectbox(key="model_choice").set_value(label).run()
    teacher.sidebar.button(key="pin_default").click().run()
    assert not teacher.exception, [e.value for e in teacher.exception]

    assert json.loads((class_models / "default-model.json").read_text()) == {"label": label}
    assert not list(class_models.glob(".default-model.json.*"))  # written atomically: no temp file left
    assert any("New sessions open on this model" in c.value for c in teacher.sidebar.caption)
    assert run_app().sidebar.selectbox(key="model_choice").value == label  # a new session
    other.run()
    assert other.sidebar.selectbox(key="model_choice").value == DEFAULT  # an open session keeps its choice

    teacher.sidebar.button(key="unpin_default").click().run()
    assert not (class_models / "default-model.json").exists()
    assert run_app().sidebar.selectbox(key="model_choice").value == DEFAULT
    assert teacher.sidebar.selectbox(key="model_choice").value == label  # unpinning changes nobody's choice


def test_a_pin_naming_a_model_that_is_gone_falls_back_to_the_default_pair(class_models: Path) -> None:
    (class_models / "default-model.json").write_text(json.dumps({"label": "deleted-run (VAE, 2-D)"}))
    assert run_app().sidebar.selectbox(key="model_choice").value == DEFAULT
    (class_models / "default-model.json").write_text("not json")
    assert run_app().sidebar.selectbox(key="model_choice").value == DEFAULT


def test_select_label_still_selects_the_model_a_session_just_trained(class_models: Path) -> None:
    at = run_app()
    label = student_label(at)
    at.session_state["select_label"] = label
    at.run()
    assert at.sidebar.selectbox(key="model_choice").value == label


def forget_the_heavy_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a fresh server: pages.ui.session (torch, scikit-learn...) not imported yet."""
    import pages.ui

    monkeypatch.delitem(sys.modules, "pages.ui.session", raising=False)
    monkeypatch.delattr(pages.ui, "session", raising=False)


class _HeavyImportFails(importlib.abc.MetaPathFinder):
    """Stands in for a slow first import of the heavy modules: it stops the run right there,
    so the test sees exactly what the user saw while that import was still going on."""

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name == "pages.ui.session":
            raise ImportError("the heavy import has not finished")
        return None


def test_the_start_up_screen_is_painted_before_the_heavy_imports(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forget_the_heavy_imports(monkeypatch)
    monkeypatch.setattr(sys, "meta_path", [_HeavyImportFails(), *sys.meta_path])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()

    assert [t.value for t in at.title] == ["Explore"]  # the page's name, before torch is loaded
    assert any("Starting Latent Explorer" in c.value for c in at.main.caption), [c.value for c in at.main.caption]


def test_the_start_up_screen_waits_for_the_whole_heavy_module() -> None:
    """app.py tells "still importing" (another session's first import may be half done) by the
    last definition of pages/ui/session.py: the name it asks for must be exactly that one."""
    import ast

    app = ast.parse(Path(APP).read_text())
    (call,) = [n for n in ast.walk(app) if isinstance(n, ast.Call) and ast.unparse(n.func) == "hasattr"]
    assert ast.unparse(call.args[0]) == "sys.modules.get('pages.ui.session')"
    last = ast.parse((REPO_ROOT / "pages" / "ui" / "session.py").read_text()).body[-1]
    assert isinstance(last, (ast.FunctionDef, ast.ClassDef)) and last.name == call.args[1].value


def test_the_start_up_screen_is_gone_once_the_page_is_drawn(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forget_the_heavy_imports(monkeypatch)
    at = run_app()
    assert [t.value for t in at.title] == ["Explore the latent space"]
    assert not any("Starting Latent Explorer" in c.value for c in at.main.caption)


def test_an_upload_error_goes_when_the_file_goes(app_env: Path) -> None:
    at = run_app()
    at.sidebar.file_uploader(key="upload").set_value(("bad.safetensors", b"not a checkpoint", "application/octet-stream")).run()
    assert any("bad.safetensors" in e.value and "refused" in e.value for e in at.sidebar.error)
    assert any("bad.safetensors" in t.value for t in at.toast)  # also where the eye is, whatever the scroll

    at.sidebar.file_uploader(key="upload").set_value(None).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.sidebar.error, [e.value for e in at.sidebar.error]


def test_an_upload_error_names_the_latest_file_only(app_env: Path) -> None:
    at = run_app()
    uploader = at.sidebar.file_uploader(key="upload")
    uploader.set_value(("first.safetensors", b"junk one", "application/octet-stream")).run()
    at.sidebar.file_uploader(key="upload").set_value(("second.safetensors", b"junk two", "application/octet-stream")).run()
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "second.safetensors" in errors[0], errors


# --- the private Streamlit API, in one place -------------------------------------------------


def test_streamlit_still_has_the_private_pages_folder_switch_the_app_relies_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails when a Streamlit upgrade renames or drops PagesManager.uses_pages_directory (used
    only in pages/ui/frame.py): then a fresh server's deep link may run a page without app.py."""
    monkeypatch.undo()  # Streamlit's own PagesManager, without the conftest's keep_navigation_mode
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    from pages.ui import frame

    saved = PagesManager.uses_pages_directory
    try:
        PagesManager.uses_pages_directory = None
        PagesManager(str(REPO_ROOT / "app.py"))  # our layout: a pages/ folder beside app.py
        assert PagesManager.uses_pages_directory is True and frame.pages_folder_mode_active()
        # the script runner still picks the pages-folder mode from that flag
        assert "PagesManager.uses_pages_directory" in inspect.getsource(script_runner.ScriptRunner)
        # and st.navigation still turns it off
        PagesManager.uses_pages_directory = True
        at = AppTest.from_string("import streamlit as st\nst.navigation([st.Page(lambda: None, title='x')], position='hidden')")
        at.run()
        assert PagesManager.uses_pages_directory is False and not frame.pages_folder_mode_active()
    finally:
        PagesManager.uses_pages_directory = saved


def test_only_the_frame_module_touches_the_private_switch() -> None:
    users = [
        str(p.relative_to(REPO_ROOT)) for p in [REPO_ROOT / "app.py", *REPO_ROOT.glob("pages/**/*.py"), *REPO_ROOT.glob("tests/**/*.py")]
        if "uses_pages_directory" in p.read_text() and p.name != "test_frame.py"
    ]
    assert users == ["pages/ui/frame.py"], users


def test_the_app_config_hides_streamlits_own_pages_folder_navigation() -> None:
    import tomllib

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showSidebarNavigation"] is False


def test_a_file_that_is_not_a_checkpoint_replaces_the_previous_files_error(app_env: Path) -> None:
    at = run_app()
    at.sidebar.file_uploader(key="upload").set_value(("bad.safetensors", b"junk", "application/octet-stream")).run()
    at.sidebar.file_uploader(key="upload").set_value(("notes.txt", b"hello", "text/plain")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "notes.txt" in errors[0] and ".safetensors" in errors[0], errors
