"""`edge predict`: decomposition into kernels, fusion-rule detection, the profile file, the
prediction arithmetic and CLI errors (fast); a real fit + predict on this host (slow)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from shufflenet_edge.predict import fusion, profile as P, sampling
from shufflenet_edge.predict.kernels import KERNEL_KINDS, model_ops, spec_counts


# ---------------------------------------------------------------- decomposition

@pytest.mark.parametrize("name", ["v1_g3", "v1_g8_0.5x", "v2_1.0x", "v2_0.5x"])
def test_decomposition_matches_edge_info_layers(name):
    from shufflenet_edge.complexity import complexity

    for size in ((224, 224), (480, 640)):
        c = complexity(name, size)
        ops = model_ops(name, size)
        assert [o.layer for o in ops if o.layer] == [layer.name for layer in c.layers]
        assert sum(o.macs for o in ops) == c.macs
        assert all(o.kind in KERNEL_KINDS for o in ops)
        # the layer's own counts, and shapes that chain: each op reads what its producer wrote
        for o in ops:
            for src in o.inputs:
                if src >= 0 and o.kind not in ("add", "concat") and ops[src].kind != "split":
                    assert ops[src].cout * ops[src].oh * ops[src].ow == o.cin * o.h * o.w, (o.name, ops[src].name)
    implicit = [o for o in model_ops(name) if o.layer is None]
    if name.startswith("v2"):  # every stride-1 unit splits its input: 3 + 7 + 3
        assert [o.kind for o in implicit] == ["split"] * 13
    else:
        assert implicit == []


def test_functional_ops_outside_layers_are_kernels_too():
    """torchvision's MobileNet v2 adds residuals and pools with functions edge info cannot see."""
    ops = model_ops("mobilenet_v2", 224)
    implicit = [o.kind for o in ops if o.layer is None]
    assert implicit.count("add") == 10 and implicit.count("gap") == 1
    fc = [o for o in ops if o.kind == "fc"][0]
    assert ops[fc.inputs[0]].kind == "gap" and fc.cin == 1280


def test_a_clamped_activation_is_a_kernel_of_its_own(tmp_path):
    """MobileNet v2's ReLU6 is not a ReLU to an engine (ONNX Runtime runs a Clip fused into a conv as a
    pass over its output): from the model, from its ONNX file (Clip) and as a micro-model, it is kind
    ``relu6``; a profile fitted before the kind existed costs it as a ReLU, as it was validated."""
    import onnx

    from shufflenet_edge.predict import micro, predict
    from shufflenet_edge.predict.onnx_graph import onnx_ops

    ops = model_ops("mobilenet_v2", 224)
    assert "relu6" in KERNEL_KINDS and "relu" not in {o.kind for o in ops}
    assert [o.kind for o in ops].count("relu6") == 35  # every conv but the projections
    assert all(o.kind == "relu" for o in model_ops("v2_0.5x", 224) if "relu" in o.kind)
    spec = _spec("relu6", 32, 14)
    path = micro.export_onnx(*micro.build([spec]), tmp_path / "clip.onnx")
    assert [n.op_type for n in onnx.load(str(path)).graph.node if n.op_type != "Constant"] == ["Clip"]
    assert [o.kind for o in onnx_ops(str(path), None)[0]] == ["relu6"]
    prof = synthetic_profile()
    assert "relu6" in prof["kernels"]
    legacy = {**prof, "kernels": {k: v for k, v in prof["kernels"].items() if k != "relu6"}}
    as_relu = predict("mobilenet_v2", 224, legacy)
    assert "relu6" not in as_relu["by_kind"] and not any("relu6" in n for n in as_relu["notes"])
    assert as_relu["by_kind"]["relu"]["count"] == 35
    assert "relu6" in predict("mobilenet_v2", 224, prof)["by_kind"]


def test_spec_counts_agree_with_the_layer_counts():
    for op in model_ops("v1_g3", 224):
        got = spec_counts(op.spec())
        assert (got["macs"], got["oh"], got["ow"]) == (op.macs, op.oh, op.ow), op.name
        if op.kind in ("conv1x1", "gconv1x1", "dwconv", "conv", "fc"):
            assert got["weights"] == op.weights, op.name


# ---------------------------------------------------------------- fusion rules

def _spec(kind, c=64, hw=28, **kw):
    return {"kind": kind, "cin": c, "cout": c, "h": hw, "w": hw, **kw}


def test_fusion_detection_on_a_synthetic_engine():
    """A fake engine: ReLU after a 1x1 conv is free (fused), a shuffle after a ReLU costs extra
    nothing and saves nothing; pairs that save reveal themselves only through their timings."""
    own = {"conv1x1": 1.0, "relu": 0.2, "shuffle": 0.3, "add": 0.25}
    calls = []

    def measure(specs):
        calls.append([s["kind"] for s in specs])
        kinds = [s["kind"] for s in specs]
        cost = sum(own[k] for k in kinds)
        if kinds == ["conv1x1", "relu"]:
            cost -= own["relu"]  # fused: the relu runs inside the conv's kernel
        if kinds == ["conv1x1", "add"]:
            cost -= 0.6 * own["add"]  # partly shared (a reorder fewer)
        return {"cost": cost, "stability": {"verdict": "stable"}}

    pairs = [(_spec("conv1x1"), _spec("relu"), 5), (_spec("relu"), _spec("shuffle", groups=2), 3),
             (_spec("conv1x1"), _spec("add"), 2)]
    rules = {(r["first"], r["second"]): r for r in fusion.detect(pairs, measure)}
    assert rules[("conv1x1", "relu")]["fused"] and rules[("conv1x1", "relu")]["saving"] == pytest.approx(1.0)
    assert not rules[("relu", "shuffle")]["fused"] and rules[("relu", "shuffle")]["saving"] == pytest.approx(0.0)
    assert rules[("conv1x1", "add")]["saving"] == pytest.approx(0.6) and rules[("conv1x1", "add")]["fused"]
    assert ["conv1x1", "relu"] in calls and ["conv1x1"] in calls and ["relu"] in calls  # alone and together


