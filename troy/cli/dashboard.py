"""`troy dashboard`: a live, read-only web page of a run, served with Starlette and uvicorn.

The page (dashboard.html beside this module, self-contained: no CDN) polls
``/api/snapshot`` about once a second; the JSON comes from
troy.cli.dashboard_data. The coordination is opened with ``serve=False`` and
only read, so looking never changes a run.

Bound to loopback (the default) it answers only requests whose Host header
names loopback (a web page elsewhere cannot reach it by DNS rebinding). Bound
to any other address it makes an access token, prints the URL holding it
once, and answers 403 to any request without it. The access log is off, so
the token appears nowhere else.
"""

from __future__ import annotations

import argparse
import hmac
import importlib.resources
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from troy.model.errors import NoSuchObject, TroyError
from troy.model.secrets import scrub
from troy.plugins.coordination.base import Coordination

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

DEFAULT_PORT = 8765
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: A snapshot is rebuilt at most this often, however many pages poll (and never more
#: often than twice the time it took to build: a large run is not replayed nonstop).
CACHE_SECONDS = 0.5
INSTALL = "pip install 'troy[dashboard]'"


class DashboardError(TroyError):
    """The dashboard cannot start: its extra is missing, or its address cannot be bound."""


def require_extra() -> None:
    """Raise DashboardError, saying what to install, when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DashboardError(
            f"troy dashboard needs Starlette and uvicorn ({exc.name or exc} is not installed):"
            f" {INSTALL}"
        ) from exc


def page() -> str:
    """The page's HTML, JavaScript and CSS (package data)."""
    return (importlib.resources.files("troy.cli") / "dashboard.html").read_text("utf-8")


@dataclass
class Snapshots:
    """Snapshots of one read-only coordination, built under a lock and kept briefly."""

    coordination: Coordination
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: dict[tuple[str | None, str | None], tuple[float, float, dict[str, Any]]] = field(
        default_factory=dict
    )

    def get(self, service_id: str | None, state: str | None = None) -> dict[str, Any]:
        """The snapshot of ``service_id``, its unit table filtered to ``state``."""
        from troy.cli import dashboard_data

        with self._lock:
            now = time.time()
            kept = self._cache.get((service_id, state))
            if kept is not None and now - kept[0] < max(CACHE_SECONDS, 2 * kept[1]):
                return kept[2]
            data = dashboard_data.snapshot(self.coordination, service_id, now, state)
            self._cache[(service_id, state)] = (now, time.time() - now, data)
            return data


def _allowed(request: Request, token: str | None) -> bool:
    if token is not None:
        given = request.query_params.get("token", "")
        return hmac.compare_digest(given.encode(), token.encode())
    host = urlsplit("//" + request.headers.get("host", "")).hostname or ""
    return host in LOOPBACK


def make_app(snapshots: Snapshots, service: str | None, token: str | None) -> Starlette:
    """The web application: ``/`` the page, ``/api/snapshot[?service=ID][&state=S]`` its data.

    ``token``: when set, every request needs ``?token=`` with it (else 403); when
    None, only requests addressed to loopback are answered.
    """
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.routing import Route

    html = page()
    forbidden = "troy dashboard: forbidden (the URL needs the token the dashboard printed)\n"

    def index(request: Request) -> Response:
        if not _allowed(request, token):
            return PlainTextResponse(forbidden, status_code=403)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def api_snapshot(request: Request) -> Response:
        if not _allowed(request, token):
            return JSONResponse({"error": forbidden.strip()}, status_code=403)
        try:
            data = snapshots.get(
                request.query_params.get("service") or service,
                request.query_params.get("state") or None,
            )
        except NoSuchObject as exc:
            return JSONResponse({"error": scrub(str(exc))}, status_code=404)
        except TroyError as exc:
            return JSONResponse({"error": scrub(str(exc))}, status_code=503)
        return JSONResponse(data, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/snapshot", api_snapshot),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port); DashboardError if it cannot."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        raise DashboardError(
            f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}"
        ) from exc
    return sock


def url_of(sock: socket.socket, host: str, token: str | None) -> str:
    """The address to open: loopback, or this machine's name when bound to every address."""
    port = sock.getsockname()[1]
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    query = f"?token={token}" if token else ""
    return f"http://{shown}:{port}/{query}"


class Server:
    """The dashboard's uvicorn server on a bound socket; ``run()`` blocks, ``start()`` does not."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._sock = sock
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self.run, name="troy-dashboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise DashboardError("the dashboard's server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()


def open_dashboard(
    coordination: Coordination, service: str | None, host: str, port: int
) -> tuple[Server, str]:
    """A dashboard server of ``coordination`` (opened read-only) bound to ``host``:``port``,
    not yet running, and the URL to open (with the token when not on loopback)."""
    from troy.cli import dashboard_data

    require_extra()
    if service is not None:
        dashboard_data.snapshot(coordination, service, time.time())  # NoSuchObject: say so now
    token = None if host in LOOPBACK else secrets.token_urlsafe(24)
    sock = bind(host, port)
    app = make_app(Snapshots(coordination), service, token)
    return Server(app, sock), url_of(sock, host, token)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from troy.core.service import absolute_url
    from troy.model import config
    from troy.plugins.registry import open_coordination

    require_extra()  # before anything is opened
    url = absolute_url(args.coordination or config.default_coordination_url())
    coordination = open_coordination(url, serve=False)  # read-only: it never serves or writes
    try:
        server, address = open_dashboard(coordination, args.service, args.host, args.port)
        print(f"troy dashboard of {coordination.public_url()}", flush=True)
        print(f"  open {address}", flush=True)
        if args.host not in LOOPBACK:
            print("  (the token in this URL is printed only here)", flush=True)
        print("  Ctrl-C stops it", flush=True)
        server.run()
    finally:
        coordination.close()
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``dashboard`` subcommand."""
    dashboard = sub.add_parser(
        "dashboard",
        help="a live, read-only web page of a run (needs troy[dashboard])",
    )
    dashboard.add_argument(
        "service", nargs="?", help="service id (default: the newest work-unit service)"
    )
    dashboard.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs the printed token)",
    )
    dashboard.add_argument("--coordination", help="coordination URL")
    dashboard.set_defaults(func=cmd_dashboard)
