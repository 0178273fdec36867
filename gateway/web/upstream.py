"""The web UI's calls to the services: the same public paths the JSON API serves (``gateway.proxy.ROUTES``
maps them to the owning service) and the same per-call token the proxy signs (``upstream_token``), so a
screen can never show or do more than the signed-in person could through ``/api/v1``.

Answers come back as ``Answer`` (status and JSON); ``ok()`` turns a service's refusal into the same
``ApiError`` the API would have answered, which the web error pages render in Japanese first. A form
reads ``Answer.fields`` to mark the field at fault."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway import proxy
from gateway.security import upstream_token
from gateway.settings import GatewaySettings
from tsunagu.auth import Principal
from tsunagu.errors import ApiError
from tsunagu.logging import request_id_var


@dataclass
class Answer:
    status: int
    data: Any = None
    error: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ok(self) -> bool:
        return self.status < 400

    @property
    def fields(self) -> dict[str, str]:
        """Field name -> Japanese reason, for marking the inputs of a form (the first reason per field)."""
        marked: dict[str, str] = {}
        for reason in self.error.get("fields") or []:
            name = str(reason.get("field", "")).split(".")[0] or "body"
            marked.setdefault(name, str(reason.get("message_ja", "")))
        return marked

    @property
    def message_ja(self) -> str:
        return str(self.error.get("message_ja") or "処理できませんでした")

    def as_error(self) -> ApiError:
        return ApiError(
            self.status,
            str(self.error.get("code") or "upstream_error"),
            self.message_ja,
            str(self.error.get("message_en") or "The request could not be completed"),
            list(self.error.get("fields") or []),
        )

    def ok(self) -> Any:
        """The answer's JSON, or the service's refusal raised as the API's error."""
        if not self.is_ok:
            raise self.as_error()
        return self.data


class Upstream:
    """Calls to the services on behalf of one caller (one request of the web UI)."""

    def __init__(self, client: httpx.AsyncClient, settings: GatewaySettings, caller: Principal) -> None:
        self.client = client
        self.settings = settings
        self.caller = caller

    async def call(
        self,
        method: str,
        public_path: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        caller: Principal | None = None,
    ) -> Answer:
        target = proxy.resolve(public_path)
        if target is None:
            raise ApiError(404, "not_found", "ページが見つかりません", "No service serves this path")
        service, path = target
        who = caller or self.caller
        headers = {"x-request-id": request_id_var.get() or "", "accept-language": "ja"}
        if who.is_authenticated:
            headers["authorization"] = "Bearer " + upstream_token(who, self.settings, service)
        try:
            response = await self.client.request(
                method,
                self.settings.service_url(service) + path,
                params=params,
                json=json,
                files=files,
                data=data,
                headers=headers,
            )
        except httpx.TimeoutException as error:
            raise ApiError(
                504,
                "upstream_timeout",
                "処理に時間がかかっています。しばらくしてから再度お試しください",
                f"The {service} service timed out",
            ) from error
        except httpx.TransportError as error:
            raise ApiError(
                503,
                "upstream_unavailable",
                "サービスに接続できません。しばらくしてから再度お試しください",
                f"The {service} service is unavailable",
            ) from error
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            return Answer(response.status_code, None, error if isinstance(error, dict) else {})
        return Answer(response.status_code, body)

    async def get(self, public_path: str, **params: Any) -> Any:
        """GET and the JSON, or the refusal raised (a missing object is the API's 404, shown as a page)."""
        clean = {key: value for key, value in params.items() if value is not None}
        return (await self.call("GET", public_path, params=clean)).ok()

    async def post(self, public_path: str, json: Any = None) -> Answer:
        return await self.call("POST", public_path, json=json)

    async def patch(self, public_path: str, json: Any) -> Answer:
        return await self.call("PATCH", public_path, json=json)

    async def gather(self, *calls: Any) -> list[Any]:
        """Several independent reads at once (a page's parts)."""
        return list(await asyncio.gather(*calls))
