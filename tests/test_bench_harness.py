"""bench/harness.py: the section writer keeps the other sections; percentiles interpolate as numpy does."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bench.harness import RESULTS, percentile, summary, write_section


def test_write_section_rewrites_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    original = RESULTS.read_text()
    path.write_text(original)
    headings = re.findall(r"^## .*$", original, re.MULTILINE)
    assert len(headings) >= 2
    for heading in headings:  # writing a section back as it is changes nothing
        section = re.search(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", original, re.DOTALL | re.MULTILINE)
        assert section is not None
        write_section(heading, section.group(0), path)
        assert path.read_text() == original, heading

    write_section(headings[0], f"{headings[0]}\n\nnew numbers\n", path)
    text = path.read_text()
    assert f"{headings[0]}\n\nnew numbers\n\n{headings[1]}\n" in text
    assert all(text.count(f"{h}\n") == 1 for h in headings)

    write_section("## Brand new", "## Brand new\n\nx\n", path)
    assert path.read_text() == text.rstrip("\n") + "\n\n## Brand new\n\nx\n"
    with pytest.raises(ValueError, match="heading"):
        write_section("## Brand new", "no heading\n", path)


def test_percentile_matches_numpy_linear_interpolation() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 31):
        values = rng.exponential(100, n).tolist()
        for q in (1, 50, 95, 99):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], 100)
    assert summary([3, 1, 2]) == {"n": 3, "p50": 2.0, "p95": pytest.approx(2.9), "p99": pytest.approx(2.98), "min": 1.0, "max": 3.0}
