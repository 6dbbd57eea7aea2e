"""`edge bench`: a thin layer over ``shufflenet_edge.bench.bench``."""
from __future__ import annotations

import click

from ..bench import INFERENCE_PRECISIONS, bench_formats
from ..bench.targets import target_choices
from ..export.formats import LAYOUTS, PRECISIONS, SUFFIXES
from ..runtime.engines import ENGINES
from .app import main
from .options import INPUT_SIZE, console, print_json


@main.command("bench")
@click.option("--model", default=None, help="Model name: exported on the fly into a cache (~/.cache/shufflenet-edge).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="PyTorch checkpoint for --model.")
@click.option("--format", "fmt", type=click.Choice(bench_formats()), default="onnx", show_default=True,
              help="torch = PyTorch eager (host only).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--artifact", type=click.Path(dir_okay=False), default=None,
              help=f"Benchmark this {'/'.join(SUFFIXES)} file.")
@click.option("--device", type=click.Choice(["host", "arm", "browser"]), default="host", show_default=True,
              help="arm without --target: local on aarch64, else $EDGE_ARM_TARGET, else qemu (emulated).")
@click.option("--target", default=None, help=target_choices().replace(", ", " | "))
@click.option("--threads", default="1", show_default=True, help="Comma-separated thread counts, e.g. 1,2,4.")
@click.option("--runs", type=int, default=None,
              help="Fixed number of timed runs [default: measure until the median's 95% CI is within +-2% or "
                   "--max-seconds are spent; 100 on a phone or in a browser, 5 under qemu].")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Time budget per file for measuring until stable [default: 8].")
@click.option("--warmup", type=int, default=None, help="Warm-up runs [default: 10; 1 under qemu].")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Interleaved rounds the runs are split into (a noisy machine shows as spread between rounds).")
@click.option("--input-size", type=INPUT_SIZE, default=None, help="H or HxW for --model, or for an --artifact whose metadata does not give it.")
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Classes for --model.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--layout", type=click.Choice(LAYOUTS), default="nchw", show_default=True)
@click.option("--engine", default=None,
              help=f"{' | '.join(n for n in ENGINES if n != 'torch')} (default: the file's own, first installed).")
@click.option("--inference-precision", type=click.Choice(INFERENCE_PRECISIONS), default=None,
              help="OpenVINO only: f32 (pinned by default) or bf16 where the CPU has it.")
@click.option("--cpus", default=None, help="Pin to these cores (taskset list, e.g. 4-7).")
@click.option("--remote-python", default=None, help="python3 on an ssh board (default: python3).")
@click.option("--benchmark-binary", type=click.Path(dir_okay=False), default=None,
              help="TFLite's benchmark_model for android_aarch64 (adb targets).")
@click.option("--wait", type=float, default=None, help="--device browser: seconds to wait for the page's report.")
@click.option("--profile", is_flag=True, help="Per-op breakdown (ONNX Runtime / PyTorch profiler).")
@click.option("--formats", default=None,
              help="Sweep: all (or a list, e.g. onnx,ncnn): every format x precision x engine, checked, one table.")
@click.option("--precisions", default=None, help="Sweep: precisions to include (default: all the table offers).")
@click.option("--data", default=None, help="Sweep: also top-1 accuracy on this data spec (e.g. digits).")
@click.option("--calib", default=None, help="Sweep: int8 calibration data (default: --data for a trained checkpoint).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of records.")
@click.option("--wide", is_flag=True, help="Show every table column, however wide.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None,
              help="Append the records to this JSON list (schema: shufflenet_edge/record.schema.json).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, hidden=True,
              help="Deprecated spelling of --json-out.")
def bench_command(model, checkpoint, fmt, precision, artifact, device, target, threads, runs, max_seconds, warmup, rounds,
                  input_size, num_classes, batch, layout, engine, inference_precision, cpus, remote_python,
                  benchmark_binary, wait, profile, formats, precisions, data, calib, as_json, wide, json_out, out):
    """Latency of MODEL (exported on the fly) or of an --artifact file, on this host or an ARM device.

    With --formats: the sweep of every format, precision and engine for MODEL (see bench/sweep.py)."""
    if formats or precisions or data:
        return _sweep(model, checkpoint, formats, precisions, data, calib, input_size, num_classes, runs,
                      max_seconds, artifact, device, as_json)
    from ..bench import bench
    from ..bench.report import summary_lines, terminal_rows

    if out and not json_out:
        click.echo("note: --out FILE is deprecated for edge bench (--out names a folder elsewhere): "
                   "use --json-out FILE", err=True)
    json_out = json_out or out
    records = bench(model=model, format=fmt, precision=precision, artifact=artifact, checkpoint=checkpoint,
                    device=device, target=target, threads=threads, runs=runs, warmup=warmup, rounds=rounds,
                    input_size=input_size, batch=batch, cpus=cpus, remote_python=remote_python,
                    benchmark_binary=benchmark_binary, profile=profile, json_out=json_out, engine=engine,
                    num_classes=num_classes, layout=layout, wait=wait, max_seconds=max_seconds,
                    inference_precision=inference_precision)
    if as_json:
        print_json(records)
        return
    import textwrap

    from ..tables import print_table

    con = console()
    print_table(*terminal_rows(records), wide=wide, out=con)
    for line in summary_lines(records):
        click.echo(textwrap.fill(line, width=max(40, min(con.width, 100)), subsequent_indent="  "))
    for r in records:
        prof = r.get("profile")
        if not prof:
            continue
        if "error" in prof:
            con.print(f"profile ({r['engine']}): {prof['error']}")
            continue
        parts = ", ".join(f"{g} {v['share']:.0%} ({v['ms']:.2f} ms)" for g, v in prof["groups"].items())
        con.print(f"per-op, {r['engine']} {r['threads']} thread(s) [{prof['source']}]: {parts}")
    if json_out:
        con.print(f"records appended to {json_out}")


def _sweep(model, checkpoint, formats, precisions, data, calib, input_size, num_classes, runs, max_seconds,
           artifact, device, as_json):
    from ..bench.sweep import sweep, table_lines
    from ..errors import UsageError

    if artifact or device != "host":
        raise UsageError("--formats sweeps a --model on this host (no --artifact, no --device)")
    if model is None and checkpoint is None:
        raise UsageError("--formats needs --model NAME (and --checkpoint FILE for accuracy)")
    result = sweep(model, checkpoint=checkpoint, formats=formats or "all", precisions=precisions, data=data,
                   calib=calib, input_size=input_size, num_classes=num_classes, runs=runs, max_seconds=max_seconds,
                   progress=None if as_json else (lambda msg: click.echo(msg, err=True)))
    if as_json:
        print_json(result["records"])
        return
    for line in table_lines(result):
        click.echo(line)