def test_host_draws_keep_nchwc_blocks_and_fit_each_layout_apart():
    """ONNX Runtime picks NCHWc or NCHW for a conv or pool by its channel counts (``kernels.blocked``,
    read from its optimized graphs): the host plan's draws near an aligned seed stay aligned, and timed
    points get a law per layout."""
    from shufflenet_edge.predict import fit
    from shufflenet_edge.predict.kernels import blocked

    dw = _spec("dwconv", 64, k=3, stride=1, pad=1, groups=64)
    odd = _spec("dwconv", 58, k=3, stride=1, pad=1, groups=58)
    assert blocked(dw) and not blocked(odd) and blocked(_spec("dwconv", 36, k=3, stride=1, pad=1, groups=36))
    # a grouped conv needs whole blocks per group on both sides (v1_g3's 240 -> 60: 80 and 20 per group)
    assert not blocked({**_spec("gconv1x1", 240, groups=3), "cout": 60}) and blocked(_spec("gconv1x1", 240, groups=3))
    assert blocked({**_spec("conv1x1", 144), "cout": 36}) and not blocked(_spec("conv1x1", 58))  # output padded
    assert not blocked(_spec("maxpool", 36, k=3, stride=2, pad=1)) and blocked(_spec("maxpool", 24, k=3, stride=2, pad=1))
    assert blocked({**_spec("conv", 3, k=3, stride=2, pad=1), "cout": 24})  # a stem's 3 image channels
    # AVX-512's block of 16: dense and depthwise convs keep their multiple of 4, pools and grouped convs need 16s
    assert blocked(_spec("dwconv", 36, k=3, stride=1, pad=1, groups=36), 16) and blocked(_spec("conv1x1", 12), 16)
    pool = {"k": 3, "stride": 2, "pad": 1}
    assert not blocked(_spec("maxpool", 24, **pool), 16) and blocked(_spec("maxpool", 48, **pool), 16)
    assert not blocked(_spec("gconv1x1", 120, groups=3), 16) and blocked(_spec("gconv1x1", 144, groups=3), 16)
    assert not blocked(dw, 0)  # an engine without NCHWc (the ARM build)
    assert fit.regime(_spec("maxpool", 24, k=3, stride=2, pad=1), block=16) == "nchw"
    rng = sampling.rng_for(0)
    host = sampling.PLANS["host"]
    assert all(s["cin"] % 8 == 0 and s["groups"] == s["cin"] for s in
               (sampling.draw("dwconv", {"dwconv": [dw]}, rng, host) for _ in range(20)))
    assert all(s["cout"] % 8 == 0 for s in sampling.neighbours(_spec("conv1x1", 64, k=1), rng, 10, host))
    assert fit.regime(dw) == "nchwc" and fit.regime(odd) == "nchw" and fit.regime(_spec("relu")) is None
    assert fit.regime(dw, "instructions") == "k3_s1"  # counts keep their (kernel, stride) regimes
    assert fit.features(dw)[-1] == 1 and fit.features(odd)[-1] == 0


@pytest.mark.parametrize("kind,cin,cout,groups", [
    ("dwconv", 12, 12, 12), ("dwconv", 58, 58, 58), ("dwconv", 116, 116, 116), ("conv1x1", 58, 64, 1),
    ("conv1x1", 64, 58, 1), ("conv1x1", 36, 24, 1), ("maxpool", 8, 8, 1), ("maxpool", 24, 24, 1),
    ("maxpool", 36, 36, 1), ("maxpool", 48, 48, 1), ("gconv1x1", 120, 120, 3), ("gconv1x1", 144, 144, 3),
    ("gconv1x1", 240, 60, 3), ("gconv1x1", 192, 192, 8), ("gconv1x1", 384, 384, 8), ("conv", 3, 24, 1)])
def test_nchwc_rules_match_onnxruntimes_optimized_graph_on_this_host(tmp_path, kind, cin, cout, groups):
    """``kernels.blocked`` with the block this host's engine reports (``layout.block_size``: 8 on AVX2,
    16 on AVX-512) says what ONNX Runtime's own optimized graph does, for the zoo's awkward counts."""
    from shufflenet_edge.predict import layout
    from shufflenet_edge.predict.kernels import blocked

    block = layout.block_size(tmp_path)
    assert block in (8, 16)  # x86 hosts: AVX2 or AVX-512
    spec = {"kind": kind, "cin": cin, "cout": cout, "h": 16, "w": 16, "groups": groups,
            **({"k": 3, "stride": 2, "pad": 1} if kind in ("maxpool", "conv") else
               {"k": 3, "stride": 1, "pad": 1} if kind == "dwconv" else {"k": 1, "stride": 1, "pad": 0})}
    assert blocked(spec, block) == layout.runs_nchwc(spec, tmp_path), (spec, block)


def test_a_timing_backend_measures_a_pair_in_one_interleaved_run():
    """A back-end with ``together`` (the host's timing) gets a pair's three chains in one call, so a
    speed step between separate runs cannot pose as a saving: here each separate call would run at
    another speed (the saving would come out 0.4), while the joint call sees the true one (1.0)."""
    own = {"conv1x1": 1.0, "relu": 0.2}
    speeds = iter([1.0, 2.0, 1.0])

    class Backend:
        joint = []

        def __call__(self, specs):  # one at a time: each at the speed of its moment
            return {"cost": next(speeds) * sum(own[s["kind"]] for s in specs), "stability": {}}

        def together(self, chains):
            self.joint.append([[s["kind"] for s in c] for c in chains])
            fused = lambda kinds: sum(own[k] for k in kinds) - (own["relu"] if kinds == ["conv1x1", "relu"] else 0)
            return [{"cost": 3.0 * fused([s["kind"] for s in c]), "stability": {}} for c in chains]

    backend = Backend()
    rule = fusion.detect([(_spec("conv1x1"), _spec("relu"), 1)], backend)[0]
    assert backend.joint == [[["conv1x1"], ["relu"], ["conv1x1", "relu"]]]
    assert rule["fused"] and rule["saving"] == pytest.approx(1.0)


