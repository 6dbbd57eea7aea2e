"""report.md and PNG plots (matplotlib, Agg backend) from the analysed studies."""
from __future__ import annotations

from pathlib import Path

from . import fit, intervals, paper

_RES_COLORS = {"224x224": "tab:blue", "480x640": "tab:orange", "720x1280": "tab:red"}
_GROUP_COLORS = {"pointwise conv": "#1f77b4", "depthwise conv": "#aec7e8", "other conv": "#17becf",
                 "channel shuffle": "#d62728", "split/concat": "#ff9896", "element-wise": "#2ca02c",
                 "pooling": "#98df8a", "fc": "#9467bd", "layout reorder": "#ff7f0e",
                 "quantize/dequantize": "#ffbb78", "other": "#7f7f7f"}


def _estimated(results: dict) -> str:
    """The progress bar's estimate beside the real duration (conversion + timing), where recorded."""
    est = results.get("estimated_s")
    if not est:
        return ""
    return f"; estimated {est['conversion'] / 60:.1f} min converting + {est['timing'] / 60:.1f} min timing"


def _sz(size) -> str:
    return f"{size[0]}x{size[1]}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    from ..io_utils import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    _plt().close(fig)
    return path.name


def _unit_label(unit: str) -> str:
    return "instructions per inference (ISA cost, not time)" if unit == "instructions" else "p50 latency (ms)"


def _plot_each(study: dict, figure, stem: str, out: Path) -> list[str]:
    """One PNG per (format, precision, threads) among ``study``'s rows."""
    return [_save(figure(study, f, p, t), out / f"{stem}_{f}_{p}_t{t}.png")
            for f, p, t in sorted({(r["format"], r["precision"], r["threads"]) for r in study["rows"]})]


def plot_table8(t8: dict, out: Path) -> list[str]:
    """Log-log MACs vs cost per (format, precision, threads): points, fitted lines, the paper's points."""
    return _plot_each(t8, table8_figure, "table8", out)


