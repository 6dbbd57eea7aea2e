"""A small HTTP/1.1 server (asyncio + h11) that one hostile client cannot stall.

Why not ``http.server``: its accept loop did the TLS handshake (one idle TCP connection blocked
everyone under ``--https``), it had no header or body deadline (3000 half-sent headers held 3000
threads), a listen backlog of 5, and it printed a traceback for every client that went away.
Here h11 (pure Python, no I/O of its own) parses HTTP, and asyncio gives every connection its
own task: the TLS handshake happens per connection with a deadline, a connection costs a socket
rather than a thread, and blocking work (files, JSON, numpy) runs in a bounded thread pool.

Per connection: the request head must arrive within ``head_timeout_s`` (also the keep-alive idle
limit), the body within ``body_timeout_s``, and every chunk of a response must be taken within
``write_timeout_s``. A client that breaks a rule gets 408/413/400 where HTTP allows one, and is
dropped; a client that disconnects is never logged as an error.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import ssl
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Awaitable, Callable

import h11

CHUNK = 256 * 1024
QUIET = (ConnectionError, TimeoutError, ssl.SSLError, h11.LocalProtocolError, asyncio.IncompleteReadError)


@dataclass(frozen=True)
class Limits:
    head_timeout_s: float = 10.0  # request line + headers; also how long an idle keep-alive connection lives
    body_timeout_s: float = 30.0
    write_timeout_s: float = 30.0  # per chunk: a slow phone gets a big WASM file, a stalled reader does not
    handshake_timeout_s: float = 10.0
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 1 << 20
    max_connections: int = 1000
    backlog: int = 1024
    workers: int = 8


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes
    scheme: str  # "http" or "https"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: Path | None = None  # streamed from disk instead of ``body``


Handler = Callable[[Request], Awaitable[Response]]


class _Refuse(Exception):
    """The request cannot be read: answer ``status`` (when HTTP still allows an answer) and close."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


class _Gone(Exception):
    """The client closed the connection between requests (normal keep-alive end)."""


def _fd_limit() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return soft if soft != resource.RLIM_INFINITY else 1 << 20
    except (ImportError, OSError, ValueError):
        return 1024


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class HTTPServer:
    """``await start(host, port)`` -> bound port; ``await close()``. ``handle(request)`` builds
    responses; ``error_response(status, text)`` builds the ones this layer sends itself."""

    def __init__(self, handle: Handler, error_response: Callable[[int, str], Response], limits: Limits = Limits(),
                 ssl_context: ssl.SSLContext | None = None, log: Callable[[str], None] | None = None):
        self.handle, self.error_response, self.limits = handle, error_response, limits
        self.ssl_context, self.log = ssl_context, log or (lambda line: None)
        # never accept more connections than file descriptors allow (accept() failing is noisier than a 503)
        self.max_connections = min(limits.max_connections, max(16, _fd_limit() - 64))
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="edge-demo")
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(
            self._connection, host, port, ssl=self.ssl_context, backlog=self.limits.backlog,
            ssl_handshake_timeout=self.limits.handshake_timeout_s if self.ssl_context else None)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        self.pool.shutdown(wait=False, cancel_futures=True)

    def run_blocking(self, fn, *args):
        """``fn(*args)`` in the bounded pool (file reads, JSON, numpy): never on the event loop."""
        return asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- one connection ------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            if len(self._tasks) > self.max_connections:
                await self._send(h11.Connection(h11.SERVER), writer, "GET",
                                 self._closing(self.error_response(503, "too many connections, retry shortly")))
                return
            await self._serve(reader, writer)
        except QUIET as exc:  # the client went away or broke the protocol: its problem, one line at most
            self.log(f"{peer}: connection dropped ({type(exc).__name__})")
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug here must not take the server down or print a traceback per client
            print(f"edge demo: internal error serving {peer}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(self, reader, writer) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        scheme = "https" if self.ssl_context else "http"
        while True:
            try:
                head = await self._read_head(conn, reader)
                if conn.they_are_waiting_for_100_continue:  # curl asks before a body over 1 kB
                    await self._write(writer, conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                body = await self._read_body(conn, reader, head)
            except _Gone:
                return
            except _Refuse as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, "GET", self._closing(self.error_response(exc.status, str(exc))))
                self.log(f"{writer.get_extra_info('peername')}: {exc.status} {exc}")
                return
            method = head.method.decode("ascii", "replace")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
            request = Request(method, head.target.decode("latin-1"), headers, body, scheme)
            try:
                response = await self.handle(request)
            except Exception as exc:
                print(f"edge demo: internal error on {method} {request.target}: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                response = self._closing(self.error_response(500, "internal error (see the server's output)"))
            await self._send(conn, writer, method, response)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _next_event(self, conn: h11.Connection, reader) -> object:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Refuse(exc.error_status_hint, f"bad request: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(CHUNK))

    async def _read_head(self, conn: h11.Connection, reader) -> h11.Request:
        try:
            async with asyncio.timeout(self.limits.head_timeout_s):
                event = await self._next_event(conn, reader)
        except TimeoutError:
            if not conn.trailing_data[0]:
                raise _Gone() from None  # idle keep-alive connection: just close it
            raise _Refuse(408, f"request head not received within {self.limits.head_timeout_s:g} s") from None
        if isinstance(event, h11.ConnectionClosed):
            raise _Gone()
        # h11 bounds a head that arrives in pieces; one that arrives whole is measured here
        if len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers) > self.limits.max_head_bytes:
            raise _Refuse(431, f"request head larger than {self.limits.max_head_bytes} bytes")
        return event

    async def _read_body(self, conn: h11.Connection, reader, head: h11.Request) -> bytes:
        limit = self.limits.max_body_bytes
        length = dict(head.headers).get(b"content-length")
        if length is not None and int(length) > limit:  # h11 has checked it is a number
            raise _Refuse(413, f"request body larger than {limit} bytes")
        parts, size = [], 0
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                while True:
                    event = await self._next_event(conn, reader)
                    if isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > limit:
                            raise _Refuse(413, f"request body larger than {limit} bytes")
                        parts.append(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        return b"".join(parts)
                    elif isinstance(event, h11.ConnectionClosed):
                        raise _Gone()
        except TimeoutError:
            raise _Refuse(408, f"request body not received within {self.limits.body_timeout_s:g} s") from None

    # -- responses -----------------------------------------------------------------------
    @staticmethod
    def _closing(response: Response) -> Response:
        response.headers = [*response.headers, ("Connection", "close")]
        return response

    async def _write(self, writer, data: bytes) -> None:
        if data:
            writer.write(data)
            async with asyncio.timeout(self.limits.write_timeout_s):
                await writer.drain()

    async def _send(self, conn: h11.Connection, writer, method: str, response: Response) -> None:
        handle = None
        try:
            if response.file is not None:
                handle = await self.run_blocking(open, response.file, "rb")
                length = (await self.run_blocking(os.fstat, handle.fileno())).st_size
            else:
                length = len(response.body)
            headers = [*response.headers, ("Content-Length", str(length))]
            await self._write(writer, conn.send(h11.Response(status_code=response.status, headers=headers,
                                                              reason=_reason(response.status))))
            if method != "HEAD":
                if handle is None:
                    await self._write(writer, conn.send(h11.Data(data=response.body)) if response.body else b"")
                else:
                    while chunk := await self.run_blocking(handle.read, CHUNK):
                        await self._write(writer, conn.send(h11.Data(data=chunk)))
            await self._write(writer, conn.send(h11.EndOfMessage()))
        finally:
            if handle is not None:
                handle.close()
