"""edge bench on this host: the timing loop, each host engine (onnxruntime, ai-edge-litert, torch),
the export cache, per-op grouping, the record contract, the CLI and its error paths."""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from shufflenet_edge.bench import bench, parse_threads, save_records
from shufflenet_edge.bench.cache import ExportCache
from shufflenet_edge.errors import UsageError
from shufflenet_edge.record import validate
from shufflenet_edge.runtime import opgroups, timing

from conftest import run_tmp

RECORD_KEYS = {"model", "format", "precision", "engine", "threads", "device", "latency_ms", "runs", "peak_rss_mb",
               "size_bytes", "macs", "gmacs_per_s", "cpu_peak_gmacs", "rounds", "warmup", "batch", "input_size"}
LATENCY_KEYS = {"min", "mean", "p50", "p90", "p99", "std", "cv"}
SMALL = dict(model="v2_0.5x", input_size=64)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDGE_CACHE_DIR", str(run_tmp(tmp_path_factory) / "edge-cache"))


def _check_record(r, engine, fmt, threads):
    assert RECORD_KEYS <= set(r), RECORD_KEYS - set(r)
    assert LATENCY_KEYS <= set(r["latency_ms"])
    lat = r["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
    assert lat["min"] <= lat["mean"]
    assert r["engine"] == engine and r["format"] == fmt and r["threads"] == threads
    assert r["device"]["target"] == "host" and r["device"]["emulated"] is False
    assert r["device"]["machine"] and r["device"]["cpu"] and r["device"]["cores"] >= 1
    assert isinstance(r["macs"], int) and r["macs"] > 1_000_000
    assert r["gmacs_per_s"] == pytest.approx(r["macs"] / (lat["p50"] / 1e3) / 1e9, rel=1e-2)
    assert r["cpu_peak_gmacs"] > 0.5 and 0 < r["fraction_of_peak"]
    assert r["peak_rss_mb"] > 10
    assert validate([r]) == []  # the shipped JSON Schema (record.schema.json)


# ------------------------------------------------------------------ the timing loop, no runtime


def test_stats_and_rounds():
    s = timing.stats_ms([0.001, 0.002, 0.003, 0.004])
    assert s["min"] == pytest.approx(1.0) and s["mean"] == pytest.approx(2.5) and s["p50"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1)) and s["cv"] == pytest.approx(s["std"] / 2.5)
    assert timing.split_runs(10, 3) == [4, 3, 3] and timing.split_runs(2, 5) == [1, 1]


def test_time_cases_interleaves_and_measures_real_time():
    order = []

    def case(tag, seconds):
        def invoke(_):
            order.append(tag)
            time.sleep(seconds)
        return invoke, None

    res = timing.time_cases([case("a", 0.002), case("b", 0.004)], runs=6, warmup=1, rounds=3)
    assert order[:2] == ["a", "b"]  # warm-up
    rounds = [order[2 + 4 * i:6 + 4 * i] for i in range(3)]  # rounds take turns, each case's runs together
    assert len(order) == 14 and all(r in (["a", "a", "b", "b"], ["b", "b", "a", "a"]) for r in rounds), order
    a, b = res
    assert a["runs"] == 6 and a["rounds"]["n"] == 3 and len(a["rounds"]["p50_ms"]) == 3
    assert 2.0 <= a["latency_ms"]["min"] and 4.0 <= b["latency_ms"]["min"]
    assert b["latency_ms"]["p50"] > a["latency_ms"]["p50"]


def test_time_cases_shuffles_the_turn_order_every_round():
    """In a fixed order each case would always follow the same neighbour (its cache footprint, the
    VM's periodic speed steps): the order is drawn anew each round, seeded, so reruns repeat it."""
    def run():
        order = []
        cases = [((lambda _, t=t: order.append(t)), None) for t in "abc"]
        timing.time_cases(cases, runs=20, warmup=0, rounds=20)
        return ["".join(order[3 * i:3 * i + 3]) for i in range(20)]

    first = run()
    assert all(sorted(r) == ["a", "b", "c"] for r in first) and len(set(first)) > 1
    assert run() == first


def test_isa_features_from_cpuinfo():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
    phone = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimdhp asimddp i8mm\nCPU part\t: 0xd44\n"
    assert timing.isa_features(x86) == ["avx2", "fma"] and not timing.int8_dot_product(timing.isa_features(x86))
    assert timing.isa_features(phone) == ["asimd", "asimddp", "i8mm", "asimdhp"]
    assert timing.int8_dot_product(timing.isa_features(phone))
    assert "isa" in timing.machine_info()


def test_parse_threads():
    assert parse_threads("1,2,4") == [1, 2, 4] and parse_threads((2,)) == [2] and parse_threads(1) == [1]
    for bad in ("0", "a", "", "1,-2"):
        with pytest.raises(UsageError, match="--threads"):
            parse_threads(bad)


