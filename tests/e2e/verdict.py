"""Judges one end-to-end run of an MCP client: did it succeed or fail, and for the right reason?

A client's own error message is a poor witness: on an HTML discovery answer neither official
client mentions HTML, and a test that only matched messages could pass because a server was
missing. So the verdict rests on what happened on the wire, from two sides: the requests the
client recorded (`--record` of the client drivers) and the access log of `specgen serve`, which
names the route and backend that took each request.

    python verdict.py EXPECT RECORD --access-log FILE --mcp-url URL --issuer URL \\
        --discovery-backend NAME

EXPECT is `ok`, `shadowed-discovery` or `doubled-resource`. Each check is printed as pass or
fail; exit 0 when all pass, 1 when one fails, 64 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass

EXPECTATIONS = ("ok", "shadowed-discovery", "doubled-resource")

# `serve` writes `METHOD TARGET -> KEY (BACKEND) STATUS "CONTENT-TYPE"`, or `no route` for the
# route, with the content type quoted and escaped last so that nothing in it reads as a field.
ACCESS_LINE = re.compile(
    r"^(?P<method>\S+) (?P<target>\S+) -> "
    r"(?:(?P<key>.+) \((?P<backend>[^()]+)\)|no route) (?P<status>\d{3}) "
    r'"(?P<content_type>(?:[^"\\]|\\.)*)"$'
)


@dataclass
class Access:
    method: str
    path: str
    route: str | None
    backend: str | None
    status: int
    content_type: str


def parse_access_log(text: str) -> list[Access]:
    """The request lines of `specgen serve`'s stdout; other lines are skipped."""
    entries = []
    for line in text.splitlines():
        match = ACCESS_LINE.match(line)
        if match:
            entries.append(
                Access(
                    method=match["method"],
                    path=match["target"].split("?")[0],
                    route=match["key"],
                    backend=match["backend"],
                    status=int(match["status"]),
                    content_type=match["content_type"],
                )
            )
    return entries


def origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def is_html(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "text/html"


def path_inserted_prm(mcp_url: str) -> str:
    return f"{origin(mcp_url)}/.well-known/oauth-protected-resource{path(mcp_url)}"


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, name: str, passed: bool, detail: str) -> None:
        print(f"{'pass' if passed else 'FAIL'}  {name}: {detail}")
        if not passed:
            self.failed += 1


