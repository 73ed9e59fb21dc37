"""The gateway's front door, below every entrypoint (WSGI middleware on nameko's web server).

- **Size.** Every request body has a maximum (``MAX_BODY_BYTES``, default 1 MB; Open311 64 KB;
  ``/api/media`` ``MAX_UPLOAD_BYTES``, default 6 MB for a 5 MB photo and its form). It is checked
  from ``Content-Length`` before anything is read, and a body without a length (chunked) is read
  at most one byte past the limit: 413 in the error shape of the API (``{"error": …}`` for the
  native API, the standard error array for ``/open311/``).
- **Headers.** Every answer (pages, static files, ``/api``, ``/open311``, ``/media``, nameko's own
  404s) carries a Content-Security-Policy without inline script and with ``img-src 'self' data:``,
  ``frame-ancestors 'none'`` with ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``
  and ``Referrer-Policy: no-referrer``.

``guard(GatewayService)`` puts every HTTP entrypoint of the service behind one such server.
"""
from __future__ import annotations

import inspect
import io
import json
import os

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer

MAX_BODY = 1024 * 1024
MAX_OPEN311 = 64 * 1024
MAX_UPLOAD = 6 * 1024 * 1024

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]


def setting(config, name: str, default):
    """A number from the service config, else the environment, else ``default``."""
    value = config.get(name) if hasattr(config, "get") else None
    if value in (None, ""):
        value = os.environ.get(name, default)
    return int(float(value))


def _too_large(path: str, limit: int) -> tuple[str, bytes]:
    message = f"请求体太大，上限 {limit} 字节 (request body too large: at most {limit} bytes)"
    if path.startswith("/open311/"):
        if path.endswith(".xml"):
            return ("text/xml; charset=utf-8",
                    (f'<?xml version="1.0" encoding="utf-8"?><errors><error><code>413</code>'
                     f"<description>{message}</description></error></errors>").encode())
        return "application/json", json.dumps([{"code": 413, "description": message}],
                                              ensure_ascii=False).encode()
    return "application/json", json.dumps(
        {"error": {"status": 413, "code": "too_large", "message": message,
                   "fields": {"_body": [f"不能超过 {limit} 字节"]}}}, ensure_ascii=False).encode()


class Doors:
    """WSGI middleware: body limits first, security headers on every answer."""

    def __init__(self, app, config=None):
        self.app = app
        config = config or {}
        self.max_body = setting(config, "MAX_BODY_BYTES", MAX_BODY)
        self.max_open311 = setting(config, "MAX_OPEN311_BYTES", MAX_OPEN311)
        self.max_upload = setting(config, "MAX_UPLOAD_BYTES", MAX_UPLOAD)

    def limit_for(self, path: str) -> int:
        if path.startswith("/open311/"):
            return self.max_open311
        if path == "/api/media":
            return self.max_upload
        return self.max_body

    def __call__(self, environ, start_response):
        def with_headers(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = list(headers) + [(name, value) for name, value in SECURITY_HEADERS
                                       if name.lower() not in present]
            return start_response(status, headers, exc_info)

        refused = self._check_body(environ)
        if refused is not None:
            content_type, body = refused
            with_headers("413 Request Entity Too Large",
                         [("Content-Type", content_type), ("Content-Length", str(len(body))),
                          ("Connection", "close")])
            return [body]
        return self.app(environ, with_headers)

    def _check_body(self, environ):
        """None if the body is within its limit (a chunked body is then buffered), else the 413."""
        path = environ.get("PATH_INFO") or "/"
        limit = self.limit_for(path)
        length = environ.get("CONTENT_LENGTH")
        if length not in (None, ""):
            try:
                declared = int(length)
            except ValueError:
                declared = limit + 1
            return _too_large(path, limit) if declared > limit or declared < 0 else None
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() != "chunked":
            return None
        stream, chunks, size = environ["wsgi.input"], [], 0
        while size <= limit:                     # read while streaming, never past limit + 1
            chunk = stream.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            return _too_large(path, limit)
        body = b"".join(chunks)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = True
        return None


class GuardedWebServer(WebServer):
    """nameko's web server with :class:`Doors` in front of its WSGI app."""

    def get_wsgi_app(self):
        return Doors(super().get_wsgi_app(), self.container.config)


def guard(service_cls):
    """Serve every HTTP entrypoint of ``service_cls`` through :class:`GuardedWebServer` (one
    shared server per container, as nameko's own)."""
    for _, member in inspect.getmembers(service_cls):
        for entrypoint in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                entrypoint.server = GuardedWebServer()
    return service_cls


def public_base_url(config) -> str:
    """The platform's public address for links it hands out (Open311 discovery, photo URLs, QR
    codes): ``PUBLIC_BASE_URL``, else the address the gateway listens on — never the request's
    Host header, which the client chooses."""
    configured = (config.get("PUBLIC_BASE_URL") if hasattr(config, "get") else None) \
        or os.environ.get("PUBLIC_BASE_URL")
    if configured:
        return str(configured).rstrip("/")
    address = (config.get("WEB_SERVER_ADDRESS") if hasattr(config, "get") else None) or "127.0.0.1:8000"
    host, _, port = str(address).rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port or 8000}"