def test_a_fused_kernel_takes_its_next_op_by_its_own_rule_only():
    """A fake engine like ONNX Runtime's CPU FusedConv: Conv+Add share work, and a ReLU after that
    pair is free, though an Add and a ReLU alone do not fuse. The chain rule (conv1x1+add, relu)
    is found by timing, and a merged kernel takes its next op by it, never by the pair (add, relu)."""
    own = {"conv1x1": 1.0, "add": 0.25, "relu": 0.2}

    def measure(specs):
        kinds = [s["kind"] for s in specs]
        cost = sum(own[k] for k in kinds)
        if kinds[:2] == ["conv1x1", "add"]:
            cost -= 0.6 * own["add"]
            if kinds[2:] == ["relu"]:
                cost -= own["relu"]
        return {"cost": cost, "stability": {"verdict": "stable"}}

    seeds = [model_ops("v1_g1", 224)]
    chains = fusion.candidate_chains(seeds, [("conv1x1", "add")])
    assert chains and {(tuple(x["kind"] for x in ab), c["kind"]) for ab, c, _ in chains} >= {(("conv1x1", "add"), "relu")}
    rules = {(r["first"], r["second"]): r for r in fusion.detect(chains, measure)}
    assert rules[("conv1x1+add", "relu")]["fused"] and rules[("conv1x1+add", "relu")]["saving"] == pytest.approx(1.0)
    ops = seeds[0]
    costs = [own.get(o.kind, 0.5) for o in ops]
    residual = sum(1 for o in ops if o.kind == "add")
    kinds = [k["kind"] for k in fusion.merge(ops, costs, {("conv1x1", "add"): 0.6, ("conv1x1+add", "relu"): 1.0})]
    assert kinds.count("conv1x1+add+relu") == residual > 0
    out_of_context = fusion.merge(ops, costs, {("conv1x1", "add"): 0.6, ("add", "relu"): 1.0})
    assert not any(k["kind"].endswith("add+relu") for k in out_of_context)


def test_a_pair_the_engine_merges_in_its_graph_is_fused_whatever_its_saving():
    """An engine that reports its optimized graph (ONNX Runtime's FusedConv with the residual as Z):
    a conv -> add pair that saves only 0.2 of the add is fused when the graph holds one op for the
    pair; a pair that saves 0.2 and stays two ops is not; the saving stays the timing's."""
    own = {"gconv1x1": 1.0, "add": 0.5, "relu": 0.2}

    class Engine:
        def __call__(self, specs):
            kinds = [s["kind"] for s in specs]
            return {"cost": sum(own[k] for k in kinds) - (0.1 if kinds[:2] in (["gconv1x1", "add"], ["relu", "add"]) else 0),
                    "stability": {}}

        def graph_ops(self, specs):
            kinds = [s["kind"] for s in specs]
            return ["FusedConv"] if kinds == ["gconv1x1", "add"] else kinds

    g = _spec("gconv1x1", groups=8)
    rules = {(r["first"], r["second"]): r for r in
             fusion.detect([(g, _spec("add"), 1), (_spec("relu"), _spec("add"), 1)], Engine())}
    merged, apart = rules[("gconv1x1", "add")], rules[("relu", "add")]
    assert merged["fused"] and merged["graph_fused"] and merged["saving"] == pytest.approx(0.2)
    assert not apart["fused"] and apart["saving"] == pytest.approx(0.2) and not apart["points"][0]["graph_fused"]


def test_pairs_are_measured_at_their_largest_instance_first():
    """A saving is a share of B's cost: at the first instance of a ReLU after a fused conv+add it cost
    2-4 us and read -0.26 and +0.60. Each pair comes first at its largest instance (by B's elements),
    every pair's before any first, smaller instance."""
    from shufflenet_edge.predict.kernels import spec_counts

    seeds = [model_ops("v1_g3", 224), model_ops("v1_g3", (480, 640))]
    pairs = fusion.candidate_pairs(seeds)
    kinds = {(a["kind"], b["kind"]) for a, b, _ in pairs}
    head = pairs[:len(kinds)]
    assert {(a["kind"], b["kind"]) for a, b, _ in head} == kinds  # each pair once before any repeat
    size = lambda s: spec_counts(s)["in_elems"] + spec_counts(s)["out_elems"]
    for a, b, _ in head:
        same = [bb for aa, bb, _ in pairs if (aa["kind"], bb["kind"]) == (a["kind"], b["kind"])]
        assert size(b) == max(size(x) for x in same)
    assert ("gconv1x1", "add") in kinds and all(b["h"] == 60 for a, b, _ in head if (a["kind"], b["kind"]) == ("gconv1x1", "add"))
    # counts under emulation are exact at any size: there each pair comes first at its first (224) instance
    first = fusion.candidate_pairs(seeds, largest=False)[:len(kinds)]
    assert {(a["kind"], b["kind"]) for a, b, _ in first} == kinds and all(b["h"] <= 112 for _, b, _ in first)


def test_candidate_pairs_come_from_the_models_graphs():
    pairs = fusion.candidate_pairs([model_ops("v1_g3", 224), model_ops("v2_1.0x", 224)])
    kinds = {(a["kind"], b["kind"]) for a, b, _ in pairs}
    assert ("conv1x1", "relu") in kinds and ("gconv1x1", "add") in kinds and ("concat", "shuffle") in kinds
    assert ("split", "conv1x1") in kinds  # v2: the split half goes to the branch's first conv
    assert {b for a, b in kinds if b == "split"} and {a for a, b in kinds if b == "split"} == {"shuffle"}
    assert all(a["kind"] != "fc" for a, _, _ in pairs)


# ---------------------------------------------------------------- profile and prediction arithmetic

def _law(spec):
    c = spec_counts(spec)
    return 2e-3 * c["macs"] / 1e6 + 1e-3 * (c["in_elems"] + c["out_elems"] + c["weights"]) / 1e6 + 2e-3


@functools.lru_cache(maxsize=1)
def _seeds():
    return sampling.seeds_by_kind(sampling.seed_ops(("v1_g3", "v2_1.0x", "mobilenet_v2", "alexnet"), (224, 224)))


def synthetic_profile(rules=()) -> dict:
    """A profile whose points follow one known law exactly (no timing): what it must predict is known."""
    seeds = _seeds()
    rng = sampling.rng_for(0)
    kernels = {}
    for kind in seeds:
        specs = [sampling.draw(kind, seeds, rng) for _ in range(10)]
        kernels[kind] = {"points": [{"spec": s, "cost": _law(s), "raw": _law(s) + 0.01, "phase": "initial",
                                     "stability": {"verdict": "stable"}} for s in specs]}
    return {"schema": P.SCHEMA, "version": P.VERSION, "device": "host", "target": None,
            "engine": {"name": "onnxruntime", "version": "test"}, "format": "onnx", "precision": "fp32",
            "threads": 1, "cost_unit": "ms", "overhead": {"cost": 0.01}, "kernels": kernels,
            "nchwc_block": 0,  # an engine without NCHWc: no padded channels, the law applies as written
            "fusion": [{"first": a, "second": b, "saving": s, "fused": True} for a, b, s in rules],
            "proxies": {"fitted_on": "test", "flops": {"a": 1e-8, "k": 1.0, "n": 2},
                        "macs_memory": {"ms_per_gmac": 2.0, "ms_per_mb": 0.5, "ms_fixed": 0.01, "n": 3}}}


