"""The proxy in-process: each public prefix reaches its service at the right path, with the query and the
body, and a token signed for that service (none for anonymous callers); a service that does not answer is
a 503; small bodies pass whole with their length, large ones stream."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.proxy import SERVICES, ServiceTransport, public_path, resolve, upstream_client
from gateway.settings import GatewaySettings
from tsunagu.natsserver import free_port


@pytest.mark.parametrize(
    ("public", "service", "internal"),
    [
        ("/api/v1/experts", "profiles", "/experts"),
        ("/api/v1/experts/e1/visibility", "profiles", "/experts/e1/visibility"),
        ("/api/v1/organizations/o1", "profiles", "/organizations/o1"),
        ("/api/v1/admin/experts/export", "profiles", "/admin/experts/export"),
        ("/api/v1/requests/r1/ranking", "matching", "/requests/r1/ranking"),
        ("/api/v1/requests/r1/proposals", "matching", "/requests/r1/proposals"),
        ("/api/v1/requests/r1/history", "matching", "/requests/r1/history"),
        ("/api/v1/proposals", "matching", "/proposals"),
        ("/api/v1/proposals/p1/confirm", "matching", "/proposals/p1/confirm"),
        ("/api/v1/engagements/g1/ratings", "matching", "/engagements/g1/ratings"),
        ("/api/v1/search/experts", "search", "/search/experts"),
    ],
)
def test_public_paths_map_to_services_and_back(public: str, service: str, internal: str) -> None:
    assert resolve(public) == (service, internal)
    assert public_path(service, internal) == public


def test_paths_no_service_owns() -> None:
    assert resolve("/api/v1/expertsx") is None and resolve("/api/v1/auth/me") is None
    assert public_path("profiles", "/healthz") is None and public_path("search", "/experts") is None


def test_calls_are_forwarded_with_a_token_for_the_service(client: TestClient, account: Callable[..., dict]) -> None:
    anonymous = client.get("/api/v1/experts/e1", params=[("tag", "a"), ("tag", "b")])
    assert anonymous.status_code == 200, anonymous.text
    echo = anonymous.json()
    assert (echo["service"], echo["path"], echo["role"]) == ("profiles", "/experts/e1", None)
    assert echo["query"] == [["tag", "a"], ["tag", "b"]]

    sme = account("sme", "sme@example.jp")
    posted = client.patch("/api/v1/requests/r1", headers=sme, json={"title": "見直し"})
    echo = posted.json()
    assert (echo["service"], echo["method"], echo["path"]) == ("matching", "PATCH", "/requests/r1")
    assert (echo["role"], echo["audience"]) == ("sme", "matching") and "見直し" in echo["body"]
    assert posted.headers["x-request-id"]

    submitted = client.post("/api/v1/requests", headers=sme, json={"title": "t", "prefecture": "13"})
    assert submitted.status_code == 201 and submitted.json() == {"id": "r1", "title": "t"}
    assert client.get("/api/v1/search/experts", params={"q": "山田"}).json()["items"][0]["name"] == "山田"


def test_an_unreachable_service_is_a_503(settings: GatewaySettings) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with TestClient(create_app(settings, upstream=http)) as client:
        response = client.get("/api/v1/search/experts")
    assert response.status_code == 503 and response.json()["error"]["code"] == "upstream_unavailable"


def _framing_upstream() -> FastAPI:
    """A service that says how a call was framed (length or chunks) and answers small or large."""
    app = FastAPI()

    @app.api_route("/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def framing(request: Request, rest: str):
        body = await request.body()
        said = {
            "content_length": request.headers.get("content-length"),
            "transfer_encoding": request.headers.get("transfer-encoding"),
            "body": body.decode(),
        }
        if rest.endswith("large"):  # unknown length: the proxy streams it through
            chunk = b"x" * 65536
            return StreamingResponse(iter([chunk] * 40), media_type="text/csv")
        return JSONResponse(said)

    return app


def test_small_bodies_pass_whole_with_their_length_and_large_ones_stream(settings: GatewaySettings) -> None:
    """Speed without a change of behaviour (issue 13): a GET carries no body, a small body goes with its length
    (not chunked), a small answer comes back whole with its length, and a large one still streams."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=_framing_upstream()))
    with TestClient(create_app(settings, upstream=http)) as client:
        got = client.get("/api/v1/search/experts", params={"q": "a"})
        assert got.status_code == 200 and got.headers["content-length"] == str(len(got.content))
        assert got.json() == {"content_length": None, "transfer_encoding": None, "body": ""}
        posted = client.post("/api/v1/search/experts", json={"title": "相談"}).json()
        assert posted["transfer_encoding"] is None and posted["body"] == '{"title":"相談"}'
        assert posted["content_length"] == str(len(posted["body"].encode()))
        large = client.get("/api/v1/admin/experts/large")
        assert large.status_code == 200 and len(large.content) == 40 * 65536
        assert large.headers["content-type"].startswith("text/csv")


