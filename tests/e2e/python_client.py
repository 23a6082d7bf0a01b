"""The official Python MCP client (`mcp` 2.x), given nothing but the MCP URL, end to end.

It gets the 401, discovers the protected-resource metadata and the authorization server's
metadata, registers, is authorised (the redirect handler GETs the authorization URL without
following redirects and reads `code`, `state` and `iss` from `Location`), gets a token,
initialises a session and lists the tools. Every HTTP request it makes is printed. Exit 0 when a
tool was listed, 1 otherwise.

    python python_client.py http://127.0.0.1:18787/mcp
"""

from __future__ import annotations

import sys
import urllib.parse

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


async def log_request(request: httpx2.Request) -> None:
    print(f"  -> {request.method} {request.url}")


async def log_response(response: httpx2.Response) -> None:
    print(f"  <- {response.status_code} {response.request.method} {response.request.url}")


async def run(mcp_url: str) -> int:
    callback: dict[str, str | None] = {}

    async def redirect_handler(authorization_url: str) -> None:
        print(f"authorize: GET {authorization_url.split('?')[0]} (redirects not followed)")
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10) as http:
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
            f"authorize: 302 with code, state={'yes' if callback['state'] else 'no'}, iss={callback['iss']}"
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
    hooks = {"request": [log_request], "response": [log_response]}
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
    if storage.tokens is None:
        print("FAIL: no token was obtained", file=sys.stderr)
        return 1
    if not names:
        print("FAIL: the server listed no tool", file=sys.stderr)
        return 1
    print("ok: 401, discovery, registration, authorization, token, initialize, tools/list")
    return 0


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python_client.py MCP_URL", file=sys.stderr)
        return 64
    try:
        return anyio.run(run, sys.argv[1])
    except Exception as e:  # noqa: BLE001 - any failure is the test's failure, reported plainly
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