def table8_figure(t8: dict, f: str, p: str, t: int):
    """One Table 8 plot; point labels placed so that none overlaps another (``labels.place_labels``)."""
    import numpy as np

    from .labels import place_labels

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    to_label = []
    for fitd in t8["fits"]:
        if (fitd["format"], fitd["precision"], fitd["threads"]) != (f, p, t):
            continue
        res = _sz(fitd["input_size"])
        color = _RES_COLORS.get(res, "k")
        pts = [r for r in t8["rows"] if (r["format"], r["precision"], r["threads"]) == (f, p, t)
               and _sz(r["input_size"]) == res]
        for r in pts:
            ax.scatter(r["macs"] / 1e6, r["cost"], color=color, marker="o" if r["table8"] else "s", zorder=3)
            to_label.append((r["macs"] / 1e6, r["cost"], r["model"]))
        xs = np.geomspace(min(r["macs"] for r in pts), max(r["macs"] for r in pts), 20)
        ax.plot(xs / 1e6, fitd["a"] * xs ** fitd["k"], color=color,
                label=f"{res} here: k={fitd['k']:.2f} (4x -> {fitd['speedup_per_4x']:.1f}x)")
    if t8["unit"] == "ms":
        for i, size in enumerate(paper.RESOLUTIONS):
            res = _sz(size)
            if not any(_sz(fd["input_size"]) == res for fd in t8["fits"]):
                continue
            # Table 8 gives MFLOPs at 224 only: place its points at that count scaled by the pixel ratio
            # (a constant factor per resolution, so the fitted slope is the published points' own)
            mf = [v["mflops"] * size[0] * size[1] / 224 ** 2 for v in paper.TABLE8.values()]
            ms = [v["ms"][i] for v in paper.TABLE8.values()]
            pf = fit.fit_power_law(mf, ms)
            ax.scatter(mf, ms, facecolors="none", edgecolors=_RES_COLORS.get(res, "k"), marker="^", zorder=3)
            xs = np.geomspace(min(mf), max(mf), 20)
            ax.plot(xs, pf["a"] * xs ** pf["k"], color=_RES_COLORS.get(res, "k"), linestyle="--",
                    label=f"{res} paper (SD 820, MFLOPs x pixels/224^2): k={pf['k']:.2f} (4x -> {pf['speedup_per_4x']:.1f}x)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel(_unit_label(t8["unit"]))
    ax.set_title(f"v1 Table 8 models: {f} {p}, {t} thread(s) (squares: v2 block, triangles: paper)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    place_labels(ax, to_label)
    return fig


def plot_guidelines(gl: dict, out: Path) -> list[str]:
    """Per guideline: each row's speed relative to the table's first row, here (per multiplier) and on ARM."""
    return _plot_each(gl, guidelines_figure, "guidelines", out)


def guidelines_figure(gl: dict, f: str, p: str, t: int):
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    for ax, g in zip(axes, ("G1", "G2", "G3", "G4")):
        variants = [row["variant"] for row in paper.GUIDELINES[g]["rows"]]
        series = []
        mults = sorted({r["multiplier"] for r in gl["rows"] if r["guideline"] == g})
        for m in mults:
            rs = {r["variant"]: r for r in gl["rows"] if (r["guideline"], r["format"], r["precision"],
                                                           r["threads"], r["multiplier"]) == (g, f, p, t, m)}
            if variants[0] in rs:
                base = rs[variants[0]]["cost"]
                series.append((f"here x{m}", [base / rs[v]["cost"] if v in rs else 0 for v in variants]))
        arm = [paper.paper_arm_img_s(g, v, 1) for v in variants]
        series.append(("paper ARM x1", [a / arm[0] for a in arm]))
        width = 0.8 / len(series)
        for i, (label, vals) in enumerate(series):
            ax.bar([x + i * width for x in range(len(variants))], vals, width, label=label,
                   color="0.6" if label.startswith("paper") else None)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(variants))])
        # up to five names side by side in a quarter of the figure: rotated far enough not to touch
        ax.set_xticklabels(variants, fontsize=7, rotation=35, ha="right", rotation_mode="anchor")
        ax.axhline(1.0, color="k", linewidth=0.5)
        ax.set_title(f"{g}: {paper.GUIDELINES[g]['title']}", fontsize=8)
        ax.set_ylabel(f"speed relative to {variants[0]}", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(f"v2 guideline micro-benchmarks, {f} {p}, {t} thread(s)", fontsize=10)
    return fig


def plot_profiles(profiles: list[dict], out: Path) -> list[str]:
    """Stacked per-op shares per model (the v2 paper's Figure 2 view)."""
    plt = _plt()
    files = []
    for key in sorted({(x["format"], x["precision"], x["threads"], _sz(x["input_size"])) for x in profiles}):
        items = [x for x in profiles if (x["format"], x["precision"], x["threads"], _sz(x["input_size"])) == key]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(items) + 1.5))
        groups = [g for g in _GROUP_COLORS if any(g in x["groups"] for x in items)]
        left = [0.0] * len(items)
        for g in groups:
            vals = [x["groups"].get(g, {}).get("share", 0.0) * 100 for x in items]
            ax.barh(range(len(items)), vals, left=left, color=_GROUP_COLORS[g], label=g)
            left = [a + b for a, b in zip(left, vals)]
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels([x["model"] for x in items], fontsize=8)
        ax.set_xlabel("share of kernel time (%)")
        ax.set_xlim(0, 100)
        ax.set_title(f"per-op breakdown ({items[0]['source']}), {key[0]} {key[1]}, {key[2]} thread(s), {key[3]}",
                     fontsize=9)
        ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
        files.append(_save(fig, out / f"profile_{key[0]}_{key[1]}_t{key[2]}_{key[3]}.png"))
    return files


def plot_groups(gr: dict, out: Path) -> list[str]:
    plt = _plt()
    combos = sorted({(r["format"], r["precision"], r["threads"]) for r in gr["rows"]})
    if not combos:
        return []
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(combos)
    for i, (f, p, t) in enumerate(combos):
        rs = sorted((r for r in gr["rows"] if (r["format"], r["precision"], r["threads"]) == (f, p, t)),
                    key=lambda r: r["g"])
        base = next((r["cost"] for r in rs if r["g"] == 3), rs[0]["cost"])
        ax.bar([x + i * width for x in range(len(rs))], [r["cost"] / base for r in rs], width, label=f"{f} {p} t{t}")
    gs = sorted({r["g"] for r in gr["rows"]})
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(gs))])
    ax.set_xticklabels([f"g={g}" for g in gs])
    ax.axhline(1.0, color="k", linewidth=0.5)
    ax.set_ylabel(f"{'instructions' if gr['unit'] == 'instructions' else 'latency'} relative to g=3")
    ax.set_title("ShuffleNet v1 1x, group count (lower is faster)")
    ax.legend(fontsize=7)
    return [_save(fig, out / "v1_groups.png")]


