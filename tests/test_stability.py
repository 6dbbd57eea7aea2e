"""Measurements a user can trust: the stable/noisy verdict, measuring until stable, and the bench
table that says which rows are noisy (issue 14)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shufflenet_edge.bench.report import summary_lines, terminal_rows
from shufflenet_edge.runtime import timing

QUIET = Path(__file__).parent / "data" / "quiet_samples.json"


def test_bootstrap_ci_brackets_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(3)
    few = 5.0 + rng.gamma(2.0, 0.1, size=30)
    many = 5.0 + rng.gamma(2.0, 0.1, size=3000)
    lo, hi = timing.bootstrap_median_ci(few)
    assert lo <= np.median(few) <= hi
    assert timing.ci_halfwidth(many) < timing.ci_halfwidth(few)


def test_verdict_names_every_limit_it_exceeds():
    rng = np.random.default_rng(0)
    calm = list(10 + rng.normal(0, 0.05, 200))
    quiet = timing.verdict(calm, [10.0, 10.01, 9.99, 10.0, 10.02], {"others_cpu_share": 0.01})
    assert quiet["verdict"] == "stable" and quiet["reasons"] == []
    loud = timing.verdict(calm, [10.0, 13.0, 10.0], {"others_cpu_share": 0.5, "mhz": [3000, 2000]})
    assert loud["verdict"] == "noisy"
    assert set(loud["exceeded"]) == {"spread", "others_cpu_share", "freq_change"}
    # the load average decides only where /proc's CPU share is unreadable (it lags and counts us)
    assert timing.verdict(calm, [10.0] * 5, {"others_cpu_share": 0.0, "load_1min": [6.0, 6.0]})["verdict"] == "stable"
    assert timing.verdict(calm, [10.0] * 5, {"others_cpu_share": None, "load_1min": [6.0, 6.0]})["exceeded"] == \
        ["load_excess"]


@pytest.mark.skipif(not QUIET.is_file(), reason="no recorded quiet samples yet (tests/data/record_quiet_samples.py)")
def test_recorded_quiet_samples_are_stable():
    """Samples recorded by a real run on an idle machine (tests/data/record_quiet_samples.py)."""
    rec = json.loads(QUIET.read_text())
    env = {k: rec["stability"][k] for k in ("load_1min", "others_cpu_share", "mhz")}
    got = timing.verdict(rec["samples_ms"], rec["rounds"]["p50_ms"], env, rec["threads"])
    assert got["verdict"] == "stable", got["reasons"]


def test_until_stable_stops_on_the_ci_when_times_are_steady():
    def steady(_):
        t = time.perf_counter() + 0.0005
        while time.perf_counter() < t:
            pass

    res = timing.time_cases([(steady, None)], runs=None, warmup=2, max_seconds=20)[0]
    assert res["measure"]["mode"] == "adaptive"
    if res["stability"]["others_cpu_share"] is not None and res["stability"]["others_cpu_share"] > 0.5:
        pytest.skip("machine too busy for a steady busy-wait")
    assert res["measure"]["stopped"] == "ci" and res["measure"]["elapsed_s"] < 20
    assert res["stability"]["ci_halfwidth"] <= timing.TARGET_CI and res["rounds"]["n"] >= timing.MIN_ROUNDS


def test_until_stable_stops_at_the_budget_when_times_jump():
    rng = np.random.default_rng(1)

    def jumpy(_):
        time.sleep(float(rng.uniform(0.0002, 0.004)))  # median's CI needs ~8000 runs for +-2%

    t0 = time.perf_counter()
    res = timing.time_cases([(jumpy, None)], runs=None, warmup=1, max_seconds=1.0)[0]
    assert res["measure"]["stopped"] == "budget" and time.perf_counter() - t0 < 3.0
    assert res["stability"]["verdict"] == "noisy" and "ci_halfwidth" in res["stability"]["exceeded"]


def test_fixed_runs_keep_their_count():
    res = timing.time_cases([(lambda _: None, None)], runs=12, warmup=0, rounds=4)[0]
    assert res["runs"] == 12 and res["rounds"]["n"] == 4 and res["measure"]["stopped"] == "fixed"
    assert len(res["samples_ms"]) == 12


def _record(model, verdict, p50=1.234, engine="onnxruntime", precision="fp32"):
    return {"model": model, "format": "tflite", "precision": precision, "engine": engine, "threads": 2,
            "latency_ms": {"p50": p50}, "rounds": {"spread": 0.012}, "fraction_of_peak": 0.123, "runs": 100,
            "device": {"cores": 2}, "measure": {"mode": "fixed", "stopped": "fixed"},
            "stability": {"verdict": verdict, "ci_halfwidth": 0.0123, "exceeded": ["others_cpu_share"] if
                          verdict == "noisy" else [], "others_cpu_share": 0.6, "load_1min": [3.2, 3.8]}}


def test_terminal_table_fits_80_columns_and_marks_noisy_rows():
    recs = [_record("mobilenet_v1_1.0x", "noisy", 18234.567, "tflite-runtime", "dynamic"),
            _record("v1_g3", "stable")]
    import io

    from rich.console import Console

    from shufflenet_edge.tables import print_table

    buf = io.StringIO()
    print_table(*terminal_rows(recs), out=Console(width=80, file=buf, soft_wrap=False))
    text = buf.getvalue()
    lines = [x for x in text.splitlines() if x.strip()]
    assert max(len(x) for x in lines) <= 80
    assert "18234.567" in text and "1.234" in text  # numbers whole, never cut
    noisy_line = next(x for x in lines if "mobilenet" in x)
    assert noisy_line.lstrip().startswith("!") and "NOISY" in noisy_line
    assert "stable" in next(x for x in lines if "v1_g3" in x)
    summary = " ".join(summary_lines(recs))
    assert "1 of 2 row(s) NOISY" in summary and "60%" in summary and "load average up to 3.8" in summary
    assert "spread = how far apart the medians" in summary


def _hog(cpu: int):
    return subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c",
                             "import time\nend = time.time() + 120\nwhile time.time() < end: pass"])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_bench_pinned_next_to_a_cpu_hog_is_marked_noisy(edge_cli, tmp_path):
    out = tmp_path / "rec.json"
    hog = _hog(0)
    try:
        time.sleep(0.5)
        p = edge_cli("bench", "--model", "v2_0.5x", "--input-size", "64", "--cpus", "0", "--max-seconds", "2",
                     "--out", out, env={"EDGE_CACHE_DIR": os.environ.get("EDGE_CACHE_DIR", str(tmp_path / "c")),
                                        "COLUMNS": "80"})
    finally:
        hog.kill()
        hog.wait()
    assert p.returncode == 0, p.stderr
    rec = json.loads(out.read_text())[0]
    st = rec["stability"]
    assert st["cpus"] == [0] and st["verdict"] == "noisy", st
    assert "others_cpu_share" in st["exceeded"] and st["others_cpu_share"] > 0.3
    table = [x for x in p.stdout.splitlines() if not x.startswith("records appended to")]
    assert any(x.lstrip().startswith("!") and "NOISY" in x for x in table)
    assert "1 of 1 row(s) NOISY" in p.stdout and max(len(x) for x in table) <= 80