def test_prediction_is_the_sum_of_its_kernels_plus_the_fixed_cost():
    from shufflenet_edge.predict import predict

    prof = synthetic_profile()
    ops = model_ops("v2_1.0x", 224)
    r = predict("v2_1.0x", 224, prof)
    expected = 0.01 + sum(_law(o.spec()) for o in ops)
    assert r["predicted"] == pytest.approx(expected, rel=2e-3)
    assert len(r["kernels"]) == len(ops) and sum(a["count"] for a in r["by_kind"].values()) == len(ops)
    assert r["proxies"]["flops"] == pytest.approx(1e-8 * r["macs"])
    assert r["proxies"]["macs_memory"] == pytest.approx(2.0 * r["macs"] / 1e9 + 0.5 * r["memory_access_bytes"] / 1e6 + 0.01)
    # a larger input costs more, kernel by kernel
    assert predict("v2_1.0x", (480, 640), prof)["predicted"] > 3 * r["predicted"]


def test_blocked_convs_are_costed_on_whole_blocks():
    """ONNX Runtime's NCHWc conv computes whole blocks of channels: on AVX-512 (16) a 24 -> 24 1x1 conv
    does a 32 -> 32 one's work. Laws fitted on points of whole blocks (what the host's draws keep)
    predict the zoo's odd counts by their padded channels; an unblocked conv (58 channels, plain NCHW)
    keeps its own count."""
    from shufflenet_edge.predict.fit import KernelModel
    from shufflenet_edge.predict.kernels import padded

    rng = np.random.default_rng(0)
    specs = [{"kind": "conv1x1", "cin": 16 * int(a), "cout": 16 * int(b), "h": int(h), "w": int(h), "k": 1, "stride": 1,
              "pad": 0, "groups": 1} for a, b, h in zip(rng.integers(1, 12, 40), rng.integers(1, 12, 40),
                                                           rng.integers(7, 60, 40))]
    engine = lambda s: _law(padded(s, 16))  # noqa: E731
    model = KernelModel(specs, [engine(s) for s in specs], trees=False, block=16)
    odd = {**specs[0], "cin": 24, "cout": 24, "h": 56, "w": 56}
    assert padded(odd, 16)["cin"] == 32 and padded({**odd, "cin": 58}, 16) == {**odd, "cin": 58}
    assert model.predict([odd])[0] == pytest.approx(engine(odd), rel=1e-3)
    assert model.predict([odd])[0] > 1.3 * _law(odd)
    assert padded({**odd, "kind": "conv", "cin": 3, "k": 3}, 16)["cin"] == 3  # a stem reads its image as it is
    assert padded(odd, 0) == odd  # no NCHWc engine (instruction counts under qemu)
    # a profile fitted before whole-block costing (no ``padded_channels``) keeps the laws it was validated with
    legacy = KernelModel(specs, [engine(s) for s in specs], trees=False, block=16, padded_channels=False)
    assert legacy.predict([odd])[0] == pytest.approx(_law(odd), rel=1e-3)


def test_fused_kernels_merge_and_lose_the_saved_cost():
    from shufflenet_edge.predict import predict

    plain = predict("v1_g3", 224, synthetic_profile())
    fused = predict("v1_g3", 224, synthetic_profile(rules=[("conv1x1", "relu", 1.0), ("gconv1x1", "relu", 1.0)]))
    ops = model_ops("v1_g3", 224)
    after_conv = [o for o in ops if o.kind == "relu" and ops[o.inputs[0]].kind in ("conv1x1", "gconv1x1")]
    assert after_conv
    assert fused["predicted"] == pytest.approx(plain["predicted"] - sum(_law(o.spec()) for o in after_conv), rel=2e-3)
    merged = [k for k in fused["kernels"] if k["kind"].endswith("+relu")]
    assert len(merged) == len(after_conv) and all(len(k["layers"]) == 2 for k in merged)
    # fused or not, the kernels hold every layer of edge info exactly once
    layers = [name for k in fused["kernels"] for name in k["layers"]]
    assert sorted(layers) == sorted(o.layer for o in ops if o.layer)


def test_validation_passes_keep_each_models_fastest_and_report_their_spread():
    """``--passes``: a row keeps its fastest pass (its p50 and verdict with it) and every pass's time;
    ``repeatability`` gives the share of rows whose passes agree within 5% and 10%."""
    from shufflenet_edge.predict.validate import _kept_pass, repeatability

    rows = []
    for t in (2.0, 1.95, 2.1):
        _kept_pass(rows, {"model": "a", "input_size": [224, 224], "measured": t, "measured_p50": t + 0.1,
                          "stability": "stable", "stability_detail": {"t": t}, "predicted": 2.0})
    for t in (1.0, 1.3):
        _kept_pass(rows, {"model": "b", "input_size": [224, 224], "measured": t, "measured_p50": t,
                          "stability": "noisy" if t > 1 else "stable", "stability_detail": {}, "predicted": 1.0})
    a, b = rows
    assert a["measured"] == 1.95 and a["measured_p50"] == pytest.approx(2.05) and a["measured_passes"] == [2.0, 1.95, 2.1]
    assert a["pass_spread"] == pytest.approx(2.1 / 1.95 - 1) and b["measured"] == 1.0 and b["stability"] == "stable"
    rep = repeatability(rows)
    assert rep["passes"] == 3 and rep["within_5"] == 0 and rep["within_10"] == 0.5
    assert rep["max_spread"] == pytest.approx(0.3) and repeatability([{"model": "c"}]) is None


