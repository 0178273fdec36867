"""Fixtures of the launcher tests: a System that is configured but starts nothing, and a stand-in
``/readyz`` endpoint whose answers a test scripts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from launcher.runner import SERVICES, System, SystemConfig
from tsunagu.natsserver import free_port


class ReadyzServer:
    """Answers GET /readyz with the next status of ``statuses`` (the last one forever) and counts calls."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.calls += 1
                status = owner.statuses.pop(0) if len(owner.statuses) > 1 else owner.statuses[0]
                self.send_response(status if self.path == "/readyz" else 404)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture()
def readyz() -> Iterator[Callable[[list[int]], ReadyzServer]]:
    started: list[ReadyzServer] = []

    def start(statuses: list[int]) -> ReadyzServer:
        server = ReadyzServer(statuses)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture()
def system(tmp_path: Path) -> System:
    return System(
        SystemConfig(
            data_dir=tmp_path / "data",
            ports={name: free_port() for name in SERVICES},
            nats_port=free_port(),
            nats_monitor_port=free_port(),
        )
    )
