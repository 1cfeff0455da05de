"""A stand-in for "another program" on a port: answers every GET and POST with 200 and records it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    """What the stand-in was asked: request paths, and the Authorization header of each."""

    paths: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


@contextmanager
def answering_server(port: int = 0, host: str = "127.0.0.1") -> Iterator[tuple[int, Recorded]]:
    """A plain ``http.server`` on ``port`` (0: a free one), answering ``OK`` to any GET or POST."""
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            recorded.paths.append(self.path)
            recorded.authorizations.append(self.headers.get("Authorization"))
            body = b"OK"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815 - http.server's own naming

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