def test_a_verdict_on_noisy_measurements_says_it_cannot_be_judged():
    """``noise_verdict`` on the committed host validations: the quiet one (0 noisy rows, passes within 5%)
    is judgeable; the AVX-VNNI host's (a fit with 5.3% disturbed timings, 17 noisy rows, passes within
    10% for 79%) is not, for all three reasons; each reason alone is enough."""
    from shufflenet_edge.predict.validate import noise_verdict

    root = Path(__file__).resolve().parent.parent / "bench" / "results" / "predict"

    def committed(isa):
        prof = json.loads((root / isa / "host_onnxruntime_fp32_t1.json").read_text())
        return prof, json.loads((root / isa / "validate_host_onnxruntime_fp32_t1.json").read_text())

    assert noise_verdict(*committed("avx512vnni-avx512")) == {"judgeable": True, "reasons": []}
    busy = noise_verdict(*committed("avx512vnni-avxvnni-avx512"))
    assert not busy["judgeable"] and len(busy["reasons"]) == 3, busy
    quiet_prof = {"cost_unit": "ms", "noisy": {"points": 100, "noisy": 2, "share": 0.02}}
    busy_prof = {"cost_unit": "ms", "noisy": {"points": 100, "noisy": 10, "share": 0.1}}

    def validation(noisy=0, rep=None):
        return {"rows": [{"stability": "noisy"}] * noisy + [{"stability": "stable"}] * (10 - noisy), "noisy": noisy,
                **({"repeatability": rep} if rep else {})}

    assert noise_verdict(quiet_prof, validation(rep={"within_10": 1.0}))["judgeable"]
    assert noise_verdict(quiet_prof, validation())["judgeable"]
    assert not noise_verdict(busy_prof, validation(rep={"within_10": 1.0}))["judgeable"]
    assert noise_verdict({**busy_prof, "cost_unit": "instructions"}, validation())["judgeable"]  # counts: no load
    assert not noise_verdict(quiet_prof, validation(noisy=2, rep={"within_10": 1.0}))["judgeable"]
    assert "agree within 10% for only 80%" in noise_verdict(quiet_prof, validation(rep={"within_10": 0.8}))["reasons"][0]


def test_a_committed_host_profile_of_this_hosts_isa_is_taken_first(tmp_path, monkeypatch):
    """Committed host profiles are kept per ISA (an AVX-512 host runs other kernels than an AVX2 one):
    ``find`` takes the user's own fit, else this host's ISA folder, else another ISA's."""
    from shufflenet_edge.runtime.timing import isa_features, isa_tag

    monkeypatch.setattr(P, "committed_dir", lambda: tmp_path / "committed")
    monkeypatch.setattr(P, "user_dir", lambda: tmp_path / "user")
    name = P.file_name("host", "onnxruntime", "fp32", 1)
    other = P.save(synthetic_profile(), tmp_path / "committed" / "zz-other-isa")
    assert P.find() == other  # a profile of another machine beats none
    own = P.save(synthetic_profile(), tmp_path / "committed" / isa_tag(isa_features()))
    assert P.find() == own and own.name == name
    mine = P.save(synthetic_profile(), tmp_path / "user")
    assert P.find() == mine
    assert P.committed_folders("arm") == [tmp_path / "committed"]  # emulated ARM counts: one set, at the top


def test_calibration_from_composites_scales_compute_and_memory_kernels():
    from shufflenet_edge.predict import predict
    from shufflenet_edge.predict.predictor import calibrate

    comps = [{"kernel_sums": {"compute": c, "memory": m}, "fixed_cost": 0.01, "cost": 0.01 + 1.5 * c + 2.0 * m}
             for c, m in ((1.0, 0.2), (3.0, 0.5), (0.5, 0.4), (8.0, 1.0), (2.0, 2.0))]
    cal = calibrate(comps)
    assert cal["fitted"] and cal["compute"] == pytest.approx(1.5) and cal["memory"] == pytest.approx(2.0)
    assert not calibrate(comps[:4])["fitted"]  # too few networks: scale 1

    plain = predict("v2_0.5x", 224, synthetic_profile())
    scaled = predict("v2_0.5x", 224, {**synthetic_profile(), "calibration": cal})
    compute = sum(k["cost"] for k in plain["kernels"] if k["kind"].split("+")[0] in ("conv1x1", "dwconv", "conv", "fc"))
    memory = plain["predicted"] - plain["fixed_cost"] - compute
    assert scaled["predicted"] == pytest.approx(plain["fixed_cost"] + 1.5 * compute + 2.0 * memory, rel=1e-6)
    assert scaled["uncalibrated"] == pytest.approx(plain["predicted"])


def test_a_cases_before_hook_runs_ahead_of_every_run_untimed():
    import time

    from shufflenet_edge.runtime.timing import time_cases

    calls = []
    r = time_cases([(lambda x: None, None, lambda: (calls.append(1), time.sleep(0.004)))], runs=20, warmup=2,
                   rounds=4)[0]
    assert len(calls) == 20 and r["latency_ms"]["p50"] < 1.0


def test_profile_round_trip(tmp_path):
    from shufflenet_edge.predict import predict

    prof = synthetic_profile(rules=[("conv1x1", "relu", 0.9)])
    path = P.save(prof, tmp_path)
    assert path.name == "host_onnxruntime_fp32_t1.json"
    loaded = P.load(path)
    assert {k: v for k, v in loaded.items() if k != "_path"} == json.loads(json.dumps(prof))
    assert predict("v1_g3", 224, str(path))["predicted"] == pytest.approx(predict("v1_g3", 224, prof)["predicted"])
    # the engine's NCHWc block travels with the profile; one fitted before it was recorded was an AVX2 host's
    from shufflenet_edge.predict.predictor import Predictor

    legacy = {k: v for k, v in prof.items() if k != "nchwc_block"}
    assert P.nchwc_block(legacy) == 8 and P.nchwc_block({**legacy, "cost_unit": "instructions"}) == 0
    assert Predictor(P.load(P.save({**prof, "nchwc_block": 16}, tmp_path / "avx512"))).block == 16


@pytest.mark.parametrize("content, words", [
    ("{not json", "not JSON"),
    ('{"schema": "something else"}', "schema"),
    ("[1, 2]", "not a JSON object"),
])
def test_bad_profile_is_one_usage_error_line(tmp_path, content, words):
    from shufflenet_edge.errors import UsageError

    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(UsageError, match=words) as exc:
        P.load(bad)
    assert "\n" not in str(exc.value) and "edge predict fit" in str(exc.value)


