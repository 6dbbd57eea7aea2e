"""The demo's HTTP(S) server: the app, its runtimes, the models, and the report endpoint.

Every response carries COOP/COEP (cross-origin isolation: SharedArrayBuffer, hence WASM
threads), errors included. Nothing is served from outside the app folder or the models folder,
and from the models folder only what :mod:`.catalog` lists. Reports are accepted only from the
page itself (same origin, JSON). The HTTP layer (:mod:`.http11`) bounds what a client can hold.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import mimetypes
import ssl
import sys
import threading
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from ..errors import RuntimeFailure, UsageError
from ..export.formats import FORMATS, SUFFIXES
from .assets import APP_DIR, app_file, runtime_versions, runtimes_missing
from .catalog import default_choice, find, scan, served_file
from .http11 import QUIET, HTTPServer, Limits, Request, Response
from .net import lan_address
from .report_checks import ReportError, parse_report
from .reports import MAX_BODY, build_record, save_record

RESULTS_SUBDIR = "browser-results"  # default --results-dir, inside --models: beside the files it times
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".webmanifest": "application/manifest+json", ".json": "application/json", ".png": "image/png",
         ".css": "text/css", ".html": "text/html",
         **{s: "application/octet-stream" for f in FORMATS.values() for s in f.files}}  # every artifact file
ISOLATION = [("Cross-Origin-Opener-Policy", "same-origin"), ("Cross-Origin-Embedder-Policy", "require-corp"),
             ("Cross-Origin-Resource-Policy", "same-origin"), ("X-Content-Type-Options", "nosniff"),
             ("Cache-Control", "no-cache")]


def default_results_dir(models_dir) -> Path:
    return Path(models_dir) / RESULTS_SUBDIR


def json_response(status: int, obj) -> Response:
    return Response(int(status), [*ISOLATION, ("Content-Type", "application/json")], (json.dumps(obj) + "\n").encode())


def error_response(status: int, text: str) -> Response:
    return json_response(status, {"error": text})


def list_models(models_dir: Path, results_dir: Path) -> dict:
    """The ``/api/models`` answer: offered files with their metadata, what was left out and why,
    and the file the page opens on."""
    entries, skipped = scan(models_dir)
    models = [{"file": e.rel, "url": f"/models/{e.rel}", "format": e.format, "size_bytes": e.path.stat().st_size,
               "metadata": e.metadata, "verified": True} for e in entries]
    return {"models": models, "skipped": skipped, "default": default_choice(entries, results_dir),
            "runtimes": runtime_versions(), "models_dir": str(models_dir), "results_dir": str(results_dir)}


def cross_origin(request: Request) -> str | None:
    """Why a POST does not come from the page itself, or None. Browsers send ``Origin`` (and
    ``Sec-Fetch-Site``) on every POST; a client without them (curl, a script) is no CSRF risk."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site[:40]})"
    origin = request.headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme != request.scheme or parts.netloc.lower() != request.headers.get("host", "").lower():
            return f"cross-origin request refused (Origin: {origin[:100]})"
    return None


