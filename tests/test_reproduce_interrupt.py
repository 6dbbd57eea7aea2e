"""Stopping `edge reproduce` while its conversion pool runs: it must not sit out the queue."""
import os
import signal
import subprocess
import time

import pytest

from conftest import EDGE


@pytest.mark.slow
def test_sigterm_during_conversions_stops_promptly_and_leaves_no_temporaries(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "EDGE_CACHE_DIR": str(cache), "COLUMNS": "120"}
    # v1-groups converts five files in two worker processes; stop it once the first worker is busy
    proc = subprocess.Popen([EDGE, "reproduce", "v1-groups", "--quick", "--out", str(tmp_path / "out")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (cache / "exports").exists():
        time.sleep(0.2)
    assert (cache / "exports").exists(), "no conversion started"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20, "waited for the queued conversions"
    assert proc.returncode != 0
    assert "Traceback" not in err
    leftovers = [p for p in (cache / "exports").rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
    assert leftovers == []
    assert not (tmp_path / "out" / "results.json").exists()