# ---------------------------------------------------------------- markdown

def _f(x, nd=2, suffix="") -> str:
    if x is None:
        return "-"
    return f"{x:,.{nd}f}{suffix}"


def _cost(x, unit) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:,.1f} M" if unit == "instructions" else f"{x:.2f}"


def _table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""]


def law_phrase(fitd: dict, machine: str, engine: str, unit: str) -> str:
    if unit == "instructions":
        return (f"on {machine} ({engine}, emulated) every 4x theoretical reduction gives "
                f"{fitd['speedup_per_4x']:.1f}x fewer instructions per inference (an ISA cost figure, not latency)")
    return fit.law_sentence(fitd["k"], f"{machine} ({engine})")


def _iv(ci, nd=2, suffix="") -> str:
    return f" [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]{suffix}" if ci else ""


def noisy_summary(results: dict) -> str | None:
    """'NOISY RUN: 37 of 120 files noisy, load average 3.2-3.8 on 2 cores' (None if every file was stable)."""
    recs = [r for st in results.get("studies", {}).values() for j in st.get("jobs", []) for r in j.get("records", [])]
    bad = [r for r in recs if (r.get("stability") or {}).get("verdict") == "noisy"]
    if not bad:
        return None
    ld = results.get("load") or {}
    cores = ld.get("host_cores") or results.get("machine", {}).get("cores")
    load_s = f", load average {ld['min']:.1f}-{ld['max']:.1f} on {cores} cores" if "min" in ld else ""
    return f"NOISY RUN: {len(bad)} of {len(recs)} timed files noisy{load_s}"


def headline(results: dict) -> str | None:
    """"4x -> X.Xx [lo, hi] on <cpu>, <engine>" from the first Table 8 fit at 224 (ONNX fp32
    preferred), with its verdict against the paper; a noisy run says so first."""
    t8 = results.get("studies", {}).get("v1-table8", {}).get("analysis")
    if not t8 or not t8["fits"]:
        return None
    fits = sorted(t8["fits"], key=lambda d: (d["input_size"] != [224, 224], d["format"] != "onnx",
                                             d["precision"] != "fp32", d["threads"]))
    d = fits[0]
    eng = results["machine"].get("engines", {}).get(d["format"], d["format"])
    what = "fewer instructions (emulated ISA cost)" if t8["unit"] == "instructions" else "actual speedup"
    noisy = noisy_summary(results)
    return ((f"{noisy}: " if noisy else "")
            + f"4x -> {d['speedup_per_4x']:.1f}x{_iv(d.get('speedup_per_4x_ci'), 1)} {what} on "
            f"{results['machine']['cpu']}, {eng} {d['format']} {d['precision']}, {d['threads']} thread(s), "
            f"{_sz(d['input_size'])} (k = {d['k']:.2f}{_iv(d.get('k_ci'))}, R^2 {d['r2']:.2f}; paper: "
            f"~{paper.PAPER_SPEEDUP_PER_4X}x, k = {paper.PAPER_K:.2f}: {d.get('verdict', 'n/a')})")


