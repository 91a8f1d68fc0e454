"""The Live pad's JavaScript under Node's own test runner (tests/js/*.test.js, `node --test`, no
npm packages): the pure modules (decoder.js, maps.js, meter.js, layers.js) against PyTorch's and LatentMap's own
outputs, and pad.js's test hooks switch. The fixtures are exported here first
(tests/js/export_fixtures.py), into a temporary folder.

Without Node the test skips, unless VAE_REQUIRE_BROWSER=1 (CI), as the browser tests do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
JS_TESTS = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests" / "js").glob("*.test.js"))


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("VAE_REQUIRE_BROWSER") == "1":
            pytest.fail("VAE_REQUIRE_BROWSER=1 but there is no `node` on PATH for the JavaScript tests", pytrace=False)
        pytest.skip("no `node` on PATH: the Live pad's JavaScript tests need Node 18 or later")
    return node


def test_there_are_javascript_tests():
    assert {Path(p).name for p in JS_TESTS} >= {"decoder.test.js", "maps.test.js", "meter.test.js", "layers.test.js", "pad.test.js"}


@pytest.mark.server
def test_live_pad_javascript_with_node(tmp_path):
    node = _node()
    from tests.js import export_fixtures

    fixtures = export_fixtures.write(tmp_path)
    result = subprocess.run(
        [node, "--test", *JS_TESTS], cwd=REPO_ROOT, env={**os.environ, "LATENT_PAD_FIXTURES": str(fixtures)},
        capture_output=True, text=True, timeout=300,
    )
    failed = [line for line in result.stdout.splitlines() if line.startswith("not ok")]
    assert result.returncode == 0, "\n".join(failed) + "\n" + result.stdout[-8000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