class DemoServer:
    """Serves the app and ``models_dir``; ``port=0`` picks a free port. Reports go to
    ``out`` (default ``<models_dir>/browser-results``)."""

    def __init__(self, models_dir="exports", host: str = "127.0.0.1", port: int = 8000, https: bool = False,
                 out=None, max_body: int = MAX_BODY, on_report=None, verbose: bool = False,
                 limits: Limits | None = None):
        self.models_dir = Path(models_dir).resolve()
        if not self.models_dir.is_dir():
            raise UsageError(f"models directory not found: {models_dir}")
        missing = runtimes_missing()
        if missing:
            raise UsageError(missing)
        self.host, self.port, self.https = host, int(port), bool(https)
        self.out = Path(out) if out is not None else default_results_dir(self.models_dir)
        self.on_report, self.verbose = on_report, verbose
        self.limits = limits or Limits(max_body_bytes=int(max_body))
        self.max_body = self.limits.max_body_bytes
        self.records: list[dict] = []
        self._cond = threading.Condition()
        self._http: HTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DemoServer:
        ctx = None
        if self.https:
            from .tls import certificate

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*certificate(self.host))
        self._http = HTTPServer(self._route, error_response, self.limits, ctx, self._log if self.verbose else None)
        bound: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(bound,), name="edge-demo", daemon=True)
        self._thread.start()
        try:
            self.port = bound.result()
        except OSError as exc:
            self._thread.join()
            self._thread = self._http = None
            raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        return self

    def _run(self, bound: concurrent.futures.Future) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(self._loop_error)
        try:
            try:
                bound.set_result(loop.run_until_complete(self._http.start(self.host, self.port)))
            except OSError as exc:
                bound.set_exception(exc)
                return
            loop.run_forever()
            loop.run_until_complete(self._http.close())
            rest = asyncio.all_tasks(loop)  # e.g. a connection accepted while closing
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        finally:
            loop.close()

    def _log(self, line: str) -> None:
        print(f"edge demo: {line}", file=sys.stderr, flush=True)

    def _loop_error(self, loop, context) -> None:
        """asyncio's own reports (a failed TLS handshake, accept() out of file descriptors): one line, no traceback."""
        exc = context.get("exception")
        if isinstance(exc, QUIET):
            if self.verbose:
                self._log(f"{context.get('message', 'connection error')}: {type(exc).__name__}")
            return
        self._log(f"{context.get('message', 'error')}{f': {type(exc).__name__}: {exc}' if exc else ''}")

    def close(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._http = None

    def join(self) -> None:
        """Block until the server is closed (Ctrl-C in the caller's thread still interrupts)."""
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> DemoServer:
        return self.start() if self._http is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- routes (on the event loop; blocking work goes to the bounded pool) -----------------
    async def _route(self, request: Request) -> Response:
        route = urlsplit(request.target).path
        if request.method == "POST":
            if route != "/api/report":
                return error_response(HTTPStatus.NOT_FOUND, "not found")
            return await self._report(request)
        if request.method not in ("GET", "HEAD"):
            return error_response(HTTPStatus.NOT_IMPLEMENTED, f"method {request.method[:20]} not supported")
        if route == "/api/models":
            return json_response(HTTPStatus.OK, await self._http.run_blocking(list_models, self.models_dir, self.out))
        if route.startswith("/models/"):
            path = await self._http.run_blocking(served_file, self.models_dir, route[len("/models/"):])
        else:
            path = app_file(route)
        if path is None or not path.is_file():
            return error_response(HTTPStatus.NOT_FOUND, "not found")
        ctype = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Response(HTTPStatus.OK, [*ISOLATION, ("Content-Type", ctype)], file=path)

    async def _report(self, request: Request) -> Response:
        refused = cross_origin(request)
        if refused:
            return error_response(HTTPStatus.FORBIDDEN, refused)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return error_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "a report must be sent as application/json")
        if "content-length" not in request.headers:
            return error_response(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        try:
            record, saved = await self._http.run_blocking(self._record, request.body)
        except ReportError as exc:
            return error_response(HTTPStatus.BAD_REQUEST, str(exc))
        except (OSError, RuntimeFailure) as exc:  # a full disk or read-only results folder: one line for the page
            return error_response(HTTPStatus.INTERNAL_SERVER_ERROR,
                                  f"cannot save the report in {self.out}: {getattr(exc, 'strerror', None) or exc}")
        return json_response(HTTPStatus.OK, {"saved": str(saved), "latency_ms": record["latency_ms"]})

    def _record(self, body: bytes) -> tuple[dict, Path]:
        record = build_record(parse_report(body), self.models_dir)
        return record, self.accept(record)

    # -- addresses -------------------------------------------------------------------------
    def url(self, host: str | None = None, **query) -> str:
        host = host or ("127.0.0.1" if self.host in ("0.0.0.0", "") else "[::1]" if self.host == "::" else self.host)
        qs = urlencode({k: v for k, v in query.items() if v is not None})
        return f"{'https' if self.https else 'http'}://{host}:{self.port}/{'?' + qs if qs else ''}"

    def phone_url(self, **query) -> str | None:
        """The address a phone on the same network opens (None when bound to loopback only)."""
        if self.host not in ("0.0.0.0", "", "::"):
            return None if self.host.startswith("127.") or self.host in ("localhost", "::1") else self.url(**query)
        ip = lan_address()
        return self.url(ip, **query) if ip else None

    # -- models and reports ----------------------------------------------------------------
    def left_out(self) -> list[dict]:
        """[{file, reason}] for the model files under ``models_dir`` the page does not offer."""
        return scan(self.models_dir)[1]

    def check_model(self, rel: str) -> None:
        """Refuse ``--model`` naming a file the page would not offer."""
        if find(self.models_dir, rel) is None:
            skipped = {s["file"]: s["reason"] for s in self.left_out()}
            why = skipped.get(rel, f"not a {'/'.join(SUFFIXES)} file there")
            raise UsageError(f"--model {rel}: not offered from {self.models_dir}: {why}")

    def accept(self, record: dict) -> Path:
        saved = save_record(record, self.out)
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()
        if self.on_report:
            self.on_report(record, saved)
        return saved

    def wait_for_report(self, artifact: str, timeout: float) -> list[dict]:
        """Records reported for the model file ``artifact`` (a name in the models dir); [] on timeout."""
        want = (self.models_dir / artifact).resolve()
        match = lambda: [r for r in self.records if Path(r["artifact"]) == want]  # noqa: E731
        with self._cond:
            self._cond.wait_for(match, timeout=timeout)
            return match()


__all__ = ["APP_DIR", "DemoServer", "default_results_dir", "lan_address", "list_models"]
