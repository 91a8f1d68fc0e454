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


def _is_package_marker(path: Path) -> bool:
    """An __init__.py that holds only its docstring: a package marker, not a module to describe."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def test_the_readme_layout_lists_every_module_once_and_nothing_else():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    listed = [line.split()[0] for line in block.strip().splitlines()]
    assert len(listed) == len(set(listed)), "a module is listed twice"
    files = {"app.py"}
    for folder, patterns in (("vae", ("*.py",)), ("pages", ("*.py", "*.js", "*.css", "*.html")), ("bench", ("*.py",))):
        for pattern in patterns:
            files |= {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / folder).rglob(pattern) if not _is_package_marker(p)}
    assert not files - set(listed), f"modules missing from the README's Layout: {sorted(files - set(listed))}"
    assert not set(listed) - files, f"the README's Layout lists files that do not exist: {sorted(set(listed) - files)}"