def test_conv_classification():
    assert opgroups.classify_conv([240, 80, 1, 1]) == "pointwise conv"  # grouped 1x1
    assert opgroups.classify_conv([60, 1, 3, 3]) == "depthwise conv"
    assert opgroups.classify_conv([24, 3, 3, 3]) == "other conv"
    assert opgroups.group_of("Transpose") == "channel shuffle" and opgroups.group_of("Concat") == "split/concat"
    assert opgroups.group_of("SomethingNew") == "other"


def test_cache_key_covers_every_setting(tmp_path):
    from shufflenet_edge.checkpoint import save_checkpoint
    from shufflenet_edge.models import create_model

    cache = ExportCache(tmp_path / "c")
    base = dict(model="v1_g3", format="onnx", precision="fp32", input_size=[224, 224])
    k = cache.key(base)
    assert k == cache.key(base) == cache.key({**base, "input_size": None, "batch": 1})  # defaults spelled out
    for change in (dict(precision="int8"), dict(input_size=[160, 160]), dict(layout="nhwc"), dict(batch="dynamic"),
                   dict(num_classes=10), dict(calib="digits"), dict(format="tflite"), dict(model="v1_g8"),
                   dict(calib_size=16)):
        assert cache.key({**base, **change}) != k, change
    ckpts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = create_model("v2_0.5x", num_classes=10, input_size=32)
        ckpts.append(save_checkpoint(tmp_path / f"{seed}.pt", m.edge_meta, m.state_dict()))
    assert len({cache.key(dict(model=None, format="onnx", checkpoint=str(c))) for c in ckpts}) == 2
    with pytest.raises(TypeError, match="not export settings: out"):
        cache.key({**base, "out": "x"})


def _tiny(width: int):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(width, 10))
    net.edge_meta = {"name": "tiny", "input_size": [16, 16], "num_classes": 10}
    return net


def test_cache_never_serves_a_file_of_another_structure(tmp_path):
    """One layer's width changes (the same name, size and settings): the cache must convert again."""
    import onnx

    cache = ExportCache(tmp_path / "c")
    first = cache.get_or_build(dict(model=_tiny(8), format="onnx"))
    assert cache.has(dict(model=_tiny(8), format="onnx")) and not cache.has(dict(model=_tiny(12), format="onnx"))
    second = cache.get_or_build(dict(model=_tiny(12), format="onnx"))
    assert second.path != first.path and first.path.is_file()
    widths = [[t.dims[0] for t in onnx.load(str(a.path)).graph.initializer if len(t.dims) == 4][0]
              for a in (first, second)]  # the conv's output channels, as each file holds them
    assert sorted(widths) == [8, 12]
    assert cache.get_or_build(dict(model=_tiny(8), format="onnx")) == first  # served, not rebuilt
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.endswith(".tmp")]


def test_save_records_appends_and_never_clobbers(tmp_path):
    out = tmp_path / "r.json"
    save_records(out, [{"a": 1}])
    save_records(out, [{"b": 2}])
    assert json.loads(out.read_text()) == [{"a": 1}, {"b": 2}]
    bad = tmp_path / "notes.json"
    bad.write_text("my notes, not JSON")
    with pytest.raises(UsageError, match="not overwriting"):
        save_records(bad, [{"c": 3}])
    assert bad.read_text() == "my notes, not JSON"


# ------------------------------------------------------------------ real engines on real files


def test_onnxruntime_threads_profile_and_cache():
    recs = bench(**SMALL, format="onnx", threads="1,2", runs=12, warmup=2, rounds=3, profile=True)
    assert [r["threads"] for r in recs] == [1, 2]
    for r in recs:
        _check_record(r, "onnxruntime", "onnx", r["threads"])
        assert r["rounds"]["n"] == 3 and r["runs"] == 12
        prof = r["profile"]
        assert prof["source"] == "onnxruntime profiler" and prof["total_ms"] > 0
        assert sum(g["share"] for g in prof["groups"].values()) == pytest.approx(1.0, abs=0.01)
        # ShuffleNet v2 is 1x1 and depthwise convs plus split/concat and shuffles (at 64 px ORT's
        # NCHWc layout reorders take a large share too, so no ranking is asserted here)
        assert {"pointwise conv", "depthwise conv", "split/concat", "channel shuffle"} <= set(prof["groups"])
        assert all(prof["groups"][g]["ms"] > 0 for g in ("pointwise conv", "depthwise conv"))
    artifact = recs[0]["artifact"]
    mtime = os.path.getmtime(artifact)
    again = bench(**SMALL, format="onnx", runs=3, warmup=0)
    assert again[0]["artifact"] == artifact and os.path.getmtime(artifact) == mtime  # served from the cache


