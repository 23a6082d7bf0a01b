//! Lints on the route table: what API Gateway allows but is rarely intended. They run after
//! [`crate::check`] on the resolved model and feed the same diagnostics.
//!
//! Each lint has a stable code and is an error unless the spec acknowledges it with a reason
//! (`acknowledge: [{lint, route, reason}]`). The lints ask the engine about witness requests
//! ([`witness`]) rather than reason about keys by hand, so they agree with every other answer
//! specgen gives. They ask about the path the route table sees: a stage or mapping key only
//! cuts a prefix off ([`crate::engine::strip_entry`]), so every table path is reachable through
//! every environment and the answers are the same for all; the one thing a stage changes,
//! which routes it hides, is its own lint.
//!
//! | code | finds |
//! |---|---|
//! | `route-ambiguous` | a request whose winner rests on row 14, which AWS does not document |
//! | `auth-weaker-twin` | an authorised route whose `/x/` or `/x/child` lands on a route without auth |
//! | `default-authorizer-preflight` | a JWT on `$default`, which catches CORS preflights (row 5) |
//! | `authorizer-on-preflight-or-discovery` | a JWT on an `OPTIONS` route or an OAuth discovery path |
//! | `stage-shadows-route` | a named stage equal to a route's first segment |
//! | `route-unreachable` | a route that no request selects |

mod rules;
pub mod witness;

use crate::diag::{Diagnostic, Diagnostics};
use crate::engine::{RouteKey, same_route};
use crate::model::Model;

/// Codes of the lints a spec may acknowledge.
pub const ACKNOWLEDGEABLE: [&str; 5] = [
    "auth-weaker-twin",
    "default-authorizer-preflight",
    "authorizer-on-preflight-or-discovery",
    "stage-shadows-route",
    "route-unreachable",
];

/// The lint that no acknowledgement can silence: no reason could make either answer true.
pub const UNACKNOWLEDGEABLE: &str = "route-ambiguous";

/// One lint's finding about one route, before acknowledgements are applied.
#[derive(Debug, Clone)]
struct Finding {
    /// Index into `model.routes` of the route the finding is about.
    route: usize,
    diagnostic: Diagnostic,
}

/// Runs every lint on a resolved model. Findings are errors unless the spec acknowledges them.
pub fn lint(model: &Model) -> Diagnostics {
    let findings = rules::findings(model);
    acknowledge(model, findings)
}

/// Drops the findings that valid acknowledgements cover, and reports the acknowledgements that
/// are invalid (no reason, an unknown code, `route-ambiguous`, a malformed route key) or that
/// cover nothing. An invalid acknowledgement acknowledges nothing, so its finding still shows.
fn acknowledge(model: &Model, findings: Vec<Finding>) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let mut valid: Vec<(&crate::spec::Acknowledgement, Option<RouteKey>)> = Vec::new();
    for ack in &model.acknowledgements {
        if let Some(problem) = invalid(model, ack) {
            diags.push(problem);
            continue;
        }
        let route = ack.route.as_ref().map(|r| RouteKey::parse(&r.value).expect("checked"));
        valid.push((ack, route));
    }

    let mut used = vec![false; valid.len()];
    for finding in findings {
        let route = &model.routes[finding.route];
        let covering: Vec<usize> = valid
            .iter()
            .enumerate()
            .filter(|(_, (ack, key))| {
                ack.lint.value == finding.diagnostic.code
                    && key.as_ref().is_none_or(|k| same_route(k, &route.parsed))
            })
            .map(|(i, _)| i)
            .collect();
        match covering.first() {
            Some(&first) => {
                tracing::debug!(
                    code = finding.diagnostic.code,
                    route = %route.key,
                    reason = %valid[first].0.reason.value,
                    "lint acknowledged"
                );
                for i in covering {
                    used[i] = true;
                }
            }
            None => diags.push(finding.diagnostic),
        }
    }

    for ((ack, key), used) in valid.iter().zip(used) {
        if used {
            continue;
        }
        let (message, help) = match key {
            Some(key) if !model.routes.iter().any(|r| same_route(&r.parsed, key)) => (
                format!(
                    "acknowledgement of `{}` names route `{key}`, which the spec does not have",
                    ack.lint.value
                ),
                "correct the route key, or remove the acknowledgement".to_owned(),
            ),
            Some(key) => (
                format!(
                    "acknowledgement of `{}` for route `{key}` matches no finding",
                    ack.lint.value
                ),
                "the lint no longer fires on this route: remove the acknowledgement".to_owned(),
            ),
            None => (
                format!("acknowledgement of `{}` matches no finding", ack.lint.value),
                "the lint no longer fires in this spec: remove the acknowledgement".to_owned(),
            ),
        };
        diags.push(
            Diagnostic::warning("acknowledgement-unused", &model.file, ack.lint.at, message)
                .help(help),
        );
    }
    diags
}

/// Why an acknowledgement cannot be honoured, if it cannot.
fn invalid(model: &Model, ack: &crate::spec::Acknowledgement) -> Option<Diagnostic> {
    let code = ack.lint.value.as_str();
    if code == UNACKNOWLEDGEABLE {
        return Some(
            Diagnostic::error(
                "acknowledgement-invalid",
                &model.file,
                ack.lint.at,
                "`route-ambiguous` cannot be acknowledged: AWS documents neither answer, so no \
                 reason could say which route takes the request",
            )
            .help("restructure the routes so that no request matches both, then remove this"),
        );
    }
    if !ACKNOWLEDGEABLE.contains(&code) {
        return Some(
            Diagnostic::error(
                "acknowledgement-invalid",
                &model.file,
                ack.lint.at,
                format!("`{}` is not a lint that can be acknowledged", code.escape_debug()),
            )
            .help(format!(
                "acknowledge one of {}; checks and other diagnostics cannot be acknowledged",
                ACKNOWLEDGEABLE.join(", ")
            )),
        );
    }
    if let Some(route) = &ack.route
        && let Err(e) = RouteKey::parse(&route.value)
    {
        return Some(
            Diagnostic::error("acknowledgement-invalid", &model.file, route.at, e.message)
                .help(e.help),
        );
    }
    if ack.reason.value.trim().is_empty() {
        return Some(
            Diagnostic::error(
                "acknowledgement-without-reason",
                &model.file,
                ack.reason.at,
                format!("acknowledgement of `{code}` gives no reason"),
            )
            .help("say why the behaviour is intended, so a reviewer can judge it"),
        );
    }
    None
}
