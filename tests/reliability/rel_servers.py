"""Small misbehaving servers for the reliability tests, each a thread in the test process.

Every server binds 127.0.0.1:0 (a free port), runs in daemon threads and is
stopped by ``stop()`` (the fixtures call it in ``finally``): the listening
socket is closed and every accepted connection is shut down, so no thread
is left blocked on a client that went away.

- ``HangServer``: accepts, reads the request, never answers.
- ``CannedServer``: answers every request with fixed raw bytes (garbage,
  HTML, a status line with a body shorter than its Content-Length, ...),
  optionally closing the connection right after.
- ``RecordingServer``: answers 200 JSON and records each request's method,
  path and headers (the target of a redirect: did it get X-API-Key?).
- ``ConnectProxy``: an HTTPS forward proxy that only does CONNECT tunnels and
  counts them (is HTTPS_PROXY honoured?).
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass, field

READ_CHUNK = 65536
# Upper bound for reading one request head + body from a client: the module
# sends at most a few kB, and a test never waits on a server forever.
REQUEST_READ_TIMEOUT_S = 10.0


def read_http_request(conn: socket.socket) -> tuple[bytes, dict[str, str], bytes] | None:
    """Read one HTTP/1.1 request (head and Content-Length body); None on EOF/timeout."""
    conn.settimeout(REQUEST_READ_TIMEOUT_S)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(READ_CHUNK)
            if not chunk:
                return None
            data += chunk
        head, separator, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, separator, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(body) < length:
            chunk = conn.recv(READ_CHUNK)
            if not chunk:
                return None
            body += chunk
        return lines[0], headers, body
    except (OSError, ValueError):
        return None


class _ThreadedServer:
    """Accept loop in a thread; ``handle(conn)`` per connection in its own thread."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"{type(self).__name__}-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self._acceptor.start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, peer_address = self._sock.accept()
            except OSError:
                return  # the listening socket was closed by stop()
            with self._lock:
                if self._stopped.is_set():
                    conn.close()
                    return
                self.connections += 1
                self._open.append(conn)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass
        finally:
            self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
        try:
            conn.close()
        except OSError:
            pass

    def handle(self, conn: socket.socket) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        self._stopped.set()
        # shutdown() wakes a thread blocked in accept(); close() alone may not.
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns, self._open = list(self._open), []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._acceptor.join(timeout=5)
        for worker in self._threads:
            worker.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HangServer(_ThreadedServer):
    """Reads each request and never answers, until stop()."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle(self, conn: socket.socket) -> None:
        while read_http_request(conn) is not None:
            with self._lock:
                self.requests += 1
            # Never answer: wait for the client to give up (EOF) or for stop().
            conn.settimeout(None)
            while not self._stopped.is_set():
                readable, writable, errored = select.select([conn], [], [], 0.2)
                if readable and not conn.recv(READ_CHUNK):
                    return


class CannedServer(_ThreadedServer):
    """Answers every request with ``response`` (raw bytes); ``close_after`` ends the connection."""

    def __init__(self, response: bytes, close_after: bool = True) -> None:
        super().__init__()
        self.response = response
        self.close_after = close_after
        self.requests = 0

    def handle(self, conn: socket.socket) -> None:
        while read_http_request(conn) is not None:
            with self._lock:
                self.requests += 1
            conn.sendall(self.response)
            if self.close_after:
                return


def http_response(status: str, body: bytes, content_type: str = "text/html", extra_headers: str = "",
                  content_length: int | None = None) -> bytes:
    length = len(body) if content_length is None else content_length
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
        f"{extra_headers}Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


@dataclass
class RecordedRequest:
    request_line: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class RecordingServer(_ThreadedServer):
    """Answers 200 with the API's success body and records every request."""

    SUCCESS = b'{"Error": false, "StatusCode": 200, "Message": "MessagePublished"}'

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[RecordedRequest] = []

    def handle(self, conn: socket.socket) -> None:
        request = read_http_request(conn)
        if request is None:
            return
        line, headers, body = request
        with self._lock:
            self.recorded.append(RecordedRequest(line.decode("latin-1"), headers, body))
        conn.sendall(http_response("200 OK", self.SUCCESS, content_type="application/json"))


class ConnectProxy(_ThreadedServer):
    """A CONNECT-only forward proxy: counts tunnels and pipes bytes both ways."""

    def __init__(self) -> None:
        super().__init__()
        self.tunnels: list[str] = []
        self.refused: list[str] = []

    def handle(self, conn: socket.socket) -> None:
        request = read_http_request(conn)
        if request is None:
            return
        line = request[0].decode("latin-1")
        method, separator, rest = line.partition(" ")
        target = rest.split(" ", 1)[0]
        host, separator, port = target.rpartition(":")
        if method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
            with self._lock:
                self.refused.append(line)
            conn.sendall(http_response("405 Method Not Allowed", b"CONNECT only", content_type="text/plain"))
            return
        upstream = socket.create_connection((host, int(port)), timeout=REQUEST_READ_TIMEOUT_S)
        with self._lock:
            self.tunnels.append(target)
            self._open.append(upstream)
        try:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            conn.settimeout(None)
            upstream.settimeout(None)
            peers = {conn: upstream, upstream: conn}
            while not self._stopped.is_set():
                readable, writable, errored = select.select(list(peers), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(READ_CHUNK)
                    if not data:
                        return
                    peers[sock].sendall(data)
        finally:
            self._close(upstream)
