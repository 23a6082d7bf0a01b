"""Checks that a deployment's MCP endpoint refuses every token it should and takes the good one.

The official clients only ever present good tokens, so a router that accepted any bearer token
would pass their runs. This sends `initialize` with the token a client run obtained, which must
be answered, and with tokens made from it that must each get a 401: a tampered signature, the
same claims signed by another key under the same key id, `alg: none`, and something that is not
a JWT at all.

    python token_checks.py MCP_URL TOKEN_FILE

Prints one line per check; exit 0 when all pass, 1 when one fails, 64 on a usage error. Only
loopback URLs are accepted, and proxies are never used.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "specgen token checks", "version": "0"},
    },
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forgeries(token: str) -> dict[str, str]:
    """Tokens that look like `token` but that no verifier may accept, by what is wrong."""
    header_part, claims_part, signature_part = token.split(".")
    header = json.loads(unb64url(header_part))
    signature = unb64url(signature_part)
    tampered = b64url(bytes([signature[0] ^ 1]) + signature[1:])

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_input = f"{header_part}.{claims_part}".encode("ascii")
    foreign = b64url(other_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256()))

    unsigned_header = b64url(json.dumps({**header, "alg": "none"}).encode())
    return {
        "tampered signature": f"{header_part}.{claims_part}.{tampered}",
        "signed by another key under the same kid": f"{header_part}.{claims_part}.{foreign}",
        "alg none": f"{unsigned_header}.{claims_part}.",
        "not a JWT": "not.a.jwt",
    }


def post_initialize(mcp_url: str, token: str) -> int:
    """The status of `initialize` sent with `token`; loopback only, no proxy, no redirect."""
    if urllib.parse.urlsplit(mcp_url).hostname != "127.0.0.1":
        raise ValueError(f"{mcp_url} is not on 127.0.0.1")
    request = urllib.request.Request(
        mcp_url,
        data=json.dumps(INITIALIZE).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def check(mcp_url: str, token: str) -> int:
    """Runs every check and returns how many failed."""
    failed = 0
    status = post_initialize(mcp_url, token)
    passed = status == 200
    failed += not passed
    print(f"{'pass' if passed else 'FAIL'}  good token: initialize answered {status}")
    for what, forged in forgeries(token).items():
        status = post_initialize(mcp_url, forged)
        passed = status == 401
        failed += not passed
        print(f"{'pass' if passed else 'FAIL'}  {what}: initialize answered {status}, expected 401")
    return failed


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: token_checks.py MCP_URL TOKEN_FILE", file=sys.stderr)
        return 64
    with open(sys.argv[2], encoding="utf-8") as file:
        token = file.read().strip()
    if token.count(".") != 2:
        print("the token file holds no JWT", file=sys.stderr)
        return 64
    return 1 if check(sys.argv[1], token) else 0


if __name__ == "__main__":
    sys.exit(main())
