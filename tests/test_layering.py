"""The engine never imports streamlit (DESIGN.md rule 10); new modules are picked up automatically."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import vae

VAE_DIR = Path(vae.__file__).resolve().parent
REPO_ROOT = VAE_DIR.parent


def engine_modules() -> list[str]:
    """'vae' and every module and subpackage under it, found on disk (so new files are covered)."""
    return ["vae"] + sorted(m.name for m in pkgutil.walk_packages([str(VAE_DIR)], prefix="vae."))


def test_engine_modules_are_discovered():
    modules = engine_modules()
    for expected in ("vae.core.config", "vae.core.data", "vae.core.models", "vae.core.losses", "vae.core.train", "vae.core.checkpoint"):
        assert expected in modules


@pytest.mark.server
def test_importing_every_engine_module_leaves_streamlit_unloaded():
    modules = engine_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.'))\n"
        "assert not loaded, f'streamlit was imported: {loaded[:5]}'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__"):
            names.update(a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_no_engine_source_mentions_a_streamlit_import():
    sources = sorted(VAE_DIR.rglob("*.py"))
    assert len(sources) >= 7
    offenders = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        names = imported_names(ast.parse(text, filename=str(path)))
        if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
            offenders.append(path.name)
    assert offenders == [], f"these engine modules import streamlit: {offenders}"


def test_the_ast_check_would_catch_it():
    tree = ast.parse("def f():\n    import streamlit as st\nfrom streamlit.runtime import x\nimportlib.import_module('streamlit')\n")
    assert {"streamlit", "streamlit.runtime"} <= imported_names(tree)
