"""The end-to-end test authorization server must refuse every flow that is not exactly right.

It approves at once, so its strictness is what gives a client's success its meaning: a client
that gets a token from it must have registered, sent an S256 PKCE challenge, come back with the
matching verifier, the same client id, redirect URI and resource, and used its code once. Each
test below pairs a refused request with the correct one it differs from, which must still work.

The server runs in this process on a port the system picks (127.0.0.1:0), and the one test of
its command line runs it as a child process on a free port and waits for it to exit. Nothing
here follows a redirect or goes through a proxy; the redirect URIs and resources are only
strings the server echoes, never contacted.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

import auth_server

RUN_ID = "test-" + secrets.token_hex(4)
REDIRECT = "http://127.0.0.1:1/callback"
OTHER_REDIRECT = "http://127.0.0.1:2/callback"
RESOURCE = "http://127.0.0.1:1/mcp"
SCOPE = "mcp:tools"
TIMEOUT = 10


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce() -> tuple[str, str]:
    """A code verifier (RFC 7636: 43 to 128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def error(self) -> str | None:
        return self.json().get("error")


class Server:
    """A client of one running authorization server: one connection per request, no proxy."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str) -> Response:
        return self.call("GET", path)

    def register(self, redirect_uris: list[str] | None = None) -> str:
        response = self.register_raw({"redirect_uris": redirect_uris or [REDIRECT]})
        assert response.status == 201, response.body
        return response.json()["client_id"]

    def register_raw(self, metadata: object) -> Response:
        return self.call("POST", "/register", json.dumps(metadata).encode(), "application/json")

    def authorize(self, **params: str | None) -> Response:
        query = {name: value for name, value in params.items() if value is not None}
        return self.get("/authorize?" + urllib.parse.urlencode(query))

    def token(self, **form: str | None) -> Response:
        fields = {name: value for name, value in form.items() if value is not None}
        body = urllib.parse.urlencode(fields).encode()
        return self.call("POST", "/token", body, "application/x-www-form-urlencoded")


def authorize_params(client_id: str, challenge: str, /, **overrides: str | None) -> dict:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-" + secrets.token_hex(4),
        "resource": RESOURCE,
        "scope": SCOPE,
    }
    params.update(overrides)
    return params


def token_form(client_id: str, code: str, verifier: str | None, /, **overrides: str | None) -> dict:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }
    form.update(overrides)
    return form


def redirect_query(response: Response) -> dict[str, str]:
    assert response.status == 302, response.body
    query = urllib.parse.urlsplit(response.headers["Location"]).query
    return {name: values[0] for name, values in urllib.parse.parse_qs(query).items()}


def code_for(server: Server, client_id: str, challenge: str, /, **overrides: str | None) -> str:
    """An authorization code, from an /authorize the server must approve."""
    response = server.authorize(**authorize_params(client_id, challenge, **overrides))
    return redirect_query(response)["code"]


def assert_refused(response: Response, status: int, error: str) -> None:
    assert (response.status, response.error) == (status, error), response.body
    assert "Location" not in response.headers
    assert "access_token" not in response.json()


def assert_token(response: Response) -> str:
    assert response.status == 200, response.body
    body = response.json()
    assert body["token_type"] == "Bearer"
    return body["access_token"]


def assert_flow_works(server: Server, client_id: str, redirect_uri: str = REDIRECT) -> None:
    """The correct flow, for a client a refused request was made for, still gets a token."""
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge, redirect_uri=redirect_uri)
    assert_token(server.token(**token_form(client_id, code, verifier, redirect_uri=redirect_uri)))


@pytest.fixture(scope="module")
def server():
    authority = auth_server.Authority("http://127.0.0.1:0", None)
    handler = auth_server.make_handler(authority, RUN_ID, {"left": 10_000})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    # The issuer names the port the system picked, before any request is served.
    authority.issuer = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(port)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)


# --- the correct flow --------------------------------------------------------------------------


def test_whoami_answers_the_run_id_and_the_issuer(server):
    response = server.get("/_whoami")
    assert response.status == 200
    assert response.json() == {"run_id": RUN_ID, "issuer": server.issuer}


def test_metadata_names_the_issuer_and_only_s256(server):
    metadata = server.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == server.issuer
    assert metadata["token_endpoint"] == server.issuer + "/token"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["grant_types_supported"] == ["authorization_code"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_the_full_flow_gives_a_jwt_signed_by_the_jwks_key(server):
    registration = server.register_raw({"redirect_uris": [REDIRECT], "client_name": "t"})
    assert registration.status == 201
    client_id = registration.json()["client_id"]
    assert registration.json()["token_endpoint_auth_method"] == "none"

    verifier, challenge = pkce()
    params = authorize_params(client_id, challenge)
    response = server.authorize(**params)
    assert response.status == 302
    assert response.headers["Location"].startswith(REDIRECT + "?")
    query = redirect_query(response)
    assert query["state"] == params["state"]
    assert query["iss"] == server.issuer
    assert query["code"]

    before = int(time.time())
    body = server.token(**token_form(client_id, query["code"], verifier)).json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == SCOPE
    header_b64, claims_b64, signature_b64 = body["access_token"].split(".")
    header = json.loads(b64url_decode(header_b64))
    claims = json.loads(b64url_decode(claims_b64))

    (key,) = server.get("/jwks").json()["keys"]
    assert header == {"alg": "RS256", "typ": "JWT", "kid": key["kid"]}
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert claims["iss"] == server.issuer
    assert claims["aud"] == RESOURCE
    assert claims["scope"] == SCOPE
    assert claims["client_id"] == client_id
    assert before < claims["exp"] <= int(time.time()) + 600

    public_key = rsa.RSAPublicNumbers(
        int.from_bytes(b64url_decode(key["e"]), "big"),
        int.from_bytes(b64url_decode(key["n"]), "big"),
    ).public_key()
    signing_input = f"{header_b64}.{claims_b64}".encode("ascii")
    signature = b64url_decode(signature_b64)
    public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    # The check has teeth: the same signature does not cover other claims.
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, signing_input + b"x", padding.PKCS1v15(), hashes.SHA256())


def test_without_resource_at_token_the_authorized_resource_is_the_audience(server):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    access_token = assert_token(
        server.token(**token_form(client_id, code, verifier, resource=None))
    )
    assert json.loads(b64url_decode(access_token.split(".")[1]))["aud"] == RESOURCE


# --- PKCE --------------------------------------------------------------------------------------


def test_a_wrong_verifier_is_refused_and_spends_the_code(server):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    wrong, _ = pkce()
    assert_refused(server.token(**token_form(client_id, code, wrong)), 400, "invalid_grant")
    # A failed attempt spends the code, so verifiers cannot be tried one after another.
    assert_refused(server.token(**token_form(client_id, code, verifier)), 400, "invalid_grant")
    assert_flow_works(server, client_id)


def test_a_missing_verifier_is_refused(server):
    client_id = server.register()
    _, challenge = pkce()
    code = code_for(server, client_id, challenge)
    assert_refused(server.token(**token_form(client_id, code, None)), 400, "invalid_grant")
    assert_flow_works(server, client_id)


@pytest.mark.parametrize("verifier", ["short", "a" * 129, "é" * 43, "a b" + "c" * 41])
def test_a_malformed_verifier_is_refused_even_when_it_matches(server, verifier):
    # RFC 7636 4.1: 43 to 128 characters of [A-Za-z0-9-._~]. The challenge is made from the
    # malformed verifier itself, so only the format check can refuse it.
    client_id = server.register()
    challenge = b64url(hashlib.sha256(verifier.encode("utf-8")).digest())
    code = code_for(server, client_id, challenge)
    assert_refused(server.token(**token_form(client_id, code, verifier)), 400, "invalid_grant")
    assert_flow_works(server, client_id)


@pytest.mark.parametrize("method", ["plain", None, "s256"])
def test_authorize_refuses_any_challenge_method_but_s256(server, method):
    client_id = server.register()
    verifier, _ = pkce()
    # With `plain` the challenge is the verifier itself.
    params = authorize_params(client_id, verifier, code_challenge_method=method)
    assert_refused(server.authorize(**params), 400, "invalid_request")
    assert_flow_works(server, client_id)


@pytest.mark.parametrize("challenge", [None, ""])
def test_authorize_refuses_a_missing_challenge(server, challenge):
    client_id = server.register()
    params = authorize_params(client_id, "x", code_challenge=challenge)
    assert_refused(server.authorize(**params), 400, "invalid_request")
    assert_flow_works(server, client_id)


def test_authorize_refuses_a_response_type_other_than_code(server):
    client_id = server.register()
    _, challenge = pkce()
    params = authorize_params(client_id, challenge, response_type="token")
    assert_refused(server.authorize(**params), 400, "invalid_request")
    assert_flow_works(server, client_id)


# --- client and redirect URI -------------------------------------------------------------------


@pytest.mark.parametrize("client_id", ["client-0000000000000000", "", None])
def test_authorize_refuses_an_unknown_client(server, client_id):
    _, challenge = pkce()
    params = authorize_params("x", challenge, client_id=client_id)
    assert_refused(server.authorize(**params), 400, "invalid_request")
    assert_flow_works(server, server.register())


def test_token_refuses_an_unknown_client_and_spends_the_code(server):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    form = token_form("client-0000000000000000", code, verifier)
    assert_refused(server.token(**form), 400, "invalid_grant")
    assert_refused(server.token(**token_form(client_id, code, verifier)), 400, "invalid_grant")
    assert_flow_works(server, client_id)


def test_token_refuses_a_missing_client_id(server):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    form = token_form(client_id, code, verifier, client_id=None)
    assert_refused(server.token(**form), 400, "invalid_grant")
    assert_flow_works(server, client_id)


def test_a_code_is_refused_to_another_registered_client(server):
    owner = server.register()
    other = server.register()
    verifier, challenge = pkce()
    code = code_for(server, owner, challenge)
    # The other client has the same redirect URI and even the verifier: the code is still not its.
    assert_refused(server.token(**token_form(other, code, verifier)), 400, "invalid_grant")
    assert_flow_works(server, owner)
    assert_flow_works(server, other)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        OTHER_REDIRECT,
        REDIRECT + "/",
        REDIRECT + "?next=x",
        REDIRECT.replace("127.0.0.1", "localhost"),
        "https://example.com/callback",
        "",
        None,
    ],
)
def test_authorize_refuses_a_redirect_uri_not_registered(server, redirect_uri):
    # Registered URIs match exactly, and a refusal never redirects to the URI it refused.
    client_id = server.register([REDIRECT])
    _, challenge = pkce()
    params = authorize_params(client_id, challenge, redirect_uri=redirect_uri)
    assert_refused(server.authorize(**params), 400, "invalid_request")
    assert_flow_works(server, client_id)


def test_a_redirect_uri_registered_for_another_client_is_refused(server):
    server.register([OTHER_REDIRECT])
    client_id = server.register([REDIRECT])
    _, challenge = pkce()
    params = authorize_params(client_id, challenge, redirect_uri=OTHER_REDIRECT)
    assert_refused(server.authorize(**params), 400, "invalid_request")


@pytest.mark.parametrize("redirect_uri", [OTHER_REDIRECT, REDIRECT + "/", "", None])
def test_token_refuses_a_redirect_uri_other_than_the_authorized_one(server, redirect_uri):
    # Both URIs are registered for the client; the code was issued for the first one only.
    client_id = server.register([REDIRECT, OTHER_REDIRECT])
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    form = token_form(client_id, code, verifier, redirect_uri=redirect_uri)
    assert_refused(server.token(**form), 400, "invalid_grant")
    assert_flow_works(server, client_id)
    assert_flow_works(server, client_id, OTHER_REDIRECT)


# --- the code ----------------------------------------------------------------------------------


def test_a_code_is_used_once(server):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    assert_token(server.token(**token_form(client_id, code, verifier)))
    assert_refused(server.token(**token_form(client_id, code, verifier)), 400, "invalid_grant")
    assert_flow_works(server, client_id)


@pytest.mark.parametrize("code", ["not-a-code", "", None])
def test_an_unknown_code_is_refused(server, code):
    client_id = server.register()
    verifier, _ = pkce()
    assert_refused(
        server.token(**token_form(client_id, "x", verifier, code=code)), 400, "invalid_grant"
    )


@pytest.mark.parametrize("grant_type", ["refresh_token", "client_credentials", "password", None])
def test_an_unsupported_grant_type_is_refused_and_leaves_the_code(server, grant_type):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    form = token_form(client_id, code, verifier, grant_type=grant_type)
    assert_refused(server.token(**form), 400, "unsupported_grant_type")
    # The grant type is checked before the code is looked up: the code is still good.
    assert_token(server.token(**token_form(client_id, code, verifier)))


# --- resource (RFC 8707) -----------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["http://127.0.0.1:9/mcp", RESOURCE + "/", "urn:other"])
def test_token_refuses_a_resource_other_than_the_authorized_one(server, resource):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge)
    form = token_form(client_id, code, verifier, resource=resource)
    assert_refused(server.token(**form), 400, "invalid_target")
    assert_flow_works(server, client_id)


def test_token_refuses_a_flow_without_any_resource(server):
    client_id = server.register()
    verifier, challenge = pkce()
    code = code_for(server, client_id, challenge, resource=None)
    form = token_form(client_id, code, verifier, resource=None)
    assert_refused(server.token(**form), 400, "invalid_target")
    assert_flow_works(server, client_id)


# --- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [{}, {"client_name": "t"}, [REDIRECT], {"redirect_uris": 1}])
def test_register_refuses_metadata_without_redirect_uris(server, metadata):
    response = server.register_raw(metadata)
    assert (response.status, response.error) == (400, "invalid_client_metadata")
    assert "client_id" not in response.json()


def test_register_refuses_a_body_that_is_not_json(server):
    response = server.call("POST", "/register", b"redirect_uris=x", "application/json")
    assert (response.status, response.error) == (400, "invalid_client_metadata")


def test_each_registration_is_a_new_client(server):
    first, second = server.register(), server.register()
    assert first != second
    assert first.startswith("client-") and second.startswith("client-")


# --- the command line --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(E2E / "auth_server.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_server_exits_after_max_requests():
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    process = run_cli("--issuer", issuer, "--run-id", RUN_ID, "--max-requests", "3")
    try:
        # The line comes before it serves; end of output (a failed start) ends the read too.
        assert process.stdout.readline().strip() == f"auth_server: listening as {issuer}"
        client = Server(port)
        for _ in range(2):
            response = client.get("/_whoami")
            assert response.status == 200
            assert response.json() == {"run_id": RUN_ID, "issuer": issuer}
        # The third request spends the budget. Its answer can be lost: the server stops as the
        # budget is spent and may exit before the thread answering it has written. Only the exit
        # is checked here.
        try:
            client.get("/_whoami")
        except http.client.RemoteDisconnected:
            pass
        assert process.wait(timeout=TIMEOUT) == 0
        # Nothing listens on the port any more (a bare connect; no request is sent).
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
        process.stdout.close()
        process.stderr.close()


@pytest.mark.parametrize(
    "issuer",
    [
        "http://localhost:8080",
        "https://127.0.0.1:8080",
        "http://127.0.0.1",
        "http://127.0.0.1:8080/as",
        "http://192.0.2.1:8080",
    ],
)
def test_the_server_refuses_an_issuer_that_is_not_loopback_http_with_a_port(issuer):
    # Checked before anything is bound or served.
    process = run_cli("--issuer", issuer, "--run-id", RUN_ID, "--timeout", "5")
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=TIMEOUT)
    assert process.returncode == 64
    assert "is not http://127.0.0.1:PORT" in stderr
