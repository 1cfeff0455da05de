"""A fault-injecting HTTP proxy in front of a real MLflow server, for registry and network faults.

Everything is forwarded as is, except the requests a test chooses to fail: those get the
answer it gives. It listens on 127.0.0.1 only and stops with the test.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: (method, path with query) -> an (HTTP status, JSON body) to answer instead, or None to forward.
Fault = Callable[[str, str], tuple[int, dict[str, str]] | None]


def _handler(upstream: str, fault: Fault) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            answer = fault(self.command, self.path)
            if answer is not None:
                self._reply(answer[0], json.dumps(answer[1]).encode(), "application/json")
                return
            request = urllib.request.Request(upstream + self.path, data=body, method=self.command)
            for key in ("Content-Type", "Authorization"):
                if self.headers.get(key):
                    request.add_header(key, self.headers[key])
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    self._reply(response.status, response.read(), response.headers.get("Content-Type"))
            except urllib.error.HTTPError as error:
                self._reply(error.code, error.read(), error.headers.get("Content-Type"))

        def _reply(self, status: int, content: bytes, content_type: str | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type or "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        # http.server dispatches on these names.
        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Forward


@contextmanager
def faulty_proxy(upstream: str, fault: Fault) -> Iterator[str]:
    """The proxy's URL while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream.rstrip("/"), fault))
    thread = threading.Thread(target=server.serve_forever, name="faulty-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
