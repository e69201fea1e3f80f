"""`genart gallery OUT --serve`: the curation page on a local HTTP server that writes the picks to the output.

The server binds 127.0.0.1 on a random free port and answers only under a random path token,
http://127.0.0.1:PORT/TOKEN/index.html (every other path is refused with 403, so another local user or a
web page in the browser cannot read the output or write picks without the printed URL). Under the token:

    GET  index.html, images/..., tokens/..., collection.json     read from OUT (a folder or fsspec URI)
    GET  curation/picks.json                                     the picks saved so far (404 before any)
    PUT  curation/picks.json                                     checked (genart.market.picks: its job_id
                                                                 must be the output's, ids known), then
                                                                 written to OUT/curation/picks.json

Bounded: request bodies at most MAX_PICKS_BYTES, files served at most MAX_SERVED_BYTES, a socket timeout
on every connection, and only the paths above (no hidden or `..` segments). Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from genart.errors import ConfigError, GenartError
from genart.market.picks import MAX_PICKS_BYTES, PICKS, check_picks, parse_picks, picks_bytes, write_picks
from genart.storage.output import Output
from genart.views.gallery import INDEX

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_SERVED_BYTES = 512 * 2**20  # a 100,000-item page is ~20 MB; an image is far smaller
SOCKET_TIMEOUT_S = 30
SERVED_DIRS = ("images", "tokens")
SERVED_FILES = (INDEX, "collection.json")


def _allowed(rel: str) -> bool:
    """Whether `rel` (the path after the token) names something the page needs: no empty, hidden or `..`
    segments, and inside SERVED_DIRS or one of SERVED_FILES."""
    parts = rel.split("/")
    if any(not p or p.startswith(".") for p in parts):
        return False
    return rel in SERVED_FILES or rel == PICKS or (len(parts) > 1 and parts[0] in SERVED_DIRS)


class _Handler(BaseHTTPRequestHandler):
    server: CurationServer
    timeout = SOCKET_TIMEOUT_S
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the token is in every path: never log request lines
        return

    def _reply(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _rel(self) -> str | None:
        """The path after /TOKEN/, or None (403 sent) when the token is missing or wrong."""
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        head, _, rel = path.lstrip("/").partition("/")
        if not hmac.compare_digest(head.encode(), self.server.token.encode()):
            self._reply(
                HTTPStatus.FORBIDDEN, b"forbidden: open the URL genart printed (it holds the token)\n"
            )
            return None
        if "/" not in path.lstrip("/"):  # /TOKEN: the page's relative links need /TOKEN/
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/{head}/{INDEX}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return rel or INDEX

    def do_GET(self):  # noqa: N802 - http.server's naming
        rel = self._rel()
        if rel is None:
            return
        if not _allowed(rel):
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n")
            return
        out = self.server.out
        try:
            size = out.fs.size(out.path(rel))
            if size is not None and size > MAX_SERVED_BYTES:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"file too large to serve\n")
                return
            data = out.fs.cat_file(out.path(rel))
        except (FileNotFoundError, IsADirectoryError):
            self._reply(HTTPStatus.NOT_FOUND, b"not found\n")
            return
        except OSError as exc:
            log.warning("serving %s: %s", rel, exc)
            self._reply(HTTPStatus.BAD_GATEWAY, f"could not read {rel}\n".encode())
            return
        if rel == INDEX:  # the page PUTs its picks here (a relative URL: it stays under the token)
            data = data.replace(b'data-save=""', f'data-save="{PICKS}"'.encode(), 1)
        ctype = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        if rel.startswith("tokens/"):
            ctype = "application/json"
        self._reply(HTTPStatus.OK, data, ctype)

    do_HEAD = do_GET

    def do_PUT(self):  # noqa: N802
        rel = self._rel()
        if rel is None:
            return
        if rel != PICKS:
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, f"only {PICKS} can be written\n".encode())
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(HTTPStatus.LENGTH_REQUIRED, b"Content-Length required\n")
            return
        if not 0 <= length <= MAX_PICKS_BYTES:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_PICKS_BYTES} bytes\n".encode())
            return
        body = self.rfile.read(length)
        try:
            picks = parse_picks(body, "the picks sent")
            if picks.job_id != self.server.job_id or picks.output != self.server.output:
                raise ConfigError(
                    f"the picks sent are for {picks.output} job {picks.job_id}, this server curates "
                    f"{self.server.output} job {self.server.job_id}; reload the page"
                )
            check_picks(picks, "the picks sent", self.server.storage_options)
            with self.server.lock:
                where = write_picks(self.server.out, picks)
        except GenartError as exc:
            self._reply(HTTPStatus.UNPROCESSABLE_ENTITY, f"{exc}\n".encode())
            return
        log.info("saved %d kept, %d rejected to %s", len(picks.keep), len(picks.reject), where)
        self._reply(HTTPStatus.OK, picks_bytes(picks), "application/json")

    do_POST = do_PUT


class CurationServer(ThreadingHTTPServer):
    """The server of one output's curation page; `url` holds the token. Threads are daemons."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, out: Output, output: str, job_id: str, storage_options: dict | None = None, port: int = 0
    ):
        """`out`: the output, opened; `output`, `job_id`: what the page's picks must name (its head)."""
        self.out, self.output, self.job_id, self.storage_options = out, output, job_id, storage_options
        self.token = secrets.token_urlsafe(24)
        self.lock = threading.Lock()
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/{self.token}/{INDEX}"


def serve(server: CurationServer, ready=None) -> None:
    """Serve until Ctrl-C (KeyboardInterrupt), then close the socket and return. `ready(url)` is called once
    the server listens."""
    if ready:
        ready(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        log.debug("interrupted: closing the server")
    finally:
        server.server_close()
