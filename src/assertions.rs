//! Route assertions: requests the spec lists with the route, backend and status they must get.
//!
//! Each assertion is `{request: "METHOD URL-or-path", environment?, route?, backend?,
//! status?}`. The request is placed on every environment it applies to (the one named, else
//! every environment whose origin its URL names, else, for a bare path, every environment) and
//! followed exactly as `specgen explain` follows it (see [`crate::explain`]). Any difference from
//! what the assertion expects is an `assertion-failed` error at the assertion's request, naming
//! the environment, what was expected and what API Gateway does instead.
//!
//! - `route` is a route key of the table (keys that differ only in a parameter's name are the
//!   same route), or `none` for API Gateway's own 404.
//! - `backend` is the backend that receives the request.
//! - `status` is what a request without a token gets, and is checkable only where specgen knows
//!   it: API Gateway's 404, or the answer of the generated router's arm (401 from the MCP
//!   endpoint, 200 for metadata GET and HEAD, 204 for an OPTIONS preflight, 404 for a probe
//!   with no document...). A status asserted where the backend itself answers, or where a JWT
//!   authorizer decides first, is an `assertion-unknowable` error saying why.
//!
//! The discovery URLs every MCP client needs are asserted already, on every environment, by
//! [`crate::check`] (required probes as errors, the others as warnings): assertions are for the
//! routes only the spec's author knows about, and need not repeat them.

use crate::diag::{Diagnostic, Diagnostics};
use crate::engine::{self, RouteKey};
use crate::explain::{self, ChosenBy, Explanation, RequestLine};
use crate::model::{EnvModel, Model};
use crate::spec::Assertion;

/// Checks every assertion of the spec against API Gateway's route selection and the generated
/// router's answers.
pub fn check_assertions(model: &Model) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for assertion in &model.assertions {
        check_one(model, assertion, &mut diags);
    }
    diags
}

/// What an assertion expects, resolved against the model.
struct Expected {
    /// `Some(None)` expects API Gateway's 404; the key is the table's own spelling.
    route: Option<Option<String>>,
    backend: Option<String>,
    status: Option<u16>,
}

fn check_one(model: &Model, a: &Assertion, diags: &mut Diagnostics) {
    let error = |code, at, message: String, help: String| {
        Diagnostic::error(code, &model.file, at, message).help(help)
    };
    let line = match explain::parse_request_line(&a.request.value) {
        Ok(line) => line,
        Err(p) => {
            diags.push(error("assertion-invalid-request", a.request.at, p.message, p.help));
            return;
        }
    };
    let envs = match environments(model, a, &line) {
        Ok(envs) => envs,
        Err(diagnostic) => {
            diags.push(diagnostic);
            return;
        }
    };
    if a.route.is_none() && a.backend.is_none() && a.status.is_none() {
        diags.push(error(
            "assertion-empty",
            a.request.at,
            format!("the assertion on `{}` expects nothing", a.request.value),
            "add the `route`, `backend` or `status` the request must get".into(),
        ));
        return;
    }
    let Some(expected) = expected(model, a, diags) else { return };

    let mut unknowable_reported = false;
    for env in envs {
        let got = explain::explain(model, env, &line, ChosenBy::Origin);
        let mut differences = Vec::new();

        if let Some(route) = &expected.route {
            let actual = got.route.as_ref().map(|r| r.key.clone());
            if actual != *route {
                differences.push(format!(
                    "route {}, not {}",
                    route_text(&actual),
                    route_text(route)
                ));
            }
        }
        if let Some(backend) = &expected.backend
            && got.backend.as_ref() != Some(backend)
        {
            let actual = match &got.backend {
                Some(b) => format!("backend `{b}`"),
                None => "no backend (API Gateway's 404)".into(),
            };
            differences.push(format!("{actual}, not `{backend}`"));
        }
        if let (Some(status), Some(at)) = (expected.status, a.status.as_ref().map(|s| s.at)) {
            match got.answer.status {
                Some(actual) if actual != status => {
                    differences.push(format!("status {actual} from {}, not {status}", from(&got)))
                }
                Some(_) => {}
                None if !unknowable_reported => {
                    unknowable_reported = true;
                    diags.push(unknowable(model, a, &got, status, at));
                }
                None => {}
            }
        }

        if !differences.is_empty() {
            diags.push(error(
                "assertion-failed",
                a.request.at,
                format!(
                    "{} {} (environment `{}`) gets {}",
                    got.request.method,
                    got.request.url,
                    env.name,
                    differences.join("; ")
                ),
                format!(
                    "`specgen explain {} {} {} --env {}` shows the rules behind the choice; fix \
                     the routes, or the assertion if the new routing is intended",
                    model.source.file, got.request.method, got.request.url, env.name
                ),
            ));
        }
    }
}

