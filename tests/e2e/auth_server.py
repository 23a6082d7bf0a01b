"""A test authorization server for the end-to-end runs: loopback only, bounded, auto-approving.

It serves RFC 8414 metadata for the issuer given on the command line, a JWKS with one RSA key
made at start-up, dynamic client registration (`/register`), an `/authorize` that approves at
once (302 to the redirect URI with `code`, `state` and RFC 9207 `iss`) and a `/token` that
checks PKCE (S256) and issues an RS256 JWT with `iss`, `aud` (the `resource` parameter), `exp`,
`scope` and a `kid` that names the JWKS key.

It answers `/_whoami` with the run id it was given, so a harness can tell it from a server left
over from another run. It exits after `--max-requests` requests or `--timeout` seconds.

    python auth_server.py --issuer http://127.0.0.1:18788 --run-id X [--token-file PATH]

With `--token-file`, the last access token issued is also written there, for `specgen probe`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Authority:
    def __init__(self, issuer: str, token_file: str | None) -> None:
        self.issuer = issuer
        self.token_file = token_file
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "e2e-" + secrets.token_hex(4)
        self.clients: dict[str, list[str]] = {}
        # code -> (client_id, redirect_uri, code_challenge, resource, scope)
        self.codes: dict[str, tuple[str, str, str, str, str]] = {}
        self.lock = threading.Lock()

    def metadata(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "registration_endpoint": f"{self.issuer}/register",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": int_b64url(numbers.n),
                    "e": int_b64url(numbers.e),
                }
            ]
        }

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + b64url(signature)


def make_handler(authority: Authority, run_id: str, budget: dict):
    class Handler(BaseHTTPRequestHandler):
        server_version = "specgen-e2e-as"

        def log_message(self, format: str, *args) -> None:
            sys.stderr.write("auth_server: %s\n" % (format % args))

        def send_json(self, status: int, body: dict, extra: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def count(self) -> None:
            with authority.lock:
                budget["left"] -= 1
                if budget["left"] <= 0:
                    threading.Thread(target=self.server.shutdown, daemon=True).start()

        def read_form(self) -> dict[str, str]:
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}

        def do_GET(self) -> None:
            self.count()
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            if url.path == "/.well-known/oauth-authorization-server":
                self.send_json(200, authority.metadata())
            elif url.path == "/jwks":
                self.send_json(200, authority.jwks())
            elif url.path == "/_whoami":
                self.send_json(200, {"run_id": run_id, "issuer": authority.issuer})
            elif url.path == "/authorize":
                self.authorize(query)
            else:
                self.send_json(404, {"error": "not_found"})

        def authorize(self, query: dict[str, str]) -> None:
            client_id = query.get("client_id", "")
            redirect_uri = query.get("redirect_uri", "")
            with authority.lock:
                registered = authority.clients.get(client_id)
            if registered is None or redirect_uri not in registered:
                self.send_json(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "unknown client or redirect_uri",
                    },
                )
                return
            pkce = query.get("code_challenge_method") == "S256" and query.get("code_challenge")
            if query.get("response_type") != "code" or not pkce:
                self.send_json(
                    400, {"error": "invalid_request", "error_description": "code with S256 only"}
                )
                return
            code = secrets.token_urlsafe(24)
            with authority.lock:
                authority.codes[code] = (
                    client_id,
                    redirect_uri,
                    query.get("code_challenge", ""),
                    query.get("resource", ""),
                    query.get("scope", ""),
                )
            params = {"code": code, "iss": authority.issuer}
            if "state" in query:
                params["state"] = query["state"]
            separator = "&" if "?" in redirect_uri else "?"
            self.send_response(302)
            self.send_header("Location", redirect_uri + separator + urllib.parse.urlencode(params))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            self.count()
            path = urllib.parse.urlsplit(self.path).path
            if path == "/register":
                self.register()
            elif path == "/token":
                self.token(self.read_form())
            else:
                self.send_json(404, {"error": "not_found"})

        def register(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
                redirect_uris = [str(u) for u in request["redirect_uris"]]
            except (ValueError, KeyError, TypeError):
                self.send_json(400, {"error": "invalid_client_metadata"})
                return
            client_id = "client-" + secrets.token_hex(8)
            with authority.lock:
                authority.clients[client_id] = redirect_uris
            answer = dict(request)
            answer.update(
                {
                    "client_id": client_id,
                    "client_id_issued_at": int(time.time()),
                    "token_endpoint_auth_method": "none",
                }
            )
            self.send_json(201, answer)

        def token(self, form: dict[str, str]) -> None:
            if form.get("grant_type") != "authorization_code":
                self.send_json(400, {"error": "unsupported_grant_type"})
                return
            with authority.lock:
                grant = authority.codes.pop(form.get("code", ""), None)
            if grant is None:
                self.send_json(
                    400, {"error": "invalid_grant", "error_description": "unknown or used code"}
                )
                return
            client_id, redirect_uri, challenge, resource, scope = grant
            verifier = form.get("code_verifier", "")
            # RFC 7636 4.1: 43 to 128 unreserved characters (which also keeps it ASCII).
            if not VERIFIER.fullmatch(verifier) or (
                b64url(hashlib.sha256(verifier.encode("ascii")).digest()) != challenge
            ):
                self.send_json(
                    400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                )
                return
            if form.get("client_id") != client_id or form.get("redirect_uri") != redirect_uri:
                self.send_json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "client or redirect_uri mismatch",
                    },
                )
                return
            # RFC 8707: the token is for the resource that was authorized, not another one.
            if resource and form.get("resource", resource) != resource:
                self.send_json(
                    400,
                    {"error": "invalid_target", "error_description": "not the resource authorized"},
                )
                return
            resource = form.get("resource") or resource
            if not resource:
                self.send_json(
                    400, {"error": "invalid_target", "error_description": "no resource parameter"}
                )
                return
            now = int(time.time())
            claims = {
                "iss": authority.issuer,
                "sub": "e2e-user",
                "aud": resource,
                "iat": now,
                "exp": now + 600,
                "scope": scope,
                "client_id": client_id,
            }
            access_token = authority.sign(claims)
            if authority.token_file:
                with open(authority.token_file, "w", encoding="ascii") as f:
                    f.write(access_token)
            self.send_json(
                200,
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 600,
                    "scope": scope,
                },
            )

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issuer", required=True, help="http://127.0.0.1:PORT, exactly as served")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--token-file")
    parser.add_argument("--max-requests", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    issuer = urllib.parse.urlsplit(args.issuer)
    if issuer.scheme != "http" or issuer.hostname != "127.0.0.1" or not issuer.port or issuer.path:
        print(f"auth_server: issuer {args.issuer!r} is not http://127.0.0.1:PORT", file=sys.stderr)
        return 64
    authority = Authority(args.issuer, args.token_file)
    try:
        server = ThreadingHTTPServer(
            ("127.0.0.1", issuer.port),
            make_handler(authority, args.run_id, {"left": args.max_requests}),
        )
    except OSError as e:
        print(f"auth_server: cannot listen on 127.0.0.1:{issuer.port}: {e}", file=sys.stderr)
        return 74
    server.daemon_threads = True
    timer = threading.Timer(args.timeout, server.shutdown)
    timer.daemon = True
    timer.start()
    print(f"auth_server: listening as {args.issuer}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
