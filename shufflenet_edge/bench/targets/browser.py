"""``--device browser``: the exported file runs in a web browser (the demo page, WebAssembly on
the phone's or PC's CPU) and the page reports its timings back to a server started here.

Nothing can push a page onto a phone, so the target prints the URL and waits for the person
(or a test's headless Chromium) to open it and press ``Run benchmark``.
"""
from __future__ import annotations

import sys

from ...errors import UsageError
from .base import RunSpec, Target, TargetError, register_target

DEFAULT_WAIT_S = 600.0


@register_target("browser")
class BrowserTarget(Target):
    name = "browser"
    emulated = False
    options = ("wait", "host", "port", "out", "https")
    url_help = "browser"

    @classmethod
    def from_url(cls, url: str, **options) -> BrowserTarget:
        return cls(**options)

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats the demo page has a runtime for."""
        from ...export.formats import FORMATS

        return tuple(f.name for f in FORMATS.values() if f.browser_engine)

    def __init__(self, wait=None, host=None, port=None, out=None, https=False):
        self.wait = DEFAULT_WAIT_S if wait is None else float(wait)
        if self.wait <= 0:
            raise UsageError(f"bad --wait {wait}: must be > 0 seconds")
        self.host = host or "127.0.0.1"
        self.port = 8000 if port is None else int(port)
        self.out = out  # None: the demo server's default, browser-results/ beside the file
        self.https = bool(https)
        self.server = None
        self.url: str | None = None  # the page to open, once run() has started the server

    def run(self, spec: RunSpec) -> list[dict]:
        from ...demo import DemoServer

        if not spec.is_file:
            raise UsageError("--device browser runs an exported .onnx/.tflite file, not --format torch")
        if len(spec.threads) != 1:
            raise UsageError("--device browser takes one thread count per run (a page's WASM thread pool is fixed)")
        if spec.batch != 1 or spec.profile or spec.cpus:
            raise UsageError("--device browser runs batch 1 without --profile or --cpus")
        artifact = spec.file("").path.resolve()
        self.server = DemoServer(artifact.parent, host=self.host, port=self.port, https=self.https, out=self.out)
        self.server.start()
        query = {"model": artifact.name, "threads": spec.threads[0], "runs": spec.runs, "warmup": spec.warmup,
                 "rounds": spec.rounds}
        url = self.url = self.server.phone_url(**query) or self.server.url(**query)
        print(f"open {url} in the browser to measure and press 'Run benchmark' (waiting up to {self.wait:g} s; "
              f"a phone over USB: adb reverse tcp:{self.server.port} tcp:{self.server.port})",
              file=sys.stderr, flush=True)
        records = self.server.wait_for_report(artifact.name, self.wait)
        if not records:
            raise TargetError(f"no benchmark report for {artifact.name} from a browser within {self.wait:g} s "
                              f"(open {url} and press 'Run benchmark')")
        return [dict(r, device=dict(r["device"])) for r in records]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
