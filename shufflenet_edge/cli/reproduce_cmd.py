"""`edge reproduce`: a thin layer over ``shufflenet_edge.reproduce.reproduce``."""
from __future__ import annotations

import shlex
import sys

import click

from ..bench.targets import emulation_warning, target_choices
from ..export.formats import FORMATS, PRECISIONS
from .app import main

_STUDIES = ("v1-table8", "v2-guidelines", "v1-groups", "all")


def _csv(value: str, allowed: tuple, flag: str) -> tuple:
    from ..errors import UsageError

    items = tuple(x.strip().lower() for x in str(value).split(",") if x.strip())
    bad = [x for x in items if x not in allowed]
    if not items or bad:
        raise UsageError(f"bad {flag} '{value}': choose from {','.join(allowed)}")
    return items


def _resolutions(value: str) -> tuple:
    from ..errors import UsageError
    from ..models import parse_input_size

    out = []
    for item in str(value).split(","):
        if item.strip():
            out.append(tuple(parse_input_size(item.strip())))
    if not out:
        raise UsageError(f"bad --resolutions '{value}': use e.g. 224,480x640,720x1280")
    return tuple(out)


def _ints(value: str, flag: str) -> tuple:
    from ..errors import UsageError

    try:
        out = tuple(int(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise UsageError(f"bad {flag} '{value}': use a list like 1,2,4")
    return out


@main.command("reproduce")
@click.argument("study", type=click.Choice(_STUDIES))
@click.option("--device", type=click.Choice(["host", "arm"]), default="host", show_default=True,
              help="arm without --target: local on aarch64, else $EDGE_ARM_TARGET, else qemu (instruction counts).")
@click.option("--target", default=None, help=target_choices().replace(", ", " | "))
@click.option("--formats", default="onnx,tflite", show_default=True)
@click.option("--precisions", default="fp32,int8", show_default=True)
@click.option("--resolutions", default="224,480x640,720x1280", show_default=True,
              help="v1-table8 input sizes (v1-groups runs at 224, the micro-benchmarks at 56).")
@click.option("--threads", default="1", show_default=True, help="Comma-separated thread counts.")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Fixed timed runs per file [default: until the median's 95% CI is within +-2% or --max-seconds "
                   "are spent; 5 under qemu].")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Timing budget per file when measuring until stable.")
@click.option("--export-workers", type=click.IntRange(min=1), default=None,
              help="Conversion processes, all run before timing starts [default: one per core].")
@click.option("--multipliers", default="1,2,4", show_default=True, help="v2-guidelines channel multipliers.")
@click.option("--guideline-precisions", default="fp32", show_default=True,
              help="v2-guidelines precisions (the paper's micro-benchmarks are fp32; int8 adds ~1 min per file).")
@click.option("--quick", is_flag=True, help="ONNX fp32, 224 and x1 only, 10 runs (CI: a few minutes).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder [default: reports/<date>_<device>/].")
def reproduce_command(study, device, target, formats, precisions, resolutions, threads, runs, max_seconds,
                      export_workers, multipliers, guideline_precisions, quick, out):
    """Measure the papers' speed claims: STUDY is v1-table8, v2-guidelines, v1-groups or all."""
    from ..bench import parse_threads
    from ..reproduce import Settings, default_out, reproduce

    s = Settings(device=device, target=target, formats=_csv(formats, tuple(FORMATS), "--formats"),
                 precisions=_csv(precisions, PRECISIONS, "--precisions"),
                 resolutions=_resolutions(resolutions), threads=tuple(parse_threads(threads)), runs=runs,
                 quick=quick, multipliers=_ints(multipliers, "--multipliers"),
                 guideline_precisions=_csv(guideline_precisions, PRECISIONS, "--guideline-precisions"),
                 max_seconds=max_seconds, export_workers=export_workers)
    if emulation_warning(device, target):
        click.echo("warning: no ARM device given: running under qemu, costs are instruction counts (EMULATED)",
                   err=True)
    out = out or str(default_out(device, target))
    res = reproduce(study, s, out=out, command="edge " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    from ..reproduce.intervals import QUIETER
    from ..reproduce.report import headline, noisy_summary
    from ..tables import console

    con = console()
    say = lambda text: con.print(text, highlight=False, markup=False)  # wrapped at the terminal's width
    hl = headline(res)
    if hl:
        say(hl)
    if noisy_summary(res):
        say(f"for a quieter run: {QUIETER}")
    for n, st in res["studies"].items():
        for v in st["analysis"].get("verdicts", []):
            if "guideline" in v:
                say(f"{v['guideline']} x{v['multiplier']} {v['format']} {v['precision']}: {v['verdict']}")
            else:
                say(f"v1 groups {v['format']} {v['precision']}: {v['verdict']}")
    if res["failures"]:
        click.echo(f"{len(res['failures'])} file(s) failed; see the report's Failures section", err=True)
    click.echo(f"report: {out}/report.md")
