"""bench/peers.py smoke test: one small model, two peer paths, the toolkit's ONNX files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_peers_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "--models", "v1_g3", "--size", "32",
                        "--runs", "3", "--peers", "ort,openvino", "--formats", "onnx", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=1200,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
                            "EDGE_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((tmp_path / "peers.json").read_text())
    rows = doc["results"][0]["rows"]
    paths = {row["path"] for row in rows}
    assert "peer: legacy torch.onnx -> onnxruntime" in paths and "peer: legacy torch.onnx -> openvino (defaults)" in paths
    assert any(p.startswith("shufflenet-edge: onnx fp32 on onnxruntime") for p in paths)
    assert doc["cpu_flags"] is not None and "fp32" in doc["results"][0]["summary"]
    assert list((tmp_path).glob("intel")) == []  # OpenVINO wrote nothing under HOME
    assert "## v1_g3" in (tmp_path / "peers.md").read_text()
    # verdicts pair the files round by round; --resummarize recomputes them from the JSON alone
    s = doc["results"][0]["summary"]["fp32"]
    assert set(s["paired"]) == set(s["at_least_as_fast"]) and all(v["rounds"] >= 1 for v in s["paired"].values())
    again = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "--resummarize", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                                                               "PYTHONPATH": str(ROOT)})
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "peers.json").read_text())["results"][0]["summary"] == doc["results"][0]["summary"]
