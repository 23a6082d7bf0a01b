"""The end-to-end verdict must fail every run that did not happen the way it expects.

Each record below is written by hand in the shape the client drivers write: a correct run, a
run on each mistake, and runs that fail for some other reason (no server, a server error, a
client that reached the issuer). Every expectation passes only its own run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import verdict

MCP = "http://127.0.0.1:18787/mcp"
ISSUER = "http://127.0.0.1:18788"
PRM = "http://127.0.0.1:18787/.well-known/oauth-protected-resource/mcp"
JSON = "application/json"
HTML = "text/html; charset=utf-8"


def req(
    method: str,
    url: str,
    status: int | None,
    content_type: str | None = JSON,
    www_authenticate: str | None = None,
) -> dict:
    return {
        "method": method,
        "url": url,
        "status": status,
        "content_type": content_type,
        "www_authenticate": www_authenticate,
    }


def record(ok: bool, requests: list[dict], error: str | None = None) -> dict:
    return {
        "client": "test",
        "ok": ok,
        "error": error,
        "token": ok,
        "tools": ["whoami"] if ok else [],
        "whoami": "subject e2e-user, scopes wiki" if ok else None,
        "requests": requests,
    }


CHALLENGE = req("POST", MCP, 401, JSON, f'Bearer resource_metadata="{PRM}", scope="wiki"')

# The gateway's access log when discovery reaches the router.
ROUTED = (
    'POST /mcp -> ANY /mcp (mcp) 401 "application/json"\n'
    "GET /.well-known/oauth-protected-resource/mcp -> "
    'ANY /.well-known/oauth-protected-resource/mcp (mcp) 200 "application/json"\n'
)

# The same, and the router answering an MCP request with a session.
SERVED = ROUTED + 'POST /mcp -> ANY /mcp (mcp) 200 "application/json"\n'

RUNS = {
    "ok": (
        record(
            True,
            [
                CHALLENGE,
                req("GET", PRM, 200),
                req("GET", f"{ISSUER}/.well-known/oauth-authorization-server", 200),
                req("POST", f"{ISSUER}/register", 201),
                req("GET", f"{ISSUER}/authorize?x=1", 302, None),
                req("POST", f"{ISSUER}/token", 200),
                req("POST", MCP, 200),
            ],
        ),
        SERVED,
        None,
    ),
    "shadowed-discovery": (
        record(
            False,
            [
                CHALLENGE,
                req("GET", PRM, 200, HTML),
                req(
                    "GET",
                    "http://127.0.0.1:18787/.well-known/oauth-authorization-server",
                    200,
                    HTML,
                ),
            ],
            "SyntaxError: Unexpected token '<'",
        ),
        (
            'POST /mcp -> ANY /mcp (mcp) 401 "application/json"\n'
            f'GET /.well-known/oauth-protected-resource/mcp -> $default (wiki) 200 "{HTML}"\n'
        ),
        None,
    ),
    "doubled-resource": (
        record(
            False,
            [
                CHALLENGE,
                req("GET", PRM, 200),
                req("GET", f"{ISSUER}/.well-known/oauth-authorization-server", 200),
            ],
            "Error: Protected resource http://127.0.0.1:18787/mcp/mcp does not match expected "
            "http://127.0.0.1:18787/mcp (or origin)",
        ),
        ROUTED,
        f"{MCP}/mcp",
    ),
    # Failures for other reasons, which no expectation may take for its own.
    "nothing-listening": (
        record(False, [req("POST", MCP, None, None)], "TypeError: fetch failed"),
        "",
        None,
    ),
    "server-error": (
        record(False, [req("POST", MCP, 500)], "MCPError: Server returned an error response"),
        'POST /mcp -> ANY /mcp (mcp) 500 "application/json"\n',
        None,
    ),
    "wrong-token-issuer": (
        record(
            False,
            [
                CHALLENGE,
                req("GET", PRM, 200),
                req("GET", f"{ISSUER}/.well-known/oauth-authorization-server", 200),
                req("POST", f"{ISSUER}/register", 201),
                req("GET", f"{ISSUER}/authorize?x=1", 302, None),
                req("POST", f"{ISSUER}/token", 200),
                req("POST", MCP, 401),
            ],
            "the resource server refused the token",
        ),
        'POST /mcp -> ANY /mcp (mcp) 401 "application/json"\n',
        f"{MCP}/mcp",
    ),
}


def judge(expect: str, run: str) -> int:
    rec, log, prm_resource = RUNS[run]
    return verdict.judge(
        expect, rec, verdict.parse_access_log(log), MCP, ISSUER, "mcp", prm_resource
    )


@pytest.mark.parametrize("expect", verdict.EXPECTATIONS)
@pytest.mark.parametrize("run", sorted(RUNS))
def test_each_expectation_passes_only_its_own_run(expect: str, run: str) -> None:
    failed = judge(expect, run)
    if run == expect:
        assert failed == 0
    else:
        assert failed > 0


def test_a_mistake_run_with_the_correct_prm_is_not_a_doubled_resource() -> None:
    rec, log, _ = RUNS["doubled-resource"]
    failed = verdict.judge(
        "doubled-resource", rec, verdict.parse_access_log(log), MCP, ISSUER, "mcp", MCP
    )
    assert failed == 1


def test_html_from_the_router_itself_is_not_shadowing() -> None:
    rec, _, _ = RUNS["shadowed-discovery"]
    log = (
        'GET /.well-known/oauth-protected-resource/mcp -> ANY /mcp/{proxy+} (mcp) 200 "text/html"\n'
    )
    failed = verdict.judge(
        "shadowed-discovery", rec, verdict.parse_access_log(log), MCP, ISSUER, "mcp", None
    )
    assert failed == 1


def test_the_access_log_is_read_as_serve_writes_it() -> None:
    entries = verdict.parse_access_log(
        "serving on http://127.0.0.1:18787\n"
        'GET /a?b=c -> GET /a (wiki) 200 "text/html; charset=utf-8"\n'
        'GET /nothing -> no route 404 "application/json"\n'
        '- - -> no route 400 "application/json"\n'
    )
    assert [(e.path, e.route, e.backend, e.status) for e in entries] == [
        ("/a", "GET /a", "wiki", 200),
        ("/nothing", None, None, 404),
        ("-", None, None, 400),
    ]


def test_a_content_type_cannot_pass_for_another_backend() -> None:
    # A stand-in's content type holds what looks like a route and a status; quoted, it stays
    # the content type of the backend that really answered.
    line = 'GET /x -> $default (wiki) 200 "text/html (mcp) 200 application/json"\n'
    [entry] = verdict.parse_access_log(line)
    assert (entry.route, entry.backend) == ("$default", "wiki")
    assert not verdict.is_json(entry.content_type)
    forged = 'GET /x -> $default (wiki) 200 "x\\" (mcp) 200 \\"application/json"\n'
    [entry] = verdict.parse_access_log(forged)
    assert entry.backend == "wiki"


def judge_ok(mutate) -> int:
    """The ok verdict on the ok run with one thing changed by `mutate(record, log_lines)`."""
    rec, log, _ = RUNS["ok"]
    rec = json.loads(json.dumps(rec))
    lines = log.splitlines()
    mutate(rec, lines)
    access = verdict.parse_access_log("\n".join(lines))
    return verdict.judge("ok", rec, access, MCP, ISSUER, "mcp", None)


def test_a_driver_that_skipped_a_step_or_claimed_a_session_is_caught() -> None:
    def skip(step: str):
        def mutate(rec: dict, _lines: list[str]) -> None:
            rec["requests"] = [r for r in rec["requests"] if step not in r["url"]]

        return mutate

    assert judge_ok(lambda rec, lines: None) == 0
    for step in ("/register", "/authorize", "/token"):
        assert judge_ok(skip(step)) == 1, step
    # A driver that reports a session the router never served.
    assert judge_ok(lambda rec, lines: lines.pop()) == 1
    # Claims that never reached the handler.
    assert judge_ok(lambda rec, lines: rec.update(whoami="no verified claims")) == 1
    assert judge_ok(lambda rec, lines: rec.update(whoami=None)) == 1


def test_the_doubled_reason_must_name_the_doubled_url() -> None:
    rec, log, prm_resource = RUNS["doubled-resource"]
    for unrelated in ("OSError: [Errno 11] Resource temporarily unavailable", None):
        rec = {**rec, "error": unrelated}
        access = verdict.parse_access_log(log)
        args = (MCP, ISSUER, "mcp", prm_resource)
        assert verdict.judge("doubled-resource", rec, access, *args) == 1


def test_a_challenge_that_does_not_point_to_the_prm_is_caught() -> None:
    for challenge in (None, 'Bearer scope="wiki"', f'Basic resource_metadata="{PRM}"'):

        def mutate(rec: dict, _lines: list[str], challenge=challenge) -> None:
            rec["requests"][0]["www_authenticate"] = challenge

        assert judge_ok(mutate) == 1, challenge