def markdown(results: dict, plots: dict) -> str:
    m = results["machine"]
    s = results["settings"]
    L = [f"# ShuffleNet speed claims, reproduced on {m['cpu']} ({m['target']})", ""]
    if m.get("emulated"):
        L += ["**Emulated (qemu-aarch64).** Costs below are instructions per inference counted by a TCG plugin: "
              "a deterministic ARM-ISA cost figure, not latency. Fits are MACs vs instructions.", ""]
    hl = headline(results)
    if hl:
        L += [f"**Headline:** {hl}", ""]
    from ..runtime.timing import machine_summary

    L += [f"- machine: {machine_summary(m)}, governor {m.get('governor') or 'n/a'}, "
          f"{m.get('system', '')}, Python {m.get('python', '')}",
          f"- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
          f"- engines: " + ", ".join(f"{k}: {v}" for k, v in m.get("engines", {}).items()),
          f"- date: {results['started']} .. {results['finished']} ({results['duration_s'] / 60:.1f} min{_estimated(results)})",
          f"- load average (1 min) while running: {results['load']['min']:.1f} .. {results['load']['max']:.1f} "
          f"(start {results['load']['start']:.1f}); on {results['load'].get('host_cores') or m['cores']} host cores anything above ~1 means other work "
          "competed with the benchmark: compare ratios and fits, not absolute times",
          f"- settings: formats {','.join(s['formats'])}, precisions {','.join(s['precisions'])}, resolutions "
          f"{','.join(_sz(r) for r in s['resolutions'])}, threads {','.join(map(str, s['threads']))}, runs "
          f"{s['runs'] or _auto_runs(s)}, micro-benchmark multipliers "
          f"{','.join('x%d' % x for x in s['multipliers'])} in {','.join(s.get('guideline_precisions', ['fp32']))}"
          f"{', QUICK' if s['quick'] else ''}",
          f"- rerun: `{results['command']}`", ""]
    st = results["studies"]
    if "v1-table8" in st:
        L += _md_table8(st["v1-table8"]["analysis"], plots.get("v1-table8", []), m)
        if "variance" in st["v1-table8"]["analysis"]:
            L += _md_variance(st["v1-table8"]["analysis"]["variance"])
    if "v1-groups" in st:
        L += _md_groups(st["v1-groups"]["analysis"], plots.get("v1-groups", []))
    if "v2-guidelines" in st:
        L += _md_guidelines(st["v2-guidelines"]["analysis"], plots.get("v2-guidelines", []))
    if plots.get("profile"):
        L += ["## Per-op breakdown (v2 paper, Figure 2)", "",
              "Share of ONNX Runtime kernel time per op group (from `bench(..., profile=True)`), 224x224."
              + (" EMULATED: these are shares of emulated time, a rough picture of where the instructions go, "
                 "not ARM timings." if m.get("emulated") else "")
              + (" ONNX Runtime's FusedGemm (Gemm+ReLU: AlexNet's fc layers) falls in \"other\" in this grouping."
                 if _fused_gemm_is_other(results) else ""),
              ""]
        L += [f"![profile]({p})" for p in plots["profile"]] + [""]
    fails = results.get("failures", [])
    if fails:
        L += ["## Failures", "", "These files could not be exported or run; their rows are missing above.", ""]
        L += _table(["study", "job", "error"], [[x["study"], x["job"], x["error"]] for x in fails])
    return "\n".join(L) + "\n"


def _auto_runs(s: dict) -> str:
    if s.get("max_seconds"):
        return (f"until each file's median has a 95% CI within +-2% or {s['max_seconds']:g} s are spent "
                "(noisy files marked)")
    return "auto (~2.5 s of timing per file, 10..100)"


def _fused_gemm_is_other(results: dict) -> bool:
    for j in results["studies"].get("v1-table8", {}).get("jobs", []):
        for r in j.get("records", []):
            prof = r.get("profile") or {}
            if "FusedGemm" in prof.get("ops", {}) and "other" in prof.get("groups", {}):
                return True
    return False


