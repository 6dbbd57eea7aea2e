"""`edge demo`: serve the on-device web app and the exported models (see shufflenet_edge.demo)."""
from __future__ import annotations

import sys

import click

from .app import main


def print_qr(url: str) -> None:
    """The URL as a QR code in the terminal (two rows per character), for a phone's camera."""
    import qrcode

    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(url)
    qr.make(fit=True)
    qr.print_ascii(out=sys.stdout, invert=True)


@main.command("demo")
@click.option("--models", "models_dir", type=click.Path(file_okay=False), default="exports", show_default=True,
              help="Directory of exported .onnx/.tflite files (each with its <file>.json sidecar).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets a phone on the same network connect.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--https", is_flag=True, help="TLS with a cached self-signed certificate (camera and WASM threads "
              "need a secure context on a phone that is not using adb reverse).")
@click.option("--results-dir", "--out", "out", type=click.Path(file_okay=False), default=None,
              help="Where `Run benchmark` reports are stored as edge bench records, and read back to open the "
              "page on the fastest file.  [default: <--models>/browser-results]")
@click.option("--model", "select", default=None, help="Open the page on this file of --models (default: the "
              "fastest by the latest browser report, else int8 TFLite, int8 ONNX, fp32 TFLite, fp32 ONNX, the rest; "
              "dynamic-range last).")
@click.option("--no-qr", is_flag=True, help="Do not print the QR code.")
def demo_command(models_dir, host, port, https, out, select, no_qr):
    """Serve the on-device demo (WebAssembly inference in the browser) and collect its benchmarks.

    \b
    Phone over USB:  adb reverse tcp:8000 tcp:8000, then open http://localhost:8000 on the phone
    Phone on Wi-Fi:  edge demo --host 0.0.0.0 --https, then scan the QR code
    """
    from ..demo import DemoServer

    def reported(rec, saved):
        lat = rec["latency_ms"]
        click.echo(f"report: {rec['model']} {rec['format']} {rec['precision']} {rec['engine']} "
                   f"{rec['threads']} thread(s): p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms "
                   f"({rec['runs']} runs) -> {saved}", err=False)

    server = DemoServer(models_dir, host=host, port=port, https=https, out=out, on_report=reported)
    if select:
        server.check_model(select)
    server.start()
    try:
        click.echo(f"serving {server.models_dir} at {server.url(model=select)}")
        click.echo(f"browser reports go to {server.out} (--results-dir)")
        for left in server.left_out():
            click.echo(f"not offered: {left['file']}: {left['reason']}", err=True)
        phone = server.phone_url(model=select)
        if phone:
            click.echo(f"on a phone on this network: {phone}")
        else:
            click.echo(f"on a phone over USB: adb reverse tcp:{server.port} tcp:{server.port}, "
                       f"then open {server.url('localhost', model=select)}")
        if not no_qr:
            print_qr(phone or server.url("localhost", model=select))
        click.echo("press Ctrl-C to stop", err=True)
        sys.stdout.flush()
        server.join()
    except KeyboardInterrupt:  # the normal way to stop a server: not an error
        click.echo("stopped", err=True)
    finally:
        server.close()