def test_artifact_and_torch_engine(tmp_path):
    from shufflenet_edge.export import export

    path = export(**SMALL, format="onnx", out=tmp_path, quiet=True).path
    rec = bench(artifact=path, runs=5, warmup=1, cpus="0")[0]
    _check_record(rec, "onnxruntime", "onnx", 1)
    assert rec["artifact"] == str(path) and rec["size_bytes"] == path.stat().st_size and rec["model"] == "v2_0.5x"
    t = bench(**SMALL, format="torch", runs=5, warmup=1, profile=True)[0]
    _check_record(t, "torch", "torch", 1)
    assert t["profile"]["source"] == "torch.profiler" and "depthwise conv" in t["profile"]["groups"]
    assert t["macs"] == rec["macs"]


@pytest.mark.slow
def test_litert_engine_and_report_table():
    from shufflenet_edge.bench.report import markdown, row

    recs = bench(**SMALL, format="tflite", threads=(1, 2), runs=10, warmup=2)
    for r in recs:
        _check_record(r, "litert", "tflite", r["threads"])
    md = markdown(recs, "t", "edge bench ...")
    assert "AMD" in md or recs[0]["device"]["cpu"] in md
    # a record from a tool that gives no percentiles (adb's benchmark_model) still renders
    r = dict(recs[0], latency_ms={**recs[0]["latency_ms"], "p50": None, "p90": None, "p99": None})
    assert row(r)[5] == "-"


# ------------------------------------------------------------------ CLI and error paths


def test_cli_json_and_out(edge_cli, tmp_path):
    """A real process: stdout must be the JSON alone, converter output included (file descriptor 1)."""
    out = tmp_path / "res.json"
    env = {"EDGE_CACHE_DIR": os.environ["EDGE_CACHE_DIR"]}
    p = edge_cli("bench", "--model", "v2_0.5x", "--input-size", "64", "--runs", "5", "--warmup", "1", "--json",
                 "--json-out", out, env=env)
    assert p.returncode == 0, p.stderr
    assert "deprecated" not in p.stderr
    recs = json.loads(p.stdout)
    assert isinstance(recs, list) and len(recs) == 1
    _check_record(recs[0], "onnxruntime", "onnx", 1)
    assert json.loads(out.read_text()) == recs
    p = edge_cli("bench", "--artifact", recs[0]["artifact"], "--runs", "3", "--warmup", "0", "--out", out, env=env)
    assert p.returncode == 0 and "onnxruntime" in p.stdout and "p50 ms" in p.stdout
    assert p.stderr.strip() == "note: --out FILE is deprecated for edge bench (--out names a folder elsewhere): " \
                               "use --json-out FILE"  # the old spelling still appends, with one line
    assert len(json.loads(out.read_text())) == 2
    side = Path(recs[0]["artifact"] + ".json")
    assert recs[0]["verified"] is True and json.loads(side.read_text())["parity"]["passed"] is True
    import onnx

    alone = tmp_path / "alone.onnx"  # the file without its sidecar still carries its metadata: still verified
    alone.write_bytes(Path(recs[0]["artifact"]).read_bytes())
    p = edge_cli("bench", "--artifact", alone, "--runs", "3", "--warmup", "0", "--json", env=env)
    assert p.returncode == 0 and json.loads(p.stdout)[0]["verified"] is True
    bare = tmp_path / "bare.onnx"  # ... until its embedded parity result is gone too: bench says it is not verified
    proto = onnx.load(str(alone))
    kept = [(e.key, e.value) for e in proto.metadata_props if e.key != "parity"]
    del proto.metadata_props[:]
    for key, value in kept:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(bare))
    p = edge_cli("bench", "--artifact", bare, "--runs", "3", "--warmup", "0", "--json", env=env)
    assert p.returncode == 0 and json.loads(p.stdout)[0]["verified"] is False
    assert p.stderr.strip().startswith("note: bare.onnx is not verified")


@pytest.mark.parametrize("args, code, match", [
    (["--model", "v1_g5"], 2, "unknown model 'v1_g5'"),
    (["--artifact", "missing.onnx"], 2, "artifact not found"),
    (["--model", "v1_g3", "--threads", "0"], 2, "bad --threads"),
    (["--model", "v1_g3", "--target", "qemu"], 2, "needs --device arm"),
    (["--model", "v1_g3", "--device", "arm", "--target", "bogus"], 2, "unknown target 'bogus'"),
    (["--model", "v1_g3", "--device", "arm", "--target", "local"], 2, "aarch64"),
    (["--model", "v1_g3", "--cpus", "x-y"], 2, "bad --cpus"),
    ([], 2, "give either --model"),
])
def test_cli_errors_are_one_line(cli, args, code, match):
    p = cli("bench", *args)
    assert p.returncode == code, p.stderr
    assert match in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_corrupt_artifact_is_one_line(cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    out = tmp_path / "keep.json"
    out.write_text("[]\n")
    p = cli("bench", "--artifact", bad, "--json-out", out)
    assert p.returncode == 2 and "cannot load" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert json.loads(out.read_text()) == []
