"""The demo server under hostile and unlucky clients (issue 18): every case found by hand, on
127.0.0.1 with real sockets and TLS, with short deadlines so each test ends by itself."""
from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from shufflenet_edge.demo import DemoServer
from shufflenet_edge.demo.assets import runtimes_missing
from shufflenet_edge.demo.http11 import Limits

pytestmark = pytest.mark.skipif(runtimes_missing() is not None, reason="demo runtimes not vendored (npm ci in android_demo/)")

FAST = Limits(head_timeout_s=1.0, body_timeout_s=1.0, handshake_timeout_s=1.0)
PARITY = {"max_abs_diff": 0.01, "cosine": 0.999, "top1_agreement": 1.0, "n": 8, "engine": "onnxruntime",
          "passed": True}  # what edge export writes once the check passed


def _export(path: Path, parity=PARITY, **meta) -> Path:
    """A model file and its sidecar as `edge export` writes them (the server never parses the model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x08\x07" + bytes(64))
    side = {"model": "v2_1.0x", "format": path.suffix[1:], "precision": "int8", "input_size": [32, 32],
            "labels": list("0123456789"), **meta}
    if parity is not None:
        side["parity"] = parity
    Path(f"{path}.json").write_text(json.dumps(side))
    return path


@pytest.fixture()
def models(tmp_path):
    d = tmp_path / "models"
    _export(d / "net.onnx")
    return d


@pytest.fixture()
def server(models, tmp_path):
    with DemoServer(models, port=0, out=tmp_path / "results", limits=FAST) as srv:
        yield srv


def _get(port, path="/api/models", *, https=False, timeout=10.0):
    if https:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _post(port, body: bytes, headers=None, path="/api/report", timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _report(**over) -> bytes:
    rep = {"artifact": "net.onnx", "engine": "onnxruntime-web", "runtime_version": "1.30.0", "threads": 1,
           "warmup": 3, "rounds_ms": [[2.0, 2.2], [2.4, 2.3]], "user_agent": "Test/1.0", "hardware_concurrency": 8,
           "platform": "Linux", "cross_origin_isolated": True, **over}
    return json.dumps(rep).encode()


def _served_within(port, seconds=2.0, https=False):
    t0 = time.monotonic()
    status, _, _ = _get(port, https=https, timeout=seconds)
    return status == 200 and time.monotonic() - t0 < seconds


def _saved(tmp_path) -> list[Path]:
    return sorted((tmp_path / "results").glob("*.json")) if (tmp_path / "results").is_dir() else []


# --- one client must not stall the others ----------------------------------------------------
def test_half_sent_headers_do_not_block_others_and_time_out(server):
    hostile = socket.create_connection(("127.0.0.1", server.port))
    hostile.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # ...and never the rest
    try:
        assert _served_within(server.port)
        hostile.settimeout(5)
        answer = hostile.recv(4096)  # the head deadline (1 s here) answers 408 and closes
        assert answer.startswith(b"HTTP/1.1 408 ") and b"Cross-Origin-Embedder-Policy" in answer
    finally:
        hostile.close()


def test_many_slow_clients_hold_sockets_not_the_server(server):
    """300 connections opened within 5 s, each sending half a head: others are still served."""
    hostile = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"POST /api/report HTTP/1.1\r\nContent-")
            hostile.append(s)
        assert _served_within(server.port)
    finally:
        for s in hostile:
            s.close()
    assert _served_within(server.port)  # ...and right after they all vanish


def test_half_sent_body_times_out(server, tmp_path):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        s.sendall(b"POST /api/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"artifact\": ")
        assert _served_within(server.port)
        assert s.recv(4096).startswith(b"HTTP/1.1 408 ")
    finally:
        s.close()
    assert _saved(tmp_path) == []


def test_oversized_head_is_refused(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 431 ")
    finally:
        s.close()


def test_https_idle_tcp_connection_does_not_block_others(models, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_CACHE_DIR", str(tmp_path / "cache"))
    with DemoServer(models, port=0, https=True, out=tmp_path / "results", limits=FAST) as srv:
        idle = socket.create_connection(("127.0.0.1", srv.port))  # no ClientHello, ever
        half = socket.create_connection(("127.0.0.1", srv.port))
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        half = ctx.wrap_socket(half, server_hostname="localhost")  # handshake done, then half a head
        half.sendall(b"GET / HTTP/1.1\r\nHo")
        try:
            assert _served_within(srv.port, https=True)
            idle.settimeout(5)
            assert idle.recv(1) == b""  # the handshake deadline (1 s here) drops it
        finally:
            idle.close()
            half.close()
        assert _served_within(srv.port, https=True)


# --- load: a proper backlog and a bounded pool ------------------------------------------------
def test_200_concurrent_requests_are_all_answered(server, tmp_path):
    start = threading.Barrier(200)
    got: list[int] = []

    def client(i):
        start.wait()
        try:
            status = _post(server.port, _report())[0] if i % 2 else _get(server.port, timeout=10)[0]
        except OSError as exc:
            status = repr(exc)
        got.append(status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got.count(200) == 200, [s for s in got if s != 200][:5]
    assert len(_saved(tmp_path)) == 100


# --- disconnects are not errors -----------------------------------------------------------------
def test_aborted_downloads_and_resets_print_nothing(server, capfd):
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(100)
        if i % 2:  # RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert _served_within(server.port)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err[-2000:]


# --- what a request may contain -----------------------------------------------------------------
def test_deeply_nested_json_is_refused_and_the_server_lives(server, tmp_path):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        status, _, resp = _post(server.port, body)
        assert status == 400 and "nested deeper" in json.loads(resp)["error"]
    assert _served_within(server.port) and _saved(tmp_path) == []


@pytest.mark.parametrize("over, says", [
    ({"rounds_ms": [[2.0, 1e308]]}, "bad latency sample"),
    ({"threads": 1e300}, "bad threads"),
    ({"threads": 1.5}, "bad threads"),
    ({"warmup": 1e300}, "bad warmup"),
    ({"hardware_concurrency": 1e300}, "bad hardware_concurrency"),
    ({"threads": True}, "bad threads"),
])
def test_non_finite_or_absurd_numbers_are_refused(server, tmp_path, over, says):
    status, _, resp = _post(server.port, _report(**over))
    assert status == 400 and says in json.loads(resp)["error"]
    assert _saved(tmp_path) == []


@pytest.mark.parametrize("literal", [b"Infinity", b"-Infinity", b"NaN"])
def test_non_finite_literals_are_refused(server, tmp_path, literal):
    body = _report().replace(b'"threads": 1', b'"threads": ' + literal)
    status, _, resp = _post(server.port, body)
    assert status == 400 and "not JSON" in json.loads(resp)["error"]
    assert _saved(tmp_path) == []


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
])
def test_cross_origin_or_non_json_posts_are_refused(server, tmp_path, headers, status):
    got, resp_headers, resp = _post(server.port, _report(), headers)
    assert got == status, resp
    assert resp_headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert _saved(tmp_path) == []


def test_same_origin_post_from_the_page_is_accepted(server, tmp_path):
    origin = f"http://127.0.0.1:{server.port}"
    status, _, resp = _post(server.port, _report(), {"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert status == 200, resp
    assert len(_saved(tmp_path)) == 1


def test_unsupported_methods_keep_isolation_headers(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("DELETE", "/api/models")
    resp = conn.getresponse()
    assert resp.status == 501
    assert resp.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
    assert resp.getheader("Cross-Origin-Opener-Policy") == "same-origin"
    conn.close()


# --- what the models folder shows -------------------------------------------------------------
def test_listing_never_follows_a_symlink_out(models, server, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "secret.json").write_text(json.dumps({"parity": PARITY, "token": "TOP-SECRET-VALUE"}))
    _export(secret / "outside.onnx", token="TOP-SECRET-VALUE")
    (models / "leaky.onnx").write_bytes(b"\x08\x07" + bytes(64))
    os.symlink("../secret/secret.json", models / "leaky.onnx.json")
    os.symlink("/etc/passwd", models / "passwd.onnx")
    os.symlink(secret, models / "linked")  # a folder link: never entered
    os.symlink(secret / "outside.onnx", models / "alias.onnx")
    os.symlink(secret / "outside.onnx.json", models / "alias.onnx.json")

    status, _, body = _get(server.port)
    assert status == 200
    assert b"TOP-SECRET-VALUE" not in body and b"passwd" not in body and b"linked" not in body
    listing = json.loads(body)
    assert [m["file"] for m in listing["models"]] == ["net.onnx"]
    for path in ("/models/leaky.onnx.json", "/models/passwd.onnx", "/models/linked/outside.onnx",
                 "/models/alias.onnx", "/models/alias.onnx.json"):
        got, _, content = _get(server.port, path)
        assert got == 404 and b"TOP-SECRET" not in content and b"root:" not in content, path


def test_temporary_and_unverified_files_are_not_listed_served_or_accepted(models, server, tmp_path):
    _export(models / ".net2.onnx.4242.tmp" / "net2.onnx")  # a killed export's work folder (parity may be in it)
    _export(models / ".hidden.onnx")
    _export(models / "unverified.onnx", parity=None)
    _export(models / "failed.onnx", parity={**PARITY, "passed": False})
    _export(models / "nan.onnx", parity={**PARITY, "max_abs_diff": None})
    os.symlink(".net2.onnx.4242.tmp/net2.onnx", models / "sneaky.onnx")
    os.symlink(".net2.onnx.4242.tmp/net2.onnx.json", models / "sneaky.onnx.json")

    listing = json.loads(_get(server.port)[2])
    assert [m["file"] for m in listing["models"]] == ["net.onnx"]
    assert {s["file"] for s in listing["skipped"]} == {"unverified.onnx", "failed.onnx", "nan.onnx"}
    assert all("unverified" in s["reason"] for s in listing["skipped"])
    assert ".tmp" not in json.dumps(listing) and "hidden" not in json.dumps(listing)
    for rel in (".net2.onnx.4242.tmp/net2.onnx", ".hidden.onnx", "unverified.onnx", "failed.onnx", "sneaky.onnx"):
        assert _get(server.port, f"/models/{rel}")[0] == 404, rel
        status, _, resp = _post(server.port, _report(artifact=rel))
        assert status == 400 and "unknown artifact" in json.loads(resp)["error"], rel
    assert _saved(tmp_path) == []


def test_unwritable_results_folder_is_one_line_for_the_page(models, tmp_path, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with DemoServer(models, port=0, out=blocker / "results", limits=FAST) as srv:
        status, _, resp = _post(srv.port, _report())
        assert status == 500 and json.loads(resp)["error"].startswith(f"cannot save the report in {blocker / 'results'}")
        assert _served_within(srv.port)
    assert "Traceback" not in capfd.readouterr().err


def test_over_the_connection_limit_is_a_503_not_a_hang(models, tmp_path):
    with DemoServer(models, port=0, out=tmp_path / "results", limits=Limits(max_connections=5)) as srv:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(5)]
        try:
            for s in held:
                s.sendall(b"GET / HTTP/1.1\r\n")
            time.sleep(0.3)  # let the server take them
            status, headers, _ = _get(srv.port)
            assert status == 503 and headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 5
        while _get(srv.port)[0] != 200:  # freed as soon as they close
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_metadata_of_the_wrong_type_is_not_offered(models, server):
    """The page feeds a file by its metadata: the same type/range checks as eval and bench."""
    _export(models / "zero_std.onnx", preprocessing={"mean": [0.5] * 3, "std": [0, 0, 0]})
    _export(models / "lots.onnx", macs="lots")
    listing = json.loads(_get(server.port)[2])
    assert [m["file"] for m in listing["models"]] == ["net.onnx"]
    reasons = {s["file"]: s["reason"] for s in listing["skipped"]}
    assert set(reasons) == {"zero_std.onnx", "lots.onnx"} and all("bad metadata" in r for r in reasons.values())


def test_a_file_alone_is_offered_by_the_metadata_inside_it(models, server):
    """The one metadata rule: no sidecar -> the metadata the export embedded in the file."""
    from artifact_files import GOOD_SIDE, image_model

    image_model(models / "alone.onnx", metadata={**GOOD_SIDE, "parity": PARITY})
    image_model(models / "alone_unverified.onnx", metadata=GOOD_SIDE)
    listing = json.loads(_get(server.port)[2])
    by_file = {m["file"]: m for m in listing["models"]}
    assert set(by_file) == {"net.onnx", "alone.onnx"} and by_file["alone.onnx"]["metadata"]["input_size"] == [16, 16]
    assert [s["file"] for s in listing["skipped"]] == ["alone_unverified.onnx"]
    assert _get(server.port, "/models/alone.onnx")[0] == 200
    assert _post(server.port, _report(artifact="alone.onnx"))[0] == 200