def test_the_upstream_client_keeps_enough_connections_alive(settings: GatewaySettings) -> None:
    client = upstream_client(settings)
    for service in SERVICES:
        transport = client._transport_for_url(httpx.URL(settings.service_url(service) + "/x"))
        assert isinstance(transport, ServiceTransport)  # a pool of its own per service
        limits = transport.limits
        assert limits.max_keepalive_connections >= 100 and limits.keepalive_expiry < 5  # uvicorn's keep-alive: 5 s


class _ClosingService:
    """A real HTTP service on a socket that answers the first call of each connection (kept alive) and closes
    the connection on the second without answering, as a service closing an idle connection at the moment a
    call is sent on it does."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        calls = self.calls

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for answered in (True, False):
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        byte = self.rfile.read(1)
                        if not byte:
                            return
                        head += byte
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    self.rfile.read(length)
                    calls.append(head.split(b" ")[0].decode())
                    if not answered:
                        return  # closed without an answer
                    body = b'{"ok": true}'
                    self.wfile.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                        % (len(body), body)
                    )
                    self.wfile.flush()

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_real_transport_retries_a_read_on_a_closed_connection_and_not_a_write(settings: GatewaySettings) -> None:
    """Through aiohttp's pool on real sockets (``ServiceTransport``): a GET sent on a kept-alive connection that
    the service closes is sent once more on a new one; a POST is not (it may have been applied): a 503."""
    service = _ClosingService()
    try:
        configured = settings.model_copy(update={"search_url": service.url})
        with TestClient(create_app(configured)) as client:
            assert client.get("/api/v1/search/experts").json() == {"ok": True}
            assert client.get("/api/v1/search/experts").json() == {"ok": True}  # closed under it, sent again
            assert service.calls == ["GET", "GET", "GET"]
            service.calls.clear()
            written = client.post("/api/v1/search/experts", json={})  # the kept connection, closed under it
        assert written.status_code == 503 and written.json()["error"]["code"] == "upstream_unavailable"
        assert service.calls == ["POST"]  # sent once: it may have been applied
    finally:
        service.stop()


def test_a_service_that_refuses_connections_is_a_503_not_a_timeout(settings: GatewaySettings) -> None:
    configured = settings.model_copy(update={"search_url": f"http://127.0.0.1:{free_port()}"})  # nothing listens
    with TestClient(create_app(configured)) as client:
        response = client.get("/api/v1/search/experts")
    assert response.status_code == 503 and response.json()["error"]["code"] == "upstream_unavailable"


def test_a_read_on_a_connection_closed_under_it_is_sent_again_and_a_write_is_not(settings: GatewaySettings) -> None:
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) % 2 == 1:  # the first try of each call meets a connection the service just closed
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    with TestClient(create_app(settings, upstream=http)) as client:
        assert client.get("/api/v1/search/experts").json() == {"ok": True}
        assert calls == ["GET", "GET"]
        calls.clear()
        written = client.post("/api/v1/search/experts", json={})
    assert written.status_code == 503 and calls == ["POST"]


def test_proxied_routes_answer_errors_in_both_languages_and_are_timed_by_template(client: TestClient) -> None:
    """The proxied endpoint declares no dependency (it awaits the caller itself): a refused caller still gets
    the bilingual JSON error, and the latency metric names the route's template, never the raw path."""
    forged = client.get("/api/v1/requests/r-secret-1", headers={"authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
    error = forged.json()["error"]
    assert error["message_ja"] and error["message_en"] and "r-secret-1" not in forged.text
    assert client.get("/api/v1/experts/e-raw-77").status_code == 200
    routes = {
        sample.labels["route"]
        for metric in REGISTRY.collect()
        if metric.name == "tsunagu_http_request_duration_seconds"
        for sample in metric.samples
        if sample.labels.get("service") == "gateway"
    }
    assert {"/api/v1/experts/{rest}", "/api/v1/requests/{rest}"} <= routes
    assert not any("e-raw-77" in route or "r-secret-1" in route for route in routes)