def test_a_corrupt_point_is_named(tmp_path):
    prof = json.loads(json.dumps(synthetic_profile()))
    prof["kernels"]["dwconv"]["points"][3]["spec"]["cin"] = "many"
    assert P.problem(prof) == "kernels.dwconv.points[3] needs a spec (kind dwconv, cin, cout, h, w >= 1) and a cost"


def test_bad_profile_via_the_cli_is_one_line_and_exit_2(edge_cli, tmp_path):
    bad = tmp_path / "host_onnxruntime_fp32_t1.json"
    bad.write_text('{"schema": "shufflenet-edge/predict-profile", "version": 1, "engine": {}}')
    r = edge_cli("predict", "--model", "v2_0.5x", "--device-profile", bad)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith(f"error: bad device profile {bad}: engine")


def test_missing_profile_names_the_fix(tmp_path):
    from shufflenet_edge.errors import UsageError

    with pytest.raises(UsageError, match="device profile not found: .*edge predict fit"):
        P.load(tmp_path / "none.json")


def test_cli_table_and_json(cli, tmp_path):
    path = P.save(synthetic_profile(rules=[("conv1x1", "relu", 1.0)]), tmp_path)
    r = cli("predict", "--model", "v1_g8_1.5x", "--device-profile", path)
    assert r.returncode == 0, r.stderr
    for words in ("kernel predictor", "FLOPs law", "MACs + memory law", "gconv1x1", "dwconv"):
        assert words in r.stdout
    r = cli("predict", "--model", "v1_g8_1.5x", "--device-profile", path, "--json")
    d = json.loads(r.stdout)
    assert d["model"] == "v1_g8_1.5x" and d["predicted"] > 0 and set(d["proxies"]) == {"flops", "macs_memory"}
    assert d["kernels"][0]["layers"] == ["conv1.0"]
    r = cli("predict", "fit", "--device", "arm", "--target", "ssh://pi@board", "--budget-min", "1")
    assert r.returncode == 2 and "only --target qemu" in r.stderr


def test_onnx_file_reads_like_the_registered_model(tmp_path):
    from shufflenet_edge.models import create_model
    from shufflenet_edge.predict import predict
    from shufflenet_edge.predict.micro import export_onnx

    net = create_model("v2_0.5x", input_size=64)
    path = export_onnx(net, [[1, 3, 64, 64]], tmp_path / "v2.onnx")
    prof = synthetic_profile()
    from_file = predict(path, None, prof)
    from_name = predict("v2_0.5x", 64, prof)
    assert from_file["input_size"] == [64, 64] and from_file["macs"] == from_name["macs"]
    def convs(r):
        return {k: a["count"] for k, a in r["by_kind"].items() if "conv" in k}

    assert convs(from_file) == convs(from_name)
    assert from_file["predicted"] == pytest.approx(from_name["predicted"], rel=0.1)


def test_reproduce_section_with_and_without_a_profile(tmp_path, monkeypatch):
    """With a profile: R^2 of MACs vs of the kernel predictor on the Table 8 models; without one
    (int8 here): the command that makes it, and no failure."""
    from shufflenet_edge.complexity import complexity
    from shufflenet_edge.predict import predict
    from shufflenet_edge.predict.proxies import fit_flops_law
    from shufflenet_edge.reproduce.report import _md_variance
    from shufflenet_edge.reproduce.variance import explained

    monkeypatch.setenv("EDGE_CACHE_DIR", str(tmp_path))
    prof = P.load(P.save(synthetic_profile(), P.user_dir()))  # loaded from its file: one fit serves every call
    models = ("v1_g3_0.5x", "v1_g3", "v1_g3_2.0x", "alexnet", "mobilenet_v1_1.0x")
    rows = []
    for precision in ("fp32", "int8"):
        for m in models:  # costs that the profile predicts exactly: its R^2 must be 1, the MACs law's below
            rows.append({"model": m, "format": "onnx", "precision": precision, "threads": 1, "input_size": [224, 224],
                         "table8": True, "macs": complexity(m).macs, "cost": predict(m, 224, prof)["predicted"]})
    law = fit_flops_law([r["macs"] for r in rows[:5]], [r["cost"] for r in rows[:5]])
    fits = [{"format": "onnx", "precision": p, "threads": 1, "input_size": [224, 224], **law} for p in ("fp32", "int8")]
    var = explained({"unit": "ms", "rows": rows, "fits": fits}, "host")
    (g,) = var["groups"]
    assert g["precision"] == "fp32" and g["n"] == 5 and g["r2_predictor"] == pytest.approx(1.0, abs=1e-6)
    assert g["r2_macs"] < 1.0 and g["rmspe_macs"] > g["rmspe_predictor"]
    (miss,) = var["missing"]
    assert miss["profile"] == "host_onnxruntime_int8_t1.json"
    text = "\n".join(_md_variance(var))
    assert "R^2 kernel predictor" in text and "edge predict fit --device host --format onnx --precision int8" in text


# ---------------------------------------------------------------- slow: a real (short) fit on this host

