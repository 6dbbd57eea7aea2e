"""`edge predict` on the qemu target (instructions per inference): the count bookkeeping, the
counting guest's protocol, the instruction-unit laws, table and acceptance (fast); a real short
fit + predict and a validation count under qemu (slow)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import EDGE

from shufflenet_edge.bench.targets import TargetError
from shufflenet_edge.bench.targets import qemu as qemu_target
from shufflenet_edge.predict import profile as P

HAVE_QEMU = shutil.which("qemu-aarch64") is not None and shutil.which("gcc") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="needs Debian's qemu-user and gcc (scripts/setup.sh --system)")


# ---------------------------------------------------------------- bookkeeping of one counted file

def _marks(empty: list[int], spans: list[int], start: int = 1000) -> list[int]:
    """The running counts the plugin writes for empty marker pairs, then one pair per inference."""
    out, at = [], start
    for n in empty + spans:
        out += [at, at + n]
        at += n + 37  # work between pairs (the loop, the next call) is never counted
    return out


def test_inference_counts_subtracts_the_empty_pair_and_takes_the_median():
    got = qemu_target.inference_counts(_marks([40, 40, 41, 40, 40], [1_000_040, 1_000_041, 1_400_040]), 5, 3)
    assert got["raw"] == 1_000_001  # the inference with extra work is out-voted
    st = got["stability"]
    assert st["verdict"] == "stable" and st["empty_pair"] == 40 and st["spans"] == [1_000_000, 1_000_001, 1_400_000]


def test_inference_counts_that_disagree_are_noisy_and_wrong_mark_counts_fail():
    got = qemu_target.inference_counts(_marks([40] * 5, [1_000_040, 1_100_040, 1_300_040]), 5, 3)
    assert got["raw"] == 1_100_000 and got["stability"]["verdict"] == "noisy"
    assert "no two of 3 inferences agree" in got["stability"]["reasons"][0]
    two = qemu_target.inference_counts(_marks([40] * 5, [20_040, 20_900]), 5, 2)  # a few hundred apart: one count
    assert two["raw"] == 20_000 and two["stability"]["verdict"] == "stable"
    with pytest.raises(TargetError, match="expected 16 instruction-count marks, got 15"):
        qemu_target.inference_counts(_marks([40] * 5, [10, 10, 10])[:-1], 5, 3)


# ---------------------------------------------------------------- the counting guest's protocol (host python)

def test_counting_guest_answers_each_file_and_survives_a_bad_one(tmp_path):
    """The guest script runs on this host's python too (without the plugin its markers are plain
    failing syscalls): one JSON line per request, an error line for a corrupt file, then on."""
    from shufflenet_edge.bench.targets.base import RUNTIME_DIR
    from shufflenet_edge.predict import micro
    from shufflenet_edge.predict.micro import export_onnx

    good = export_onnx(*micro.build([{"kind": "add", "cin": 4, "cout": 4, "h": 3, "w": 3}]), tmp_path / "add.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    reqs = [{"path": str(good), "inferences": 2, "seed": 1}, {"path": str(bad)},
            {"path": str(good), "plain": True, "inferences": 1}]
    got = subprocess.run([sys.executable, str(qemu_target.SERVER_SCRIPT), str(RUNTIME_DIR)], text=True,
                         input="".join(json.dumps(r) + "\n" for r in reqs), capture_output=True, timeout=120)
    assert got.returncode == 0, got.stderr
    hello, first, err, plain = (json.loads(line) for line in got.stdout.splitlines())
    assert hello["ready"] and hello["versions"]["onnxruntime"]
    assert first["empty_pairs"] == plain["empty_pairs"] == 5 and first["seconds"]["inference"] > 0
    assert err["error"].startswith("onnxruntime cannot load") and "\n" not in err["error"]


# ---------------------------------------------------------------- instruction units

def _instr_profile() -> dict:
    from test_predict import synthetic_profile

    prof = synthetic_profile()
    for entry in prof["kernels"].values():  # the same law in instructions (x 1e7)
        for pt in entry["points"]:
            pt["cost"], pt["raw"] = pt["cost"] * 1e7, pt["raw"] * 1e7
    law = {"instructions_per_gmac": 2e7, "instructions_per_mb": 5e6, "instructions_fixed": 1e5, "n": 3,
           "unit": "instructions"}
    return {**prof, "device": "arm", "target": "qemu", "cost_unit": "instructions", "overhead": {"cost": 1e5},
            "proxies": {"fitted_on": "test", "flops": {"a": 0.1, "k": 1.0, "n": 2}, "macs_memory": law}}


def test_instruction_profile_predicts_instructions_in_table_and_json(cli, tmp_path, monkeypatch):
    from test_predict import synthetic_profile

    from shufflenet_edge.predict import predict

    prof = _instr_profile()
    r = predict("v2_1.0x", 224, prof)
    ms = predict("v2_1.0x", 224, synthetic_profile())
    assert r["unit"] == "instructions" and r["predicted"] == pytest.approx(1e7 * ms["predicted"], rel=2e-3)
    assert r["proxies"]["macs_memory"] == pytest.approx(2e7 * r["macs"] / 1e9 + 5e6 * r["memory_access_bytes"] / 1e6
                                                         + 1e5)
    path = P.save(prof, tmp_path)
    assert path.name == "arm_onnxruntime_fp32_t1.json"
    monkeypatch.setenv("COLUMNS", "200")  # whole numbers, not the compact 1.23M of a narrow terminal
    out = cli("predict", "--model", "v1_g8_1.5x", "--device-profile", path)
    assert out.returncode == 0, out.stderr
    assert all(w in out.stdout for w in ("aarch64", "instructions", "per inference", "kernel predictor"))
    total = f"{int(predict('v1_g8_1.5x', 224, prof)['predicted']):,}"
    assert total in out.stdout  # whole instruction counts with thousands separators, not milliseconds
    d = json.loads(cli("predict", "--model", "v1_g8_1.5x", "--device-profile", path, "--json").stdout)
    assert d["unit"] == "instructions" and d["target"] == "qemu" and d["predicted"] > 1e6


def test_kernel_laws_name_their_unit():
    from shufflenet_edge.predict.fit import KernelModel

    specs = [{"kind": "relu", "cin": c, "cout": c, "h": 8, "w": 8} for c in (4, 8, 16, 32)]
    law = KernelModel(specs, [100.0 + 2 * 64 * c for c in (4, 8, 16, 32)], unit="instructions").law()
    assert set(law) == {"instructions_per_mmac", "instructions_per_m_in", "instructions_per_m_out",
                        "instructions_per_m_weight", "instructions_fixed", "points", "trees"}
    host = KernelModel(specs, [1e-3 * c for c in (4, 8, 16, 32)]).law()
    assert {"ms_per_mmac", "ms_per_melement", "ms_fixed"} <= set(host)


def _dw_count(spec):
    """Counts like MLAS's on the qemu target: a direct 3x3 stride-1 depthwise kernel (per channel a
    fixed cost, a border cost per output row and column, ~10 per output) and a stride-2 one run as
    im2col and a GEMM per channel (~70 per output)."""
    from shufflenet_edge.predict.kernels import spec_counts

    c = spec_counts(spec)
    oh, ow = c["oh"], c["ow"]
    if spec["stride"] == 1:
        return spec["cin"] * (320 + 170 * oh + 40 * ow + 10 * oh * ow) + 4000.0
    return spec["cin"] * (2500 + 600 * oh + 70 * oh * ow) + 4000.0


def test_depthwise_law_has_one_regime_per_stride_and_border_terms(monkeypatch):
    """Fitted on 14x14 and larger maps of both strides, the law must carry to the zoo's 7x7 maps;
    one pooled law (the committed fit's) cannot: it over-predicted those by 20-150%."""
    from shufflenet_edge.predict import fit

    dw = {"kind": "dwconv", "k": 3, "pad": 1}
    specs = [{**dw, "cin": c, "cout": c, "groups": c, "h": h, "w": w, "stride": st}
             for st in (1, 2) for c in (16, 40, 96, 240) for h, w in ((14, 14), (20, 27), (28, 28), (45, 60), (56, 56))]
    small = [{**dw, "cin": c, "cout": c, "groups": c, "h": h, "w": h, "stride": st}
             for st, h in ((1, 7), (2, 14), (1, 10)) for c in (72, 960)]
    truth = np.asarray([_dw_count(s) for s in small])
    model = fit.KernelModel(specs, [_dw_count(s) for s in specs], unit="instructions")
    assert np.max(np.abs(model.predict(small) / truth - 1)) < 0.02
    law = model.law()
    assert set(law["regimes"]) == {"k3_s1", "k3_s2"} and "instructions_per_m_row" in law["regimes"]["k3_s1"]
    monkeypatch.setattr(fit, "MIN_REGIME", 10_000)  # no regime gets a law of its own
    pooled = fit.KernelModel(specs, [_dw_count(s) for s in specs], unit="instructions", kind="conv")
    assert np.max(np.abs(pooled.predict(small) / truth - 1)) > 0.1


def test_counts_are_fitted_for_the_least_relative_error(monkeypatch):
    """A per-node cost plus 1.5 instructions an element, and a cost growing faster than the map on
    the large ones: absolute least squares follows the large points and drops the fixed cost, missing
    the small ones by over half; counts are fitted by relative error and keep the small ones close."""
    from shufflenet_edge.predict import fit

    specs = [{"kind": "relu", "cin": c, "cout": c, "h": h, "w": h} for c in (4, 16, 48) for h in (8, 16)]
    specs += [{"kind": "relu", "cin": c, "cout": c, "h": h, "w": h} for c in (256, 512, 1024) for h in (64, 100)]
    elems = np.asarray([s["cin"] * s["h"] * s["w"] for s in specs], dtype=np.float64)
    truth = 4000.0 + 1.5 * elems + 1e-7 * elems ** 2

    def small_error() -> float:
        model = fit.KernelModel(specs, list(truth), trees=False, unit="instructions")
        return float(np.max(np.abs(model.predict(specs)[:6] / truth[:6] - 1)))

    assert small_error() < 0.15
    monkeypatch.setitem(fit.RELATIVE_LSQ, "instructions", False)
    assert small_error() > 0.5


def test_arm_fit_covers_every_stratum_of_seed_shapes():
    """Before its adaptive rounds the arm plan draws twice from every (map, kernel, stride) of the
    seed ops, so the zoo's 7x7 depthwise maps of both strides are sampled whatever the luck."""
    from shufflenet_edge.predict import fit, sampling

    plan = sampling.PLANS["arm"]
    seeds = sampling.seeds_by_kind(sampling.seed_ops(("v1_g1_0.5x", "mobilenet_v2"), (224, 224)))
    strata = sampling.strata(seeds["dwconv"])
    want = fit.N_INIT + plan.cover * len(strata)
    calls = []

    def measure(specs):
        calls.append(specs)
        return {"cost": _dw_count(specs[0]), "raw": _dw_count(specs[0]), "stability": {"verdict": "stable"}}

    points = fit.sample(measure, seeds, ["dwconv"], 1.0, sampling.rng_for(0), plan=plan, unit="instructions",
                        clock=lambda: 0.0 if len(calls) < want else 2.0)["dwconv"]
    cover = [p["spec"] for p in points if p["phase"] == "cover"]
    assert len(cover) == plan.cover * len(strata) and len(strata) >= 8
    assert any(s["stride"] == 1 and s["h"] <= 9 for s in cover)  # around the 7x7 maps
    assert any(s["stride"] == 2 and s["h"] <= 19 for s in cover)  # 14x14 in, 7x7 out
    assert [len(g) for g in strata] and all(g[0]["h"] <= h[0]["h"] for g, h in zip(strata, strata[1:]))


def test_arm_draws_stay_near_the_zoo_and_within_the_mac_cap():
    from shufflenet_edge.predict import sampling
    from shufflenet_edge.predict.kernels import spec_counts

    plan = sampling.PLANS["arm"]
    big = {"kind": "conv", "cin": 64, "cout": 192, "h": 58, "w": 78, "k": 5, "stride": 1, "pad": 2, "groups": 1}
    small = sampling.within(big, plan.max_macs)  # AlexNet's 5x5 conv at 480x640: 1.4G MACs
    assert spec_counts(small)["macs"] <= plan.max_macs and small["h"] < big["h"] and small["w"] / small["h"] > 1.2
    relu = {"kind": "relu", "cin": 4096, "cout": 4096, "h": 500, "w": 500}
    assert sampling.within(relu, plan.max_macs) == relu  # only convs are capped (the rest has no MACs)
    seeds = sampling.seeds_by_kind(sampling.seed_ops(("v2_0.5x",), (480, 640)))
    rng = sampling.rng_for(0)
    for _ in range(50):
        s = sampling.draw("conv1x1", seeds, rng, plan)
        assert spec_counts(s)["macs"] <= plan.max_macs and s["h"] <= 1.4 * 120 + 1  # stage 2 in: 120x160


def test_acceptance_is_the_devices_own_bar():
    from shufflenet_edge.predict.validate import acceptance_of

    summary = {"predicted": {"within_5": 0.97, "within_10": 1.0, "rmspe": 0.02},
               "flops": {"within_5": 0.2, "within_10": 0.4, "rmspe": 0.3}}
    arm = acceptance_of({"cost_unit": "instructions"}, summary)
    assert arm["within_5_goal"] == 0.95 and arm["met"] and "+-5%" in arm["goal"]
    assert not acceptance_of({"cost_unit": "instructions"}, {**summary, "predicted": {**summary["predicted"],
                                                                                   "within_5": 0.9}})["met"]
    host = acceptance_of({"cost_unit": "ms"}, summary)
    assert host["within_10_goal"] == 0.9 and host["rmspe_factor"] == pytest.approx(15.0) and host["met"]


@pytest.mark.parametrize("args, words", [
    (("--target", "ssh://pi@board"), "only --target qemu"),
    (("--threads", "2"), "1 thread only"),
    (("--precision", "int8"), "--format onnx --precision fp32"),
])
def test_arm_fit_refuses_what_it_cannot_count(cli, tmp_path, args, words):
    r = cli("predict", "fit", "--device", "arm", *args, "--out", tmp_path)
    assert r.returncode == 2 and words in r.stderr and r.stderr.strip().count("\n") == 0
    assert not list(tmp_path.iterdir())


def test_validate_refuses_a_profile_it_cannot_measure(tmp_path):
    from shufflenet_edge.errors import UsageError
    from shufflenet_edge.predict import validate

    prof = {**_instr_profile(), "target": "ssh"}
    with pytest.raises(UsageError, match="counts under qemu"):
        validate(prof, ("v2_0.5x",), ((64, 64),), out=tmp_path)


# ---------------------------------------------------------------- slow: real counts under qemu

@pytest.fixture(scope="module")
def arm_profile(tmp_path_factory):
    """One short fit under qemu (two kernel kinds), shared by the slow tests below."""
    out = tmp_path_factory.mktemp("arm-profile")
    got = subprocess.run([EDGE, "predict", "fit", "--device", "arm", "--budget-min", "0.75",
                          "--kernels", "conv1x1,dwconv", "--out", str(out)], capture_output=True, text=True, timeout=240)
    assert got.returncode == 0, got.stderr
    return out / "arm_onnxruntime_fp32_t1.json"


@pytest.mark.slow
@needs_qemu
def test_arm_fit_then_predict_smoke(arm_profile, cli):
    prof = P.load(arm_profile)
    assert prof["cost_unit"] == "instructions" and prof["target"] == "qemu" and prof["device"] == "arm"
    assert prof["machine"]["qemu_cpu"] == "cortex-a76" and prof["machine"]["qemu"] and prof["machine"]["host"]["cpu"]
    assert prof["engine"]["version"] == prof["engine"]["guest"]["onnxruntime"]
    assert prof["elapsed_s"] <= 0.75 * 60 + 5
    pts = [p for k in prof["kernels"].values() for p in k["points"]]
    # how many points 45 s buys depends on the load (3 when the other test worker ran beside it)
    assert len(pts) >= 2 and {p["spec"]["kind"] for p in pts} <= {"conv1x1", "dwconv"}
    # each inference's count is kept; they repeat, but for an occasional inference with ~0.4M
    # instructions of extra (time-driven) work, which the lower of the two leaves out
    for p in pts:
        spans, st = p["stability"]["spans"], p["stability"]
        assert len(spans) == 2 and p["raw"] == min(spans) and (max(spans) - min(spans)) < 0.05 * min(spans) + 1e6
        assert st["verdict"] == ("stable" if max(spans) - min(spans) <= max(1e-3 * min(spans), 1000) else "noisy")
    over = prof["overhead"]
    assert over["cost"] > 0 and over["per_node"] > 0 and over["micro_cost"] > 0
    for p in pts:  # a conv costs instructions in proportion to its MACs, within a generous band
        from shufflenet_edge.predict.kernels import spec_counts

        macs = spec_counts(p["spec"])["macs"]
        assert macs / 16 < p["cost"] < 20 * macs + 1e6, p
    r = cli("predict", "--model", "v2_0.5x", "--device-profile", arm_profile, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["unit"] == "instructions" and d["predicted"] > d["fixed_cost"] > 0


@pytest.mark.slow
@needs_qemu
def test_arm_validate_counts_through_the_qemu_target(arm_profile, tmp_path, monkeypatch):
    """One model at 64 px: exported through the bench cache, counted under qemu once, then read
    from the count cache; the report is in instructions with the qemu bar."""
    import importlib

    V = importlib.import_module("shufflenet_edge.predict.validate")  # the module (the package exports the function)

    monkeypatch.setattr(V, "counts_dir", lambda: tmp_path / "counts")
    res = V.validate(str(arm_profile), ("v2_0.5x",), ((64, 64),), out=tmp_path / "val", progress=False)
    (row,) = res["rows"]
    # the verdict is not asserted: an inference now and then does extra, time-driven work (6 of the fit's
    # 490 points), and on a loaded CI machine one of the two counted inferences did (seen here, 2026-12-02)
    assert res["unit"] == "instructions" and row["stability"] in ("stable", "noisy") and row["measured"] > 1e6
    assert row["stability_detail"]["verdict"] == row["stability"] and res["command"] == "edge predict validate"
    assert "isa" in res and res["noisy"] == (row["stability"] == "noisy")
    assert res["acceptance"]["within_5_goal"] == 0.95 and (tmp_path / "val" / res["plot"]).is_file()
    assert (tmp_path / "val" / "validate_arm_onnxruntime_fp32_t1.json").is_file()
    (cached,) = (tmp_path / "counts").iterdir()
    again = V.validate(str(arm_profile), ("v2_0.5x",), ((64, 64),), out=tmp_path / "val2", progress=False)
    assert again["rows"][0]["measured"] == row["measured"] and list((tmp_path / "counts").iterdir()) == [cached]
