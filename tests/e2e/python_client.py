"""The official Python MCP client (`mcp` 2.x), given nothing but the MCP URL, end to end.

It gets the 401, discovers the protected-resource metadata and the authorization server's
metadata, registers, is authorised (the redirect handler GETs the authorization URL without
following redirects and reads `code`, `state` and `iss` from `Location`), gets a token,
initialises a session and lists the tools. Every HTTP request it makes is printed and recorded.
Exit 0 when a token was obtained and a tool was listed, 1 otherwise.

    python python_client.py http://127.0.0.1:18787/mcp [--record PATH]

With `--record`, a JSON record of the run is written there, also when it fails: whether it
succeeded, the error, whether a token was obtained, the tools listed, and every request with its
status and content type. `verdict.py` judges it, the same way for every client.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from importlib.metadata import version

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1:1/callback"


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Record:
    """What the run did, as `verdict.py` reads it."""

    def __init__(self) -> None:
        self.client = f"mcp {version('mcp')} (Python)"
        self.ok = False
        self.error: str | None = None
        self.token = False
        self.tools: list[str] = []
        self.whoami: str | None = None
        self.requests: list[dict] = []

    async def on_request(self, request: httpx2.Request) -> None:
        print(f"  -> {request.method} {request.url}")
        self.requests.append(
            {
                "method": request.method,
                "url": str(request.url),
                "status": None,
                "content_type": None,
                "www_authenticate": None,
            }
        )

    async def on_response(self, response: httpx2.Response) -> None:
        print(f"  <- {response.status_code} {response.request.method} {response.request.url}")
        # Responses arrive in request order on this client, but match by identity to be sure.
        for entry in reversed(self.requests):
            same = entry["method"] == response.request.method
            if same and entry["url"] == str(response.request.url) and entry["status"] is None:
                entry["status"] = response.status_code
                entry["content_type"] = response.headers.get("content-type")
                entry["www_authenticate"] = response.headers.get("www-authenticate")
                break

    def write(self, path: str) -> None:
        document = {
            "client": self.client,
            "ok": self.ok,
            "error": self.error,
            "token": self.token,
            "tools": self.tools,
            "whoami": self.whoami,
            "requests": self.requests,
        }
        with open(path, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2)


async def run(mcp_url: str, record: Record) -> int:
    callback: dict[str, str | None] = {}

    async def redirect_handler(authorization_url: str) -> None:
        print(f"authorize: GET {authorization_url.split('?')[0]} (redirects not followed)")
        hooks = {"request": [record.on_request], "response": [record.on_response]}
        async with httpx2.AsyncClient(
            follow_redirects=False, timeout=10, trust_env=False, event_hooks=hooks
        ) as http:
            response = await http.get(authorization_url)
        location = response.headers.get("location")
        if response.status_code != 302 or not location:
            raise RuntimeError(
                f"/authorize answered {response.status_code}, not a 302 with Location"
            )
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        callback.update(
            {name: query[name][0] if name in query else None for name in ("code", "state", "iss")}
        )
        print(
            f"authorize: 302 with code, state={'yes' if callback['state'] else 'no'}, "
            f"iss={callback['iss']}"
        )

    async def callback_handler() -> AuthorizationCodeResult:
        if not callback.get("code"):
            raise RuntimeError("no authorization code was received")
        return AuthorizationCodeResult(
            code=callback["code"], state=callback["state"], iss=callback["iss"]
        )

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="specgen e2e",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    hooks = {"request": [record.on_request], "response": [record.on_response]}
    http = httpx2.AsyncClient(auth=provider, event_hooks=hooks, timeout=15, trust_env=False)
    async with (
        http,
        streamable_http_client(mcp_url, http_client=http) as (read_stream, write_stream, *_),
        ClientSession(read_stream, write_stream) as session,
    ):
        init = await session.initialize()
        server = f"{init.server_info.name} {init.server_info.version}"
        print(f"initialize: server {server}, protocol {init.protocol_version}")
        tools = await session.list_tools()
        names = [tool.name for tool in tools.tools]
        print(f"tools/list: {names}")
        # The handler answers with the claims the router verified and handed on.
        result = await session.call_tool("whoami", {})
        record.whoami = " ".join(getattr(block, "text", "") for block in result.content)
        print(f"tools/call whoami: {record.whoami}")
    record.token = storage.tokens is not None
    record.tools = names
    if storage.tokens is None:
        record.error = "no token was obtained"
    elif not names:
        record.error = "the server listed no tool"
    if record.error:
        print(f"FAIL: {record.error}", file=sys.stderr)
        return 1
    print("ok: 401, discovery, registration, authorization, token, initialize, tools/list")
    record.ok = True
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="the official Python MCP client, end to end")
    parser.add_argument("mcp_url")
    parser.add_argument("--record", help="write a JSON record of the run here")
    try:
        args = parser.parse_args()
    except SystemExit:
        return 64
    record = Record()
    try:
        status = anyio.run(run, args.mcp_url, record)
    except Exception as e:  # noqa: BLE001 - any failure is the test's failure, reported plainly
        record.error = describe(e)
        print(f"FAIL: {record.error}", file=sys.stderr)
        status = 1
    if args.record:
        record.write(args.record)
    return status


def describe(error: BaseException) -> str:
    """The error's class and message, with the errors an exception group wraps."""
    if isinstance(error, BaseExceptionGroup):
        inner = "; ".join(describe(e) for e in error.exceptions)
        return f"{type(error).__name__}: {inner}"
    return f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    sys.exit(main())
