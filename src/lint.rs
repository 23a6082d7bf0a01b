//! Lints on the route table: what API Gateway allows but is rarely intended. They run after
//! [`crate::check`] on the resolved model and feed the same diagnostics.
//!
//! Each lint has a stable code and is an error unless the spec acknowledges it for its route
//! with a reason (`acknowledge: [{lint, route, reason}]`, all three required). The lints ask
//! the engine about witness requests ([`witness`]) rather than reason about keys by hand, so
//! they agree with every other answer specgen gives. They ask about the path the route table
//! sees: a stage or mapping key only cuts a prefix off ([`crate::engine::strip_entry`]), so
//! every table path is reachable through every environment and the answers are the same for
//! all; the one thing a stage changes, which routes it hides, is its own lint.
//!
//! | code | finds |
//! |---|---|
//! | `route-ambiguous` | a request whose winner rests on row 14, which AWS does not document |
//! | `auth-weaker-twin` | an authorised route whose `/x/`, child, bare prefix or `HEAD` is open |
//! | `default-authorizer-preflight` | a JWT on `$default`, which catches CORS preflights (row 5) |
//! | `authorizer-on-preflight-or-discovery` | a JWT on a route that takes preflights or discovery |
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
/// are invalid (no route, no reason, an unknown code, `route-ambiguous`, a malformed route key)
/// or that cover nothing. An invalid acknowledgement acknowledges nothing, so its finding still
/// shows.
fn acknowledge(model: &Model, findings: Vec<Finding>) -> Diagnostics {
    let (mut diags, valid) = valid_acknowledgements(model);

    let mut used = vec![false; valid.len()];
    for finding in findings {
        let covering = covering(model, &valid, &finding);
        let Some(&first) = covering.first() else {
            diags.push(finding.diagnostic);
            continue;
        };
        tracing::debug!(
            code = finding.diagnostic.code,
            route = %model.routes[finding.route].key,
            reason = %valid[first].0.reason.value,
            "lint acknowledged"
        );
        for i in covering {
            used[i] = true;
        }
    }

    for ((ack, key), used) in valid.iter().zip(used) {
        if used {
            continue;
        }
        let (message, help) = if model.routes.iter().any(|r| same_route(&r.parsed, key)) {
            (
                format!(
                    "acknowledgement of `{}` for route `{key}` matches no finding",
                    ack.lint.value
                ),
                "the lint no longer fires on this route: remove the acknowledgement",
            )
        } else {
            (
                format!(
                    "acknowledgement of `{}` names route `{key}`, which the spec does not have",
                    ack.lint.value
                ),
                "correct the route key, or remove the acknowledgement",
            )
        };
        diags.push(
            Diagnostic::warning("acknowledgement-unused", &model.file, ack.lint.at, message)
                .help(help),
        );
    }
    diags
}

/// A finding that a valid acknowledgement covers, with the acknowledgement's reason: what a
/// reviewer of the generated files should see, since the spec accepted it instead of fixing it.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    /// The finding as it would have been reported.
    pub diagnostic: Diagnostic,
    /// The route key the finding is about, as the spec writes it.
    pub route: String,
    /// The reason the spec gives.
    pub reason: String,
}

/// The findings that the spec's acknowledgements cover, in the order the lints report them,
/// for renderers that list them (ROUTES.md). Invalid acknowledgements cover nothing.
pub fn acknowledged(model: &Model) -> Vec<Acknowledged> {
    let (_, valid) = valid_acknowledgements(model);
    rules::findings(model)
        .into_iter()
        .filter_map(|finding| {
            let &first = covering(model, &valid, &finding).first()?;
            Some(Acknowledged {
                route: model.routes[finding.route].key.clone(),
                reason: valid[first].0.reason.value.clone(),
                diagnostic: finding.diagnostic,
            })
        })
        .collect()
}

type ValidAcknowledgement<'a> = (&'a crate::spec::Acknowledgement, RouteKey);

/// The acknowledgements that can be honoured, each with its parsed route key, and a
/// diagnostic for each of the others.
fn valid_acknowledgements(model: &Model) -> (Diagnostics, Vec<ValidAcknowledgement<'_>>) {
    let mut diags = Diagnostics::default();
    let mut valid = Vec::new();
    for ack in &model.acknowledgements {
        match invalid(model, ack) {
            Some(problem) => diags.push(problem),
            None => {
                let route = ack.route.as_ref().expect("checked");
                valid.push((ack, RouteKey::parse(&route.value).expect("checked")));
            }
        }
    }
    (diags, valid)
}

/// Indexes into `valid` of the acknowledgements that cover `finding`: same code, same route.
fn covering(model: &Model, valid: &[ValidAcknowledgement], finding: &Finding) -> Vec<usize> {
    let route = &model.routes[finding.route].parsed;
    valid
        .iter()
        .enumerate()
        .filter(|(_, (ack, key))| {
            ack.lint.value == finding.diagnostic.code && same_route(key, route)
        })
        .map(|(i, _)| i)
        .collect()
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
    // Every lint points at a route, so an acknowledgement names the one it is about. Without a
    // route it would hide every finding of the lint, today's and those of routes added later,
    // and no reviewer would see them go.
    let Some(route) = &ack.route else {
        return Some(
            Diagnostic::error(
                "acknowledgement-without-route",
                &model.file,
                ack.lint.at,
                format!(
                    "acknowledgement of `{code}` names no route, so it would hide every finding \
                     of the lint, including those of routes added later"
                ),
            )
            .help("name the route the finding is about, e.g. `route: GET /admin`"),
        );
    };
    if let Err(e) = RouteKey::parse(&route.value) {
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
