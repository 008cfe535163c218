"""The HTTP endpoints: /metrics (Prometheus text format), /health (JSON), / (links)."""

from __future__ import annotations

import json
import logging
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry

from pgstack_exporter.exporter import Exporter
from pgstack_exporter.exposition import render

log = logging.getLogger(__name__)

INDEX = b"""<html><head><title>pgstack exporter</title></head><body>
<h1>pgstack exporter</h1><p><a href="/metrics">Metrics</a> <a href="/health">Health</a></p>
</body></html>
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_listen_address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port`` (every address) or ``[v6]:port``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)


def make_server(
    exporter: Exporter, registry: CollectorRegistry, host: str, port: int
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "pgstack-exporter"

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                exporter.start_round()
                self._send(200, CONTENT_TYPE_LATEST, render(registry))
            elif path == "/health":
                document = exporter.health()
                code = 503 if document["status"] == "unhealthy" else 200
                self._send(code, "application/json", json.dumps(document).encode() + b"\n")
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", INDEX)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    if ":" in host:
        return _Server6((host, port), Handler)
    return _Server((host or "0.0.0.0", port), Handler)  # noqa: S104 (":port": every address)
