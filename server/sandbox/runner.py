"""Runs the sandbox on loopback: uvicorn in a daemon thread with its own event loop."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

import uvicorn

from .app import build_app
from .state import ConnectionAbort, Sandbox


class _Uvicorn(uvicorn.Server):
    """Tells the starting thread when both listeners accept connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def _is_not_deliberate_abort(record: logging.LogRecord) -> bool:
    # uvicorn logs every exception that ends a response; the ones the sandbox raises on purpose are noise.
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionAbort))


def _listen(host: str, port: int) -> socket.socket:
    # The socket must say IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets, and
    # without it every response stalls 40 ms on delayed ACKs.
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen()
    except OSError:
        listener.close()
        raise
    return listener


def _listen_for_downloads() -> tuple[socket.socket, str]:
    """A second loopback host, so tests can prove the bearer token never travels to the download host."""
    try:
        return _listen("127.0.0.2", 0), "127.0.0.2"
    except OSError:
        return _listen("localhost", 0), "localhost"


class SandboxServer:
    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self.url = ""
        self.download_url = ""
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        api_socket = _listen(self.host, self.port)
        download_socket, download_host = _listen_for_downloads()
        self.url = f"http://{self.host}:{api_socket.getsockname()[1]}"
        self.download_url = f"http://{download_host}:{download_socket.getsockname()[1]}"
        app = build_app(self.sandbox, self.download_url, download_socket.getsockname()[:2])
        config = uvicorn.Config(app, lifespan="off", ws="none", proxy_headers=False, access_log=False,
                                log_config=None, timeout_graceful_shutdown=1)
        self._server = _Uvicorn(config)
        logging.getLogger("uvicorn.error").addFilter(_is_not_deliberate_abort)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [api_socket, download_socket]},
                                        name="nemovideo-sandbox", daemon=True)
        self._thread.start()
        while not self._server.ready.wait(0.05):
            if not self._thread.is_alive():
                raise RuntimeError("the sandbox server thread exited during startup")

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join()
        self._server = self._thread = None
        self.sandbox.close()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nemovideo-mcp sandbox",
                                     description="Offline imitation of NemoVideo's cloud video API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--render-seconds", type=float, default=2.0)
    parser.add_argument("--turn-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    sandbox = Sandbox(render_seconds=args.render_seconds, turn_seconds=args.turn_seconds)
    stopping = threading.Event()
    # Explicit handlers: a shell starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt, so Ctrl-C or a test's SIGINT would not stop the sandbox.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    with SandboxServer(sandbox, host=args.host, port=args.port) as server:
        print(f"NemoVideo sandbox on {server.url} (downloads on {server.download_url})", file=sys.stderr, flush=True)
        stopping.wait()
    return 0
