"""token_checks must fail an endpoint that accepts forged tokens, and pass one that does not.

Two loopback endpoints stand in for the router: one answers 200 to any bearer token (as a router
that stopped verifying would), the other only to the exact good token.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import token_checks

# A well-formed RS256 JWT shape; its signature is never verified by these stand-ins.
GOOD = (
    token_checks.b64url(b'{"alg":"RS256","typ":"JWT","kid":"k1"}')
    + "."
    + token_checks.b64url(b'{"sub":"e2e-user","aud":"http://127.0.0.1/mcp"}')
    + "."
    + token_checks.b64url(bytes(range(64)))
)


@contextmanager
def endpoint(accepts) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            self.send_response(200 if accepts(token) else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_that_takes_any_token_fails_every_forgery() -> None:
    with endpoint(lambda token: bool(token)) as url:
        assert token_checks.check(url, GOOD) == len(token_checks.forgeries(GOOD))


def test_an_endpoint_that_takes_only_the_good_token_passes() -> None:
    with endpoint(lambda token: token == GOOD) as url:
        assert token_checks.check(url, GOOD) == 0


def test_an_endpoint_that_refuses_the_good_token_fails() -> None:
    with endpoint(lambda token: False) as url:
        assert token_checks.check(url, GOOD) == 1


def test_every_forgery_differs_from_the_good_token() -> None:
    forged = token_checks.forgeries(GOOD)
    assert GOOD not in forged.values()
    assert len(set(forged.values())) == len(forged)