fn from(got: &Explanation) -> &'static str {
    match got.answer.from {
        "api-gateway" => "API Gateway",
        "router" => "the router",
        _ => "the backend",
    }
}

fn route_text(route: &Option<String>) -> String {
    match route {
        Some(key) => format!("`{key}`"),
        None => "none (API Gateway's 404)".into(),
    }
}

/// The environments the assertion's request is checked on.
fn environments<'m>(
    model: &'m Model,
    a: &Assertion,
    line: &RequestLine,
) -> Result<Vec<&'m EnvModel>, Diagnostic> {
    let names: Vec<&str> = model.environments.iter().map(|e| e.name.as_str()).collect();
    let origins: Vec<&str> = model.environments.iter().map(|e| e.origin.as_str()).collect();
    if let Some(name) = &a.environment {
        let Some(env) = model.environments.iter().find(|e| e.name == name.value) else {
            return Err(Diagnostic::error(
                "assertion-unknown-environment",
                &model.file,
                name.at,
                format!("environment `{}` is not defined", name.value.escape_debug()),
            )
            .help(format!("use one of: {}", names.join(", "))));
        };
        if let Some(origin) = line.origin.as_ref().filter(|o| **o != env.origin) {
            return Err(Diagnostic::error(
                "assertion-invalid-request",
                &model.file,
                a.request.at,
                format!("{origin} is not the origin of environment `{}`, {}", env.name, env.origin),
            )
            .help("write a bare path, or the URL on that environment's origin"));
        }
        return Ok(vec![env]);
    }
    let envs = explain::environments_for(model, line);
    if envs.is_empty() {
        let origin = line.origin.as_deref().unwrap_or_default();
        return Err(Diagnostic::error(
            "assertion-invalid-request",
            &model.file,
            a.request.at,
            format!("no environment has the origin {origin}"),
        )
        .help(format!(
            "the spec's origins: {}; or write a bare path to check it on every environment",
            origins.join(", ")
        )));
    }
    Ok(envs)
}

/// The assertion's expectations, with route keys and backends checked against the model.
/// `None`, with diagnostics, when one names something the spec does not have.
fn expected(model: &Model, a: &Assertion, diags: &mut Diagnostics) -> Option<Expected> {
    let mut ok = true;
    let route = match &a.route {
        None => None,
        Some(r) if r.value == "none" => Some(None),
        Some(r) => match RouteKey::parse(&r.value) {
            Err(e) => {
                diags.push(
                    Diagnostic::error("assertion-unknown-route", &model.file, r.at, e.message)
                        .help(format!("{}; or write `none` for API Gateway's 404", e.help)),
                );
                ok = false;
                None
            }
            Ok(key) => match model.routes.iter().find(|m| engine::same_route(&m.parsed, &key)) {
                Some(route) => Some(Some(route.key.clone())),
                None => {
                    diags.push(
                        Diagnostic::error(
                            "assertion-unknown-route",
                            &model.file,
                            r.at,
                            format!("route `{}` is not in the route table", r.value),
                        )
                        .help(
                            "name a route the spec writes or derives (ROUTES.md lists them), or \
                             `none` for API Gateway's 404",
                        ),
                    );
                    ok = false;
                    None
                }
            },
        },
    };
    let backend = a.backend.as_ref().map(|b| b.value.clone());
    if let Some(b) = &a.backend
        && !model.backends.iter().any(|m| m.name == b.value)
    {
        let known: Vec<&str> = model.backends.iter().map(|m| m.name.as_str()).collect();
        diags.push(
            Diagnostic::error(
                "assertion-unknown-backend",
                &model.file,
                b.at,
                format!("backend `{}` is not defined", b.value.escape_debug()),
            )
            .help(format!("use one of: {}", known.join(", "))),
        );
        ok = false;
    }
    ok.then(|| Expected { route, backend, status: a.status.as_ref().map(|s| s.value) })
}

fn unknowable(
    model: &Model,
    a: &Assertion,
    got: &Explanation,
    status: u16,
    at: crate::diag::Pos,
) -> Diagnostic {
    Diagnostic::error(
        "assertion-unknowable",
        &model.file,
        at,
        format!(
            "specgen cannot know whether {} {} gets status {status} (environment `{}`): {}",
            got.request.method, got.request.url, got.environment.name, got.answer.text
        ),
    )
    .help(format!(
        "assert `route` or `backend` for `{}` instead; specgen knows a status only for API \
         Gateway's 404 and for the generated router's answers to requests without a token",
        a.request.value
    ))
}