def _md_table8(t8: dict, plots: list[str], m: dict) -> list[str]:
    unit = t8["unit"]
    L = ["## v1 Table 8: theoretical vs actual speedup", "",
         "Our MACs against the papers' MFLOPs, one column per table they come from (v1 Table 8 rounds 1x g=3 to "
         "140; its Table 1 gives 137, the v1-groups section's figure), our cost against the paper's Snapdragon 820 "
         "times (v2 block: 1000 / the v2 paper's Snapdragon 810 images/s, 224 only). A cost marked * came from a "
         "noisy file (see the record's stability).", ""]
    cols = sorted({(r["format"], r["precision"], r["threads"]) for r in t8["rows"]})
    for size in sorted({tuple(r["input_size"]) for r in t8["rows"]}):
        head = ["model", "MACs (M)", "v1 Table 8 MFLOPs", "v2 Table 5 MFLOPs"] + [
            f"{f} {p} t{t} {'insns' if unit == 'instructions' else 'ms'}" for f, p, t in cols] + ["paper ms"]
        rows = []
        for model in list(paper.TABLE8) + list(paper.V2_BLOCK):
            rs = {(r["format"], r["precision"], r["threads"]): r for r in t8["rows"]
                  if r["model"] == model and tuple(r["input_size"]) == size}
            if not rs:
                continue
            any_r = next(iter(rs.values()))
            rows.append([model, _f(any_r["macs"] / 1e6, 1), any_r.get("paper_mflops_v1_table8", "-"),
                         any_r.get("paper_mflops_v2_table5", "-")]
                        + [_cost(rs[c]["cost"], unit) + ("*" if rs[c].get("noisy") else "") if c in rs else "-"
                           for c in cols] + [_f(any_r["paper_ms"], 1)])
        L += [f"### {_sz(size)}", ""] + _table(head, rows)
    L += ["### Fitted laws (cost = a * MACs^k over the five Table 8 models)", "",
          "Intervals: 95% bootstrap over each file's timed runs. Verdict against the paper's ~2.6x: **agrees** = "
          "2.6 inside our interval; **faster** / **slower** = a 4x smaller model gains more / less here; "
          f"**inconclusive** = the interval is wider than +-{intervals.LAW_MAX_HALFWIDTH}x.", ""]
    rows = [[_sz(d["input_size"]), d["format"], d["precision"], d["threads"], f"{d['k']:.3f}{_iv(d.get('k_ci'), 3)}",
             f"{d['speedup_per_4x']:.2f}x{_iv(d.get('speedup_per_4x_ci'))}", f"{d['r2']:.3f}",
             f"**{d.get('verdict', 'n/a')}**"] for d in t8["fits"]]
    L += _table(["resolution", "format", "precision", "threads", "k [95% CI]", "4x -> [95% CI]", "R^2",
                 "vs paper"], rows)
    for d in t8["fits"]:
        eng = m.get("engines", {}).get(d["format"], d["format"])
        L.append(f"- {_sz(d['input_size'])}, {d['format']} {d['precision']}: "
                 f"{law_phrase(d, m['cpu'], eng, unit)}.")
    L += ["", f"The paper: \"every 4x theoretical complexity reduction usually results in ~{paper.PAPER_SPEEDUP_PER_4X}x "
          f"actual speedup\" (k = log 2.6 / log 4 = {paper.PAPER_K:.2f}). Fitting the published points the same way:", ""]
    rows = [[d["source"], _sz(d["resolution"]), f"{d['k']:.3f}", f"{d['speedup_per_4x']:.2f}x", f"{d['r2']:.3f}"]
            for d in t8["paper_fits"]]
    L += _table(["published points", "resolution", "k", "4x ->", "R^2"], rows)
    L += ["### The paper's ratios", "",
          "Theoretical speedup = MACs ratio, actual = cost ratio (paper columns: Table 8's MFLOPs and times).", ""]
    rows = [[_sz(x["input_size"]), x["format"], x["precision"], x["threads"], x["pair"], _f(x["theoretical"]) + "x",
             _f(x["actual"]) + "x" + _iv(x.get("actual_ci")), _f(x["paper_theoretical"]) + "x",
             _f(x["paper_actual"]) + "x", x.get("verdict", "n/a")] for x in t8["ratios"]]
    L += _table(["resolution", "format", "precision", "threads", "pair", "theoretical", "actual here [95% CI]",
                 "paper theoretical", "paper actual", "vs paper"], rows)
    L += [f"![table8]({p})" for p in plots] + [""]
    return L


def _md_variance(var: dict) -> list[str]:
    L = ["### What MACs explain, and what the kernel predictor explains", "",
         "R^2 of log cost across the five Table 8 models: for MACs the power law above (fitted on these very "
         "points), for the kernel predictor of `edge predict` a device profile made from micro-models only (no "
         "model here was timed to make it). RMSPE: root mean square of the relative errors.", ""]
    rows = [[_sz(g["input_size"]), g["format"], g["precision"], g["threads"], g["n"], _f(g["r2_macs"], 3),
             _f(g["r2_predictor"], 3), _f(100 * g["rmspe_macs"], 1, "%"), _f(100 * g["rmspe_predictor"], 1, "%")]
            for g in var.get("groups", [])]
    if rows:
        L += _table(["resolution", "format", "precision", "threads", "models", "R^2 MACs law", "R^2 kernel predictor",
                     "RMSPE MACs law", "RMSPE kernel predictor"], rows)
        L += [f"Profile: `{p}`" for p in sorted({g["profile"] for g in var["groups"]})] + [""]
    for miss in var.get("missing", []):
        L.append(f"- no kernel predictor for `{miss['profile']}` ({miss['why']}): make it with "
                 f"`{miss['make']}`.")
    if var.get("error"):
        L.append(f"- the kernel predictor failed: {var['error']}")
    return L + [""]