@pytest.mark.slow
def test_fit_then_predict_smoke(edge_cli, tmp_path):
    r = edge_cli("predict", "fit", "--budget-min", "0.6", "--kernels", "conv1x1,gconv1x1,dwconv,relu,add,shuffle",
                 "--max-seconds", "0.1", "--out", tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "host_onnxruntime_fp32_t1.json"
    prof = P.load(path)
    assert prof["machine"]["cpu"] and prof["engine"]["version"]
    assert prof["nchwc_block"] in (8, 16)  # read from this host's engine (AVX2 or AVX-512)
    assert prof["padded_channels"] is True  # its laws cost blocked convs on whole blocks, and say so
    assert prof["elapsed_s"] <= 0.6 * 60 + 5, r.stderr
    pts = [p for k in prof["kernels"].values() for p in k["points"]]
    assert len(pts) >= 6 and all(p["stability"]["verdict"] in ("stable", "noisy") for p in pts), r.stderr
    assert prof["overhead"]["cost"] > 0 and prof["proxies"]["fitted_on"]
    assert prof["layout"]["points"] and prof["layout"]["reorder_ms_per_melement"] >= 0  # measured first, in budget
    assert all(p["stability"]["canary"] for p in pts)  # every point timed beside the canary
    assert prof["noisy"]["points"] == len(pts) + len(prof["composites"])  # a busy machine is said, not hidden
    r = edge_cli("predict", "--model", "v2_0.5x", "--device-profile", path, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["predicted"] > 0 and any("all-kinds linear law" in n for n in d["notes"])  # concat, split not sampled


@pytest.mark.slow
def test_validate_measures_and_reports_each_predictor(cli, tmp_path):
    """One model at 64 px, a synthetic profile: the export, the bench record and the report are real."""
    path = P.save(synthetic_profile(), tmp_path / "profile")
    r = cli("predict", "validate", "--device-profile", path, "--models", "v2_0.5x", "--sizes", "64",
            "--max-seconds", "0.5", "--passes", "2", "--out", tmp_path / "val")
    assert r.returncode == 0, r.stderr
    assert "kernel predictor" in r.stdout and "FLOPs law fitted on these measurements" in r.stdout
    assert "repeatability (2 passes)" in r.stdout and "(pass 2/2)" in r.stderr
    res = json.loads((tmp_path / "val" / "validate_host_onnxruntime_fp32_t1.json").read_text())
    (row,) = res["rows"]
    assert len(row["measured_passes"]) == 2 and row["measured"] == min(row["measured_passes"])
    assert res["repeatability"]["n"] == 1 and res["repeatability"]["median_spread"] == pytest.approx(row["pass_spread"])
    noise = res["acceptance"]["noise"]  # the verdict says whether its measurements could judge it
    assert noise["judgeable"] == (not noise["reasons"]) and ("too noisy to judge" in r.stdout) == (not noise["judgeable"])
    assert row["model"] == "v2_0.5x" and row["measured"] > 0 and row["stability"] in ("stable", "noisy")
    assert row["measured"] <= row["measured_p50"] and row["stability_detail"]["canary"]  # p10, beside the canary
    assert res["summary_p50"]["predicted"]["n"] == 1
    assert res["summary"]["predicted"]["n"] == 1 and (tmp_path / "val" / res["plot"]).is_file()


def test_noisy_share_counts_points_whose_median_is_disturbed():
    """cv and round spread alone (a 20 us kernel on an idle machine) do not make a point disturbed;
    a wide CI of the median or other work on the cores does."""
    from shufflenet_edge.predict.profiling import noisy_share

    jitter = {"verdict": "noisy", "ci_halfwidth": 0.005, "cv": 0.32, "others_cpu_share": 0.0}
    busy = {"verdict": "noisy", "ci_halfwidth": 0.005, "cv": 0.05, "others_cpu_share": 0.4}
    wide = {"verdict": "noisy", "ci_halfwidth": 0.08, "cv": 0.30, "others_cpu_share": 0.0}
    unknown = {"verdict": "noisy", "ci_halfwidth": 0.005, "cv": 0.30, "others_cpu_share": None}
    stable = {"verdict": "stable", "ci_halfwidth": 0.005, "cv": 0.02, "others_cpu_share": 0.0}
    prof = {"kernels": {"conv1x1": {"points": [{"stability": s} for s in (jitter, busy, wide, unknown, stable)]}}}
    got = noisy_share(prof)
    assert got["points"] == 5 and got["noisy"] == 3 and got["flagged_noisy"] == 4 and got["share"] == 0.6


def test_a_slow_window_is_timed_again_and_each_case_keeps_its_fastest():
    """The canary times beside every measurement: a window it says was slow is taken again (here the
    first attempt's case is made 3x slower, as this VM's slow spells do), and the case keeps the
    faster timing; a window it says was fast is kept at once."""
    import time

    from shufflenet_edge.predict import measure

    slow = [True]

    def work(_):
        end = time.perf_counter() + (3e-4 if slow[0] else 1e-4)
        while time.perf_counter() < end:
            pass

    class FakeCanary:
        def __init__(self, ratios):
            self.ratios = list(ratios)

        def case(self):
            return (lambda _: None), None

        def ratio(self, result):
            slow[0] = False  # the next attempt runs at full speed
            return self.ratios.pop(0)

    timed, ratios = measure.settled([(work, None)], FakeCanary([1.6, 1.0, 1.0]), 0.05, 1)
    assert ratios == [1.6, 1.0]  # one retry, then a fast window ends it
    assert 0.08 < timed[0]["latency_ms"]["p10"] < 0.2  # the fast attempt's time, not the slow one's
    slow[0] = True
    timed, ratios = measure.settled([(work, None)], FakeCanary([1.0]), 0.05, 1)
    assert ratios == [1.0] and timed[0]["latency_ms"]["p10"] > 0.25


def test_undisturbed_time_is_a_low_percentile_of_the_runs():
    """Slow spells only add time: 30% of runs at 3x leave the 10th percentile at the machine's speed,
    where the median would follow the share of slow runs."""
    from shufflenet_edge.runtime.timing import stats_ms, undisturbed_ms

    runs = [1e-3 * (1 + 0.01 * (i % 5)) for i in range(70)] + [3e-3] * 30
    got = {"latency_ms": stats_ms(runs)}
    assert 1.0 <= undisturbed_ms(got) <= 1.05 and got["latency_ms"]["p50"] > 1.02
    assert undisturbed_ms({"latency_ms": {"min": 0.9, "p50": 1.0}}) == 0.9  # a record from before p10


def test_a_composite_rebuilds_from_its_description():
    """A profile stores each composite's description; the network rebuilt from it is the one timed
    (same MACs), so kernel sums can be recomputed when the fusion rules are read anew."""
    from shufflenet_edge.predict import micro
    from shufflenet_edge.predict.kernels import totals, trace_ops

    rng = sampling.rng_for(3)
    stems = 0
    for _ in range(10):
        module, shape, desc = micro.composite(rng)
        again, shape2 = micro.composite_from(json.loads(json.dumps(desc)))
        assert shape2 == shape
        macs = totals(trace_ops(module, shape[1:], in_channels=shape[0]))["macs"]
        assert totals(trace_ops(again, shape[1:], in_channels=shape[0]))["macs"] == macs > 0
        # zoo-like to the engine: widths on the zoo's channel quanta, some behind the zoo's stem, bounded cost
        q = micro.QUANTUM[desc["family"]] * (desc["groups"] if desc["family"] == "v1" else 1)
        assert desc["channels"] % q == 0 and macs <= micro.MAX_COMPOSITE_MACS
        stems += desc["stem"]
        assert (shape[0] == 3) == desc["stem"]
    assert 0 < stems < 10
    # a description from before stems (a committed profile's) rebuilds without one
    old = {"family": "v2", "channels": 58, "groups": 2, "blocks": 3, "h": 14, "w": 14, "downsample": True}
    assert micro.composite_from(old)[1] == (58, 14, 14)


def test_reorder_cost_follows_the_measured_curve_by_tensor_size():
    """Beyond the caches a reorder costs more per element: the profile keeps a curve over sizes
    (``layout.curve``, neighbour-median smoothed) and a large map's kernels are credited by it."""
    from shufflenet_edge.predict.layout import curve, pair_reorders, reorder_ms

    pts = [{"elements": e, "ms_per_melement": r} for e, r in ((1e5, 0.1), (6e5, 0.1), (1.3e6, 0.3), (2.5e6, 0.4),
                                                               (5e6, 0.4), (2e5, 5.0))]
    cv = curve(pts)
    assert [e for e, _ in cv] == sorted(e for e, _ in cv) and max(r for _, r in cv) <= 0.4  # the 5.0 outlier is out
    assert reorder_ms(1e5, cv) == pytest.approx(0.1 * 0.1)
    assert reorder_ms(2e7, cv) == pytest.approx(0.4 * 20)  # held at the end
    assert reorder_ms(3e6, cv) / 3 > 3 * reorder_ms(1e5, cv) / 0.1  # per element, 3x and more
    assert reorder_ms(1e6, 0.2) == pytest.approx(0.2)  # a profile from before the curve: one constant
    conv = {"kind": "conv1x1", "cin": 64, "cout": 64, "h": 280, "w": 280, "k": 1, "stride": 1, "pad": 0, "groups": 1}
    assert pair_reorders(conv, conv, cv, 16) == pytest.approx(2 * 0.4 * 64 * 280 * 280 / 1e6)


def test_a_reorder_is_priced_at_the_working_set_of_the_op_that_pays_it():
    """The curve is measured on C -> C convs; a 16 -> 96 expansion's output reorder of the same tensor
    cost a third as much (its input is a sixth): a profile whose layout entry is ``keyed_by`` the
    working set reads the curve at the paying op's mean of input and output elements, in the fusion
    pairs and in the network alike; one without the key reads it at the tensor's size."""
    from shufflenet_edge.predict.layout import keyed, pair_reorders, reorder_ms, working_set
    from shufflenet_edge.predict.predictor import reorders_saved

    cv = [[1e5, 0.1], [6e5, 0.1], [1.3e6, 0.3], [5e6, 0.4]]
    expand = {"kind": "conv1x1", "cin": 16, "cout": 96, "h": 112, "w": 112, "k": 1, "stride": 1, "pad": 0, "groups": 1}
    dw = {"kind": "dwconv", "cin": 96, "cout": 96, "h": 112, "w": 112, "k": 3, "stride": 2, "pad": 1, "groups": 96}
    tensor = 96 * 112 * 112
    assert working_set(expand) == (16 + 96) * 112 * 112 / 2
    assert reorder_ms(tensor, cv, working_set(expand)) < 0.6 * reorder_ms(tensor, cv)
    assert reorder_ms(tensor, cv, tensor) == reorder_ms(tensor, cv)
    assert reorder_ms(tensor, 0.2, 10.0) == pytest.approx(0.2 * tensor / 1e6)  # a constant has no curve to read
    by_ws = pair_reorders(expand, dw, cv, 16, by_working_set=True)
    assert by_ws == pytest.approx(reorder_ms(tensor, cv, working_set(expand)) + reorder_ms(tensor, cv, working_set(dw)))
    assert by_ws < pair_reorders(expand, dw, cv, 16)
    ops = model_ops("mobilenet_v2", 224)
    kernels = fusion.merge(ops, [1.0] * len(ops), {(k, "relu6"): 1.0 for k in ("conv", "conv1x1", "dwconv")})
    old, new = reorders_saved(ops, kernels, cv, 16), reorders_saved(ops, kernels, cv, 16, by_working_set=True)
    first = next(i for i, k in enumerate(kernels) if k["kind"] == "conv1x1+relu6")  # the 16 -> 96 at 112x112
    assert new[first] < 0.8 * old[first] and sum(new) < sum(old)
    assert keyed({"keyed_by": "working_set"}) and not keyed({}) and not keyed(None)


def test_nchwc_reorders_between_blocked_kernels_are_spared():
    """Between two NCHWc kernels a network reorders nothing, though each one-op model paid for it:
    MobileNet v1's convs chain in NCHWc and are spared, a grouped conv with 12 channels per group
    (NCHW) and the fc are not; no measured reorder cost, no change."""
    from shufflenet_edge.predict.layout import pair_reorders
    from shufflenet_edge.predict.predictor import reorders_saved

    ops = model_ops("mobilenet_v1_0.5x", (224, 224))
    relu_fused = {(k, "relu"): 1.0 for k in ("conv", "conv1x1", "dwconv")}  # a ReLU kernel between would run NCHW
    kernels = fusion.merge(ops, [1.0] * len(ops), relu_fused)
    saved = reorders_saved(ops, kernels, 0.2)
    convs = [i for i, k in enumerate(kernels) if k["kind"] in ("conv1x1", "dwconv")]
    assert all(saved[i] > 0 for i in convs[1:]) and all(s <= 0.5 * k["cost"] for s, k in zip(saved, kernels))
    assert saved[[k["kind"] for k in kernels].index("fc")] == 0
    assert reorders_saved(ops, kernels, 0.0) == [0.0] * len(kernels)
    v1 = model_ops("v1_g8", (224, 224))
    kv1 = fusion.merge(v1, [1.0] * len(v1), {})
    odd = [i for i, k in enumerate(kv1) if k["kind"] == "gconv1x1" and v1[[o.name for o in v1].index(k["ops"][0])].cin == 96]
    assert odd and all(reorders_saved(v1, kv1, 0.2)[i] == 0 for i in odd)
    a, b = _spec("conv1x1", 64), _spec("dwconv", 64, k=3, stride=1, pad=1, groups=64)
    assert pair_reorders(a, b, 0.2) == pytest.approx(2 * 0.2e-6 * 64 * 28 * 28)  # both one-op models paid one
    assert pair_reorders(a, _spec("add", 64), 0.2) == pytest.approx(-0.2e-6 * 64 * 28 * 28)  # the chain paid one
    assert pair_reorders(_spec("conv1x1", 58), b, 0.2) == 0.0  # a 58-channel conv runs NCHW
