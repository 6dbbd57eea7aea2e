"""The demo's HTTP(S) server: static app, npm runtimes, models, and the report endpoint.

Every response carries COOP/COEP (cross-origin isolation: SharedArrayBuffer, hence WASM
threads); nothing is served from outside the app, the runtimes' package folders or the models
directory.
"""
from __future__ import annotations

import json
import mimetypes
import socket
import ssl
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from ..errors import UsageError
from .paths import inside
from .reports import DEFAULT_OUT, MAX_BODY, ReportError, build_record, save_record

APP_DIR = Path(__file__).resolve().parents[2] / "android_demo"
APP_FILES = ("index.html", "sw.js", "manifest.webmanifest", "src/", "icons/")
# URL name -> the npm package folder it serves (whole package: tfjs-tflite keeps its WASM outside dist/)
VENDOR = {"onnxruntime-web": "onnxruntime-web/dist", "tfjs-core": "@tensorflow/tfjs-core/dist",
          "tfjs-tflite": "@tensorflow/tfjs-tflite"}
RUNTIME_PACKAGES = {"onnxruntime-web": "onnxruntime-web", "tfjs-tflite": "@tensorflow/tfjs-tflite"}
MODEL_SUFFIXES = (".onnx", ".tflite")
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".webmanifest": "application/manifest+json", ".json": "application/json", ".onnx": "application/octet-stream",
         ".tflite": "application/octet-stream", ".png": "image/png", ".css": "text/css", ".html": "text/html"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin", "X-Content-Type-Options": "nosniff"}


def _versions() -> dict:
    out = {}
    for engine, pkg in RUNTIME_PACKAGES.items():
        try:
            out[engine] = json.loads((APP_DIR / "node_modules" / pkg / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            out[engine] = ""
    return out


def list_models(models_dir: Path) -> list[dict]:
    from ..runtime.engines import EngineError, load_sidecar

    models = []
    for path in sorted(p for p in models_dir.rglob("*") if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()):
        rel = path.relative_to(models_dir).as_posix()
        try:
            meta = load_sidecar(path) or None
        except EngineError:
            meta = None  # the page says the metadata is unreadable
        models.append({"file": rel, "url": f"/models/{rel}", "format": path.suffix.lower()[1:],
                       "size_bytes": path.stat().st_size, "metadata": meta})
    return models


class _Handler(BaseHTTPRequestHandler):
    server_version = "shufflenet-edge-demo"
    protocol_version = "HTTP/1.1"

    @property
    def demo(self) -> DemoServer:
        return self.server.demo  # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # the CLI prints what matters (reports), not every request
        if self.demo.verbose:
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def _send(self, status: int, body: bytes, ctype: str, head_only: bool = False):
        self.send_response(status)
        for k, v in ISOLATION.items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _json(self, status: int, obj, head_only: bool = False):
        self._send(status, (json.dumps(obj) + "\n").encode(), "application/json", head_only)

    def _file(self, path: Path | None, head_only: bool):
        if path is None:
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"}, head_only)
        ctype = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, path.read_bytes(), ctype, head_only)

    def _resolve(self, route: str) -> Path | None:
        if route in ("/", "/index.html"):
            return APP_DIR / "index.html"
        if route == "/favicon.ico":
            return APP_DIR / "icons" / "icon-192.png"
        if route.startswith("/models/"):
            path = inside(self.demo.models_dir, route[len("/models/"):])
            return path if path is not None and path.name.endswith((*MODEL_SUFFIXES, ".json")) else None
        if route.startswith("/vendor/"):
            name, _, rest = route[len("/vendor/"):].partition("/")
            pkg = VENDOR.get(name)
            return inside(APP_DIR / "node_modules" / pkg, rest) if pkg else None
        rel = route.lstrip("/")
        for entry in APP_FILES:
            if entry.endswith("/") and rel.startswith(entry):
                return inside(APP_DIR / entry, rel[len(entry):])  # its own folder, not the whole app dir
            if rel == entry:
                return APP_DIR / entry
        return None

    def do_GET(self, head_only: bool = False):
        route = urlsplit(self.path).path
        if route == "/api/models":
            return self._json(HTTPStatus.OK, {"models": list_models(self.demo.models_dir), "runtimes": _versions(),
                                              "models_dir": str(self.demo.models_dir)}, head_only)
        return self._file(self._resolve(route), head_only)

    def do_HEAD(self):
        self.do_GET(head_only=True)

    def do_POST(self):
        if urlsplit(self.path).path != "/api/report":
            return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            return self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
        if int(length) > self.demo.max_body:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              {"error": f"report larger than {self.demo.max_body} bytes"})
        try:
            report = json.loads(self.rfile.read(int(length)) or b"null")
            record = build_record(report, self.demo.models_dir)
        except ValueError as exc:  # ReportError is a UsageError, not a ValueError
            return self._json(HTTPStatus.BAD_REQUEST, {"error": f"not JSON: {exc}"})
        except ReportError as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        saved = self.demo.accept(record)
        self._json(HTTPStatus.OK, {"saved": str(saved), "latency_ms": record["latency_ms"]})


class DemoServer:
    """Serves ``android_demo/`` and ``models_dir``; ``port=0`` picks a free port."""

    def __init__(self, models_dir="exports", host: str = "127.0.0.1", port: int = 8000, https: bool = False,
                 out=DEFAULT_OUT, max_body: int = MAX_BODY, on_report=None, verbose: bool = False):
        self.models_dir = Path(models_dir).resolve()
        if not self.models_dir.is_dir():
            raise UsageError(f"models directory not found: {models_dir}")
        if not (APP_DIR / "node_modules" / "onnxruntime-web").is_dir():
            raise UsageError(f"the demo's npm packages are not installed: run `npm ci` in {APP_DIR} "
                             "(scripts/setup.sh does)")
        self.host, self.port, self.https = host, int(port), bool(https)
        self.out, self.max_body, self.on_report, self.verbose = Path(out), int(max_body), on_report, verbose
        self.records: list[dict] = []
        self._cond = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> DemoServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        cls = type("DemoHTTPServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        try:
            httpd = cls((self.host, self.port), _Handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        httpd.demo = self  # type: ignore[attr-defined]
        if self.https:
            from .tls import certificate

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*certificate(self.host))
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, name="edge-demo", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def join(self) -> None:
        """Block until the server is closed (Ctrl-C in the caller's thread still interrupts)."""
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> DemoServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc) -> None:
        self.close()

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

    # -- reports ---------------------------------------------------------------------------
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


def lan_address() -> str | None:
    """This machine's address on its default route (no packet is sent: UDP connect only picks a route)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never reached, only routed
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip
