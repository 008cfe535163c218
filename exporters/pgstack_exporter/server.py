"""The HTTP endpoints: /metrics (Prometheus text format), /health (JSON), / (links).

With a web configuration file (web.py) the server speaks TLS, shaking hands on the connection's
own thread, and asks for basic authentication everywhere but /health.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry

from pgstack_exporter.exporter import Exporter
from pgstack_exporter.exposition import render
from pgstack_exporter.web import HANDSHAKE_TIMEOUT, REALM, WebConfigFile, WebState

log = logging.getLogger(__name__)

INDEX = b"""<html><head><title>pgstack exporter</title></head><body>
<h1>pgstack exporter</h1><p><a href="/metrics">Metrics</a> <a href="/health">Health</a></p>
</body></html>
"""


def _handshake(context: ssl.SSLContext, sock: socket.socket, peer: str) -> ssl.SSLSocket | None:
    """The TLS connection over ``sock``, or None (logged at debug) when the handshake fails."""
    sock.settimeout(HANDSHAKE_TIMEOUT)
    try:
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    except OSError as error:
        log.debug("%s: TLS: %s", peer, error)
        return None
    try:
        tls.do_handshake()
    except OSError as error:  # ssl.SSLError, a timeout, a reset
        log.debug("%s: TLS handshake failed: %s", peer, error)
        tls.close()
        return None
    tls.settimeout(None)  # as a plain HTTP connection
    return tls


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    web: WebConfigFile | None = None

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # On the connection's own thread: a slow or silent client holds no other one.
        context = self.web.current().ssl_context if self.web is not None else None
        if context is None:
            super().finish_request(request, client_address)
            return
        if not isinstance(request, socket.socket):  # a TCP server's requests are sockets
            return
        tls = _handshake(context, request, str(client_address[0]))
        if tls is None:
            return
        try:
            super().finish_request(tls, client_address)
        except OSError as error:  # the client went away mid-answer
            log.debug("%s: %s", client_address[0], error)
        finally:
            with contextlib.suppress(OSError):
                tls.shutdown(socket.SHUT_WR)
            tls.close()


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_listen_address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port`` (every address) or ``[v6]:port``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"not host:port: {text!r}")
    return host.strip("[]"), int(port)


def make_server(
    exporter: Exporter,
    registry: CollectorRegistry,
    host: str,
    port: int,
    web: WebConfigFile | None = None,
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "pgstack-exporter"
        extra_headers: Mapping[str, str]

        def _send(
            self,
            code: int,
            content_type: str,
            body: bytes,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in {**self.extra_headers, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _authorized(self, state: WebState, path: str) -> bool:
            verdict = state.authorize(path, self.headers.get("Authorization"))
            if verdict.allowed:
                return True
            # The user name only: never the password, never the header.
            if verdict.user is None:
                log.debug("%s %s: no basic credentials", self.address_string(), path)
            else:
                log.debug(
                    "%s %s: authentication failed for user %r",
                    self.address_string(),
                    path,
                    verdict.user,
                )
            challenge = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
            self._send(401, "text/plain; charset=utf-8", b"unauthorized\n", challenge)
            return False

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            self.extra_headers = {}
            if web is not None:
                state = web.current()
                self.extra_headers = state.headers
                if not self._authorized(state, path):
                    return
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
        server: _Server = _Server6((host, port), Handler)
    else:
        server = _Server((host or "0.0.0.0", port), Handler)  # noqa: S104 (":port": every address)
    server.web = web
    return server
