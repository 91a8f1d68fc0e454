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


def _classroom_run(latencies: dict[str, list[float]], repeat: int, code: str, errors: int = 0) -> dict:  # type: ignore[type-arg]
    """The raw result of one bench.classroom run, as `run` returns it, with made-up moves."""
    group = {k: {"sessions": 2 if k != "all" else 4, "errors": errors if k == "browser" else 0, "moves": len(v),
                 "p95_ms": percentile(v, 95)} for k, v in latencies.items()}
    group["all"]["errors"] = errors
    group["light"]["unchanged_images"] = 1
    return {**group, "latencies_ms": latencies, "repeat": repeat, "code": code, "student_nice": 0, "seconds": 10.0,
            "sessions": 4, "browsers": 2, "think_s": [0.5, 1.5], "dataset": "mnist-bundled (2-D)", "models_copied": "",
            "cache_copied": "", "server_cpu_s": 1.0, "machine_busy_pct": 90.0, "chromium_cpu_s": 5.0, "trainer_cpu_s": 2.0,
            "rss_mib": {"peak": 800.0}, "first_start_s": 14.0, "load_avg_1min": {"before": 1.0, "after": 2.0},
            "error_samples": ["browser-0: no new image"] * errors}


def test_classroom_section_pools_the_repeats_and_judges_all_and_browser_sessions_apart() -> None:
    from bench.classroom import SECTION, pooled, report

    fast, slow = [100.0] * 19 + [400.0], [100.0] * 18 + [900.0, 900.0]
    runs = [_classroom_run({"browser": slow, "light": fast, "all": fast + slow}, r, "this checkout") for r in range(2)]
    runs.append(_classroom_run({"browser": fast, "light": fast, "all": fast + fast}, 0, "baseline (old)", errors=1))
    mine = pooled(runs[:2], "browser")
    assert mine["moves"] == 40 and mine["run_p95_ms"] == [900.0, 900.0]
    assert mine["p95_ms"] == pytest.approx(percentile(slow + slow, 95))

    text = report(runs, "python -m bench.classroom --repeats 2")
    assert text.startswith(SECTION + "\n")
    ours = text.split("this checkout\n")[1]
    assert "over all sessions: **met**; the browser sessions alone: **missed**" in ours  # all: p95 400 ms; browser: 900 ms
    theirs = text.split("baseline (old)\n")[1].split("###")[0]
    assert "over all sessions: **missed**" in theirs and "Errors: browser-0: no new image" in theirs  # an error misses