def judge(
    expect: str,
    record: dict,
    access: list[Access],
    mcp_url: str,
    issuer: str,
    discovery_backend: str,
    prm_resource: str | None,
    subject: str = "e2e-user",
) -> int:
    """Runs the checks of one expectation and returns how many failed."""
    checks = Checks()
    requests = record.get("requests") or []
    mcp_origin = origin(mcp_url)
    on_issuer = [r for r in requests if origin(r["url"]) == origin(issuer)]
    discovery_log = [a for a in access if a.path.startswith("/.well-known/")]
    client = record.get("client", "client")

    first = requests[0] if requests else None
    checks.check(
        "challenge",
        first is not None
        and first["method"] == "POST"
        and first["url"] == mcp_url
        and first["status"] == 401,
        f"{client} opened with POST {mcp_url} and got 401"
        if first
        else f"{client} made no request",
    )
    # The router's challenge is the clients' only pointer to the PRM in every deployment here.
    challenge = (first or {}).get("www_authenticate") or ""
    pointer = f'resource_metadata="{path_inserted_prm(mcp_url)}"'
    checks.check(
        "challenge-points-to-prm",
        challenge.startswith("Bearer ") and pointer in challenge,
        f"the 401 carried WWW-Authenticate: {challenge!r}",
    )

    if expect == "ok":
        checks.check(
            "connected",
            record.get("ok") is True and record.get("token") is True and bool(record.get("tools")),
            f"ok={record.get('ok')}, token={record.get('token')}, tools={record.get('tools')}, "
            f"error={record.get('error')}",
        )
        prm = [r for r in requests if r["url"] == path_inserted_prm(mcp_url)]
        checks.check(
            "prm-fetched",
            any(r["status"] == 200 and is_json(r["content_type"]) for r in prm),
            f"GET {path_inserted_prm(mcp_url)} answered JSON",
        )
        # Each step on the issuer, so a driver that skipped one cannot pass: registration,
        # the authorization request and its redirect, the token.
        for step, method, statuses in (
            ("/register", "POST", (200, 201)),
            ("/authorize", "GET", (302,)),
            ("/token", "POST", (200,)),
        ):
            checks.check(
                f"issuer{step.replace('/', '-')}",
                any(
                    path(r["url"]) == step and r["method"] == method and r["status"] in statuses
                    for r in on_issuer
                ),
                f"{method} {issuer}{step} answered {' or '.join(map(str, statuses))}",
            )
        # The handler's own answer: the claims the router verified reached it.
        whoami = record.get("whoami") or ""
        checks.check(
            "claims-reached-handler",
            whoami.startswith(f"subject {subject},"),
            f"whoami answered {whoami!r}",
        )
        # The gateway's side: the router answered an MCP request with 200, so the client's
        # report of a session is not the only witness.
        served = [
            a
            for a in access
            if a.method == "POST"
            and a.path == path(mcp_url)
            and a.backend == discovery_backend
            and a.status == 200
        ]
        checks.check(
            "mcp-served",
            bool(served),
            f"the gateway log shows POST {path(mcp_url)} answered 200 by `{discovery_backend}`",
        )
        wrong = [a for a in discovery_log if a.backend != discovery_backend]
        checks.check(
            "discovery-routed",
            bool(discovery_log) and not wrong,
            f"every /.well-known/ request reached `{discovery_backend}`"
            if not wrong
            else f"{wrong[0].method} {wrong[0].path} reached {wrong[0].route} ({wrong[0].backend})",
        )
    else:
        checks.check(
            "refused",
            record.get("ok") is False and record.get("token") is False,
            f"ok={record.get('ok')}, token={record.get('token')}, error={record.get('error')}",
        )
        mcp_after = [r for r in requests[1:] if r["url"] == mcp_url and r["status"] == 200]
        checks.check("no-session", not mcp_after, "no MCP request after the 401 was answered 200")
        # TypeScript v2 reads the issuer's metadata before it compares the PRM's resource with
        # the URL it called, and Python does not; neither may go on to authorise.
        started = [
            r
            for r in requests
            if path(r["url"]) in ("/authorize", "/token")
            or (origin(r["url"]) == origin(issuer) and path(r["url"]) == "/register")
        ]
        checks.check(
            "not-authorised",
            not started,
            "the client never registered with the issuer, authorised or asked for a token"
            if not started
            else f"the client sent {started[0]['method']} {started[0]['url']}",
        )

    if expect == "shadowed-discovery":
        # The issuer is named only in the PRM, which the wiki answered: the client never learnt
        # it.
        checks.check(
            "issuer-unknown",
            not on_issuer,
            f"the client never contacted {issuer}"
            if not on_issuer
            else f"the client sent {on_issuer[0]['method']} {on_issuer[0]['url']}",
        )
        html = [
            r
            for r in requests
            if origin(r["url"]) == mcp_origin
            and path(r["url"]).startswith("/.well-known/")
            and r["status"] == 200
            and is_html(r["content_type"])
        ]
        checks.check(
            "discovery-got-html",
            bool(html),
            f"{html[0]['method']} {html[0]['url']} was answered with HTML"
            if html
            else "no discovery request on the MCP origin was answered with HTML",
        )
        shadowed = [
            a
            for a in discovery_log
            if a.route == "$default" and a.backend != discovery_backend and is_html(a.content_type)
        ]
        checks.check(
            "default-answered",
            bool(shadowed),
            f"the gateway sent {shadowed[0].method} {shadowed[0].path} to $default "
            f"({shadowed[0].backend})"
            if shadowed
            else "no /.well-known/ request fell through to $default",
        )

    if expect == "doubled-resource":
        prm = [r for r in requests if r["url"] == path_inserted_prm(mcp_url)]
        checks.check(
            "prm-fetched",
            any(r["status"] == 200 and is_json(r["content_type"]) for r in prm),
            f"GET {path_inserted_prm(mcp_url)} answered JSON, so routing was not the problem",
        )
        doubled = mcp_url + path(mcp_url)
        checks.check(
            "prm-doubled",
            prm_resource == doubled,
            f"the PRM's resource is {prm_resource!r}, expected the doubled {doubled!r}",
        )
        # The client's refusal names the doubled URL itself, not merely some resource.
        error = record.get("error") or ""
        checks.check(
            "reason-named",
            doubled in error and mcp_url in error.replace(doubled, ""),
            f"the client's error names {doubled} against {mcp_url}: {error!r}",
        )
    return checks.failed


def fetch_prm_resource(mcp_url: str) -> str | None:
    """The `resource` of the path-inserted PRM, read from loopback only."""
    url = path_inserted_prm(mcp_url)
    if urllib.parse.urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"{url} is not on 127.0.0.1")
    # No proxy: the answer must come from the deployment on this machine, and nothing may leave it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return json.load(response).get("resource")
    except (OSError, ValueError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("expect", choices=EXPECTATIONS)
    parser.add_argument("record")
    parser.add_argument("--access-log", required=True)
    parser.add_argument("--mcp-url", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--discovery-backend", required=True)
    parser.add_argument("--subject", default="e2e-user", help="the test tokens' subject")
    try:
        args = parser.parse_args()
    except SystemExit as exit:
        return 0 if exit.code == 0 else 64
    with open(args.record, encoding="utf-8") as file:
        record = json.load(file)
    with open(args.access_log, encoding="utf-8") as file:
        access = parse_access_log(file.read())
    prm_resource = fetch_prm_resource(args.mcp_url) if args.expect == "doubled-resource" else None
    print(f"verdict for {record.get('client')}, expecting {args.expect}:")
    failed = judge(
        args.expect,
        record,
        access,
        args.mcp_url,
        args.issuer,
        args.discovery_backend,
        prm_resource,
        args.subject,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