def _md_groups(gr: dict, plots: list[str]) -> list[str]:
    unit = gr["unit"]
    L = ["## v1 groups: g = 1, 2, 3, 4, 8 at 1x, 224x224", "",
         "The paper kept g = 3 over g = 4 and 8 for actual speed (accuracy is close: Table 2).", ""]
    cols = sorted({(r["format"], r["precision"], r["threads"]) for r in gr["rows"]})
    head = ["g", "MACs (M)", "v1 Table 1 MFLOPs", "top-1 err"] + [
        f"{f} {p} t{t}" + (" insns" if unit == "instructions" else " ms [95% CI]") for f, p, t in cols]
    rows = []
    for g in sorted({r["g"] for r in gr["rows"]}):
        rs = {(r["format"], r["precision"], r["threads"]): r for r in gr["rows"] if r["g"] == g}
        a = next(iter(rs.values()))
        rows.append([g, _f(a["macs"] / 1e6, 1), a["paper_mflops"], a["top1_err"]]
                    + [_cost(rs[c]["cost"], unit) + ("*" if rs[c].get("noisy") else "")
                       + (_iv(rs[c].get("cost_ci")) if unit == "ms" else "") if c in rs else "-" for c in cols])
    L += _table(head, rows)
    L += _table(["format", "precision", "threads", "fastest g", "g=3 / best of g=4,8", "verdict"],
                [[v["format"], v["precision"], v["threads"], v["fastest_g"], _f(v["g3_vs_best_of_4_8"], 3),
                  v["verdict"]] for v in gr["verdicts"]])
    L += [f"![groups]({p})" for p in plots] + [""]
    return L


def _md_guidelines(gl: dict, plots: list[str]) -> list[str]:
    unit = gl["unit"]
    L = ["## v2 guidelines G1-G4 (micro-benchmarks, 56x56, 10 blocks)", "",
         "Modules built to the paper's ARM channel settings (`shufflenet_edge/reproduce/guidelines.py` says how "
         "the G3/G4 blocks were read from the paper). Memory access cost = inputs + outputs + weights of every "
         "layer (complexity module), in M elements; G1/G2 also the paper's closed form. Every file reads its "
         "input through the same flatten/slice/reshape adapter (one feature-map copy, ~1-3% of a row's time). "
         f"Paper: {paper.GUIDELINES_DEVICE}, images/s.", ""]
    rate = "insns (M)" if unit == "instructions" else "img/s"
    for g in ("G1", "G2", "G3", "G4"):
        rs = [r for r in gl["rows"] if r["guideline"] == g]
        if not rs:
            continue
        L += [f"### {g}: {paper.GUIDELINES[g]['title']}", "", paper.GUIDELINES[g]["table"], ""]
        rows = [[f"x{r['multiplier']}", r["variant"], "/".join(map(str, r["channels"])), r["format"], r["precision"],
                 r["threads"], _f(r["macs"] / 1e6, 1), _f(r["memory_access"] / 1e6, 2),
                 _f(r["memory_access_closed_form"] / 1e6, 2) if r["memory_access_closed_form"] else "-",
                 _f(r["per_s"], 1) if unit == "ms" else _f(r["cost"] / 1e6, 1), _f(r["paper_arm_img_s"], 1)]
                for r in sorted(rs, key=lambda r: (r["format"], r["precision"], r["threads"], r["multiplier"]))]
        L += _table(["mult", "row", "channels", "format", "precision", "threads", "MACs (M)", "mem access (M)",
                     "closed form (M)", rate + " here", "paper ARM img/s"], rows)
        vs = [v for v in gl["verdicts"] if v["guideline"] == g]
        L += _table(["format", "precision", "threads", "mult", "paper's fastest", "fastest here",
                     "Kendall tau vs paper", "verdict"] + (["neither / both"] if g == "G4" else []),
                    [[v["format"], v["precision"], v["threads"], f"x{v['multiplier']}", v["paper_fastest"],
                      v["fastest_here"], _f(v["kendall_tau"]) + f" ({v['paper_basis']})", f"**{v['verdict']}**"]
                     + ([_f(v.get("neither_vs_both"), 2) + "x"] if g == "G4" else []) for v in vs])
    L += ["Verdict: **holds** = the paper's fastest row is fastest here (its 95% interval overlaps the fastest row's) "
          "and the "
          "order agrees (Kendall tau >= 0.5); **partly** = one of the two; else **does not hold**.", ""]
    L += [f"![guidelines]({p})" for p in plots] + [""]
    return L
