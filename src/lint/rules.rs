//! The six lints, each a function from the model (and the engine's answers for the witness
//! requests) to findings about routes.

use std::collections::{BTreeMap, BTreeSet};

use super::Finding;
use super::witness::{self, METHODS};
use crate::check;
use crate::diag::Diagnostic;
use crate::engine::{self, Entry, Method, RouteKey, Rule, Segment, Selection};
use crate::model::{Model, RouteModel};

/// Every lint's findings, in the order the lints are listed in the module documentation.
pub(super) fn findings(model: &Model) -> Vec<Finding> {
    let table = Table::new(model);
    let mut out = Vec::new();
    route_ambiguous(&table, &mut out);
    auth_weaker_twin(&table, &mut out);
    default_authorizer_preflight(&table, &mut out);
    authorizer_on_preflight_or_discovery(&table, &mut out);
    stage_shadows_route(model, &mut out);
    route_unreachable(&table, &mut out);
    out
}

/// The route table and the engine's answer for every witness request, computed once.
struct Table<'a> {
    model: &'a Model,
    keys: Vec<RouteKey>,
    fresh: String,
    /// `(method, path, selection)` for every witness path and every method.
    answers: Vec<(&'static str, String, Selection)>,
}

impl<'a> Table<'a> {
    fn new(model: &'a Model) -> Table<'a> {
        let keys: Vec<RouteKey> = model.routes.iter().map(|r| r.parsed.clone()).collect();
        let fresh = witness::fresh_literal(&keys);
        let paths = witness::paths(&keys);
        let mut answers = Vec::with_capacity(paths.len() * METHODS.len());
        for path in paths {
            for method in METHODS {
                let selection = engine::select(&keys, method, &path);
                answers.push((method, path.clone(), selection));
            }
        }
        tracing::debug!(requests = answers.len(), "witness requests selected");
        Table { model, keys, fresh, answers }
    }

    fn route(&self, index: usize) -> &'a RouteModel {
        &self.model.routes[index]
    }

    fn diagnostic(&self, code: &'static str, route: usize, message: String) -> Diagnostic {
        Diagnostic::error(code, &self.model.file, self.route(route).at, message)
    }

    /// A request on the table path `path` as a user would send it: the URL in the first
    /// environment, which reaches the table as `path` (the stage or mapping key goes first).
    fn request(&self, method: &str, path: &str) -> String {
        match self.model.environments.first() {
            Some(env) => {
                let base = env.base_url.trim_end_matches('/');
                format!("{method} {base}{path}")
            }
            None => format!("{method} {path}"),
        }
    }
}

/// `route-ambiguous`: a request whose winner rests on an undocumented precedence (row 14).
///
/// Reported once per pair of routes, with the first witness that shows it, at the route the
/// user wrote (derived routes are fixed; of two written ones, the later). A pair that
/// `discovery-ambiguous` already reports is left out: that check names the discovery URL at
/// stake, which says more than this lint would, at the same route.
fn route_ambiguous(table: &Table, out: &mut Vec<Finding>) {
    let reported = check::discovery_ambiguous_pairs(table.model);
    let mut pairs: BTreeMap<(usize, usize), (&str, &str, Rule)> = BTreeMap::new();
    for (method, path, selection) in &table.answers {
        if let Some((w, r, rule)) = selection.ambiguous {
            pairs.entry((w.min(r), w.max(r))).or_insert((method, path, rule));
        }
    }

    for ((a, b), (method, path, rule)) in pairs {
        if reported.contains(&(a, b)) {
            continue;
        }
        let (ra, rb) = (table.route(a), table.route(b));
        let a_first = (!ra.derived, ra.at) > (!rb.derived, rb.at);
        let (at, other) = if a_first { (a, b) } else { (b, a) };
        let (culprit, other) = (table.route(at), table.route(other));
        let message = format!(
            "route `{}` and route `{}` both match {}, and which one takes it depends on a \
             precedence rule AWS does not document (row {} {}: {})",
            culprit.key,
            other.key,
            table.request(method, path),
            rule.row(),
            rule.tag(),
            rule.description().trim_end_matches(" (undocumented)")
        );
        let help = match split_route(rule, culprit, other) {
            Some(added) => format!(
                "add the route `{added}` for the backend that should take these requests, so \
                 that it wins them by every rule, or restructure the routes so that no request \
                 matches both; this lint cannot be acknowledged, since no reason could say \
                 which route wins"
            ),
            None => format!(
                "restructure the routes so that no request matches both, e.g. give `{}` a \
                 literal segment the other lacks; this lint cannot be acknowledged, since no \
                 reason could say which route wins",
                culprit.key
            ),
        };
        out.push(Finding {
            route: at,
            diagnostic: table.diagnostic("route-ambiguous", at, message).help(help),
        });
    }
}

/// For a method-specific route against a user's `ANY` route with a more literal path, the
/// route key that settles every request they share: the method on the `ANY` route's path
/// (`OPTIONS /x/{proxy+}` for `OPTIONS /{proxy+}` against `ANY /x/{proxy+}`), which beats both
/// by path and by method. A derived `ANY` route gets no such suggestion: a user route on its
/// path would take requests the OAuth block routes.
fn split_route(rule: Rule, a: &RouteModel, b: &RouteModel) -> Option<String> {
    if !matches!(rule, Rule::GreedyMethodVsPrefix | Rule::ExactMethodVsPath) {
        return None;
    }
    let method = |r: &RouteModel| match &r.parsed {
        RouteKey::Route { method, .. } => Some(*method),
        RouteKey::Default => None,
    };
    let (specific, any) = match (method(a)?, method(b)?) {
        (Method::Any, Method::Any) => return None,
        (Method::Any, m) => (m, a),
        (m, Method::Any) => (m, b),
        _ => return None,
    };
    if any.derived {
        return None;
    }
    Some(format!("{} {}", specific.as_str(), any.path.as_deref().unwrap_or("/")))
}

/// `auth-weaker-twin`: an authorised route whose twins land on a route without auth (row 12: a
/// trailing slash is another path).
///
/// The twins are those of the route's own instance with fresh literals: its trailing-slash twin
/// and a child, and for a greedy route its bare prefix and the prefix with a slash, which the
/// route itself takes only under the other reading of row 11 or 10. Explicit routes below a
/// protected path are deliberate and not twins, and so is a route that names the very request
/// (`GET /api` beside `ANY /api/{proxy+}`). Preflights are left out: they carry no token and
/// should land on a route without auth. The root has no twin, since every path is its child,
/// and is no greedy route's bare prefix for the same reason.
///
/// A `GET` route also has `HEAD` twins, on its own path and on each twin above: most
/// frameworks answer `HEAD` with the `GET` handler, so a `HEAD` that lands on a route without
/// auth of the same backend reaches the protected handler without a token. On another backend
/// it reaches a handler that was never protected, which the `GET` twins already cover.
///
/// Two landings do not count: a derived discovery route, public by design, and, for a derived
/// MCP endpoint route, a route of another backend. The MCP backend verifies bearer tokens
/// itself and never sees such a request, so no check is skipped; the request reaches a backend
/// that serves that path as it serves any other. A route of the MCP backend itself without
/// auth still counts.
fn auth_weaker_twin(table: &Table, out: &mut Vec<Finding>) {
    for (index, route) in table.model.routes.iter().enumerate() {
        if route.auth == "none" {
            continue;
        }
        let RouteKey::Route { method, .. } = &route.parsed else { continue };
        let Some(instance) =
            witness::instances(&route.parsed, None, &table.fresh).into_iter().next()
        else {
            continue;
        };
        let methods: Vec<&str> = match method {
            Method::Any => METHODS.iter().copied().filter(|m| *m != "OPTIONS").collect(),
            Method::Options => Vec::new(),
            specific => vec![specific.as_str()],
        };
        let head = (*method == Method::Get).then_some("HEAD");

        // The route's own path only for HEAD; its twins for its methods, then for HEAD.
        let mut twins = Vec::new();
        if instance != "/" {
            twins.extend(witness::twins(&instance, &table.fresh));
        }
        twins.extend(witness::greedy_edges(&route.parsed, &table.fresh));
        twins.retain(|p| p != "/");
        let mut probes: Vec<(String, Vec<&str>)> = vec![(instance, head.into_iter().collect())];
        for twin in twins {
            probes.push((twin, methods.iter().copied().chain(head).collect()));
        }

        let mut landings = Vec::new();
        let mut via_head = false;
        for (path, methods) in &probes {
            for &method in methods {
                let selection = engine::select(&table.keys, method, path);
                let Some(w) = selection.winner else { continue };
                let landing = table.route(w);
                let as_get = head == Some(method);
                let exempt = landing.derived
                    || ((route.derived || as_get) && landing.backend != route.backend)
                    || names_request(landing, method, path);
                if w == index || landing.auth != "none" || exempt {
                    continue;
                }
                let head_note = if as_get {
                    via_head = true;
                    ", and most frameworks answer HEAD with the GET handler"
                } else {
                    ""
                };
                landings.push(format!(
                    "{} lands on route `{}` (backend `{}`) without auth{}{head_note}",
                    table.request(method, path),
                    landing.key,
                    landing.backend,
                    assumed(&selection.assumptions)
                ));
                break;
            }
        }
        if landings.is_empty() {
            continue;
        }
        let message = format!(
            "route `{}` requires {}, but {}",
            route.key,
            requirement(route),
            landings.join("; and ")
        );
        let mut help = "protect the route that takes these requests, or make sure its backend \
                        serves nothing protected there and acknowledge this lint with the \
                        reason; no route key can end in `/`, so a trailing-slash path only \
                        reaches a greedy route or `$default`"
            .to_owned();
        if via_head && let Some(path) = &route.path {
            help.push_str(&format!(
                "; a route `HEAD {path}` with the same auth keeps HEAD requests off the route \
                 without auth"
            ));
        }
        out.push(Finding {
            route: index,
            diagnostic: table.diagnostic("auth-weaker-twin", index, message).help(help),
        });
    }
}

/// True when `landing` is the route written for exactly this request: the same method (not
/// `ANY`) and a path of literals equal to `path`. Such a route is deliberate, not a twin.
fn names_request(landing: &RouteModel, method: &str, path: &str) -> bool {
    match &landing.parsed {
        RouteKey::Route { method: m, segments } => {
            *m != Method::Any
                && m.as_str() == method
                && segments.iter().all(|s| matches!(s, Segment::Literal(_)))
                && landing.parsed.path().as_deref() == Some(path)
        }
        RouteKey::Default => false,
    }
}

/// `default-authorizer-preflight`: a JWT authorizer on `$default`, which takes the CORS
/// preflights of every path no other route matches (row 5).
///
/// The witness preflights say whether any reaches `$default`, so an unauthenticated
/// `OPTIONS /{proxy+}` (or `ANY /{proxy+}`) silences the lint as row 5 says. The bare root is
/// left out: under row 10's assumption no greedy route takes `OPTIONS /`, so row 5's remedy
/// would not silence the lint, and an API's root is rarely called across origins.
fn default_authorizer_preflight(table: &Table, out: &mut Vec<Finding>) {
    for (index, route) in table.model.routes.iter().enumerate() {
        if route.parsed != RouteKey::Default || route.auth != "jwt" {
            continue;
        }
        let caught = table.answers.iter().find(|(method, path, selection)| {
            *method == "OPTIONS" && path != "/" && selection.winner == Some(index)
        });
        let Some((method, path, selection)) = caught else { continue };
        let message = format!(
            "`$default` requires {} and takes the CORS preflights of paths no other route \
             matches, such as {}{}: browsers send preflights without a token, so the authorizer \
             refuses them and cross-origin calls fail",
            requirement(route),
            table.request(method, path),
            assumed(&selection.assumptions)
        );
        let help = "add the route `OPTIONS /{proxy+}` with `auth: none`, so preflights reach a \
                    route without an authorizer";
        out.push(Finding {
            route: index,
            diagnostic: table.diagnostic("default-authorizer-preflight", index, message).help(help),
        });
    }
}

/// The well-known documents an OAuth client fetches before it has a token.
const DISCOVERY_DOCUMENTS: [&str; 3] =
    ["oauth-protected-resource", "oauth-authorization-server", "openid-configuration"];

/// `authorizer-on-preflight-or-discovery`: a user route with a JWT authorizer that takes
/// requests which never carry a token: CORS preflights, or an OAuth discovery document, at the
/// root (`/.well-known/oauth-protected-resource/mcp`) or appended
/// (`/mcp/.well-known/oauth-protected-resource`). Derived routes never take an authorizer. A
/// `bearer` route has no authorizer at the gateway, so it is not linted here.
///
/// A route takes preflights when it is an `OPTIONS` route, or an `ANY` route that wins an
/// `OPTIONS` witness request: `ANY` stands for `OPTIONS` (row 3) wherever no `OPTIONS` route
/// matches first. An unauthenticated `OPTIONS` route that wins the preflight, or that would
/// win it under row 14's other answer (which `route-ambiguous` reports), silences the lint.
/// This is the per-route form of `default-authorizer-preflight`, which is about `$default` and
/// row 5 alone; a route with a path is fixed by an `OPTIONS` route on the same path.
fn authorizer_on_preflight_or_discovery(table: &Table, out: &mut Vec<Finding>) {
    for (index, route) in table.model.routes.iter().enumerate() {
        if route.derived || route.auth != "jwt" {
            continue;
        }
        let RouteKey::Route { method, segments } = &route.parsed else { continue };
        let path = route.path.as_deref().unwrap_or("/");
        let preflight = "CORS preflights carry no token, so the authorizer refuses every \
                         preflight";
        let (why, add_options) = if *method == Method::Options {
            (preflight.to_owned(), false)
        } else if is_discovery_path(segments) {
            (
                "OAuth clients fetch discovery documents before they have a token, so the \
                 authorizer hides the document from every client"
                    .to_owned(),
                false,
            )
        } else if *method == Method::Any
            && let Some((method, request, selection)) = preflight_taken(table, index)
        {
            (
                format!(
                    "it takes the preflight {}{} (`ANY` stands for `OPTIONS` where no `OPTIONS` \
                     route matches): {preflight}, and cross-origin calls fail",
                    table.request(method, request),
                    assumed(&selection.assumptions)
                ),
                true,
            )
        } else {
            continue;
        };
        let message = format!("route `{}` requires {}, but {why}", route.key, requirement(route));
        let help = match (add_options, route.auth_from_default) {
            (true, _) => format!(
                "add the route `OPTIONS {path}` with `auth: none`, so preflights reach a route \
                 without an authorizer"
            ),
            (false, true) => {
                "set `auth: none` on this route: it takes the spec's `default_auth` otherwise"
                    .to_owned()
            }
            (false, false) => "set `auth: none` on this route".to_owned(),
        };
        out.push(Finding {
            route: index,
            diagnostic: table
                .diagnostic("authorizer-on-preflight-or-discovery", index, message)
                .help(help),
        });
    }
}

/// The first `OPTIONS` witness request that route `index` wins, preferring one whose answer
/// rests on no assumption, unless an unauthenticated `OPTIONS` route is the row-14 rival.
fn preflight_taken<'t>(
    table: &'t Table,
    index: usize,
) -> Option<(&'static str, &'t str, &'t Selection)> {
    let open_options = |i: usize| {
        let rival = table.route(i);
        rival.auth == "none"
            && matches!(rival.parsed, RouteKey::Route { method: Method::Options, .. })
    };
    table
        .answers
        .iter()
        .filter(|(method, _, selection)| {
            *method == "OPTIONS"
                && selection.winner == Some(index)
                && !selection.ambiguous.is_some_and(|(_, rival, _)| open_options(rival))
        })
        .min_by_key(|(_, _, selection)| !selection.assumptions.is_empty())
        .map(|(method, path, selection)| (*method, path.as_str(), selection))
}

fn is_discovery_path(segments: &[Segment]) -> bool {
    segments.windows(2).any(|pair| match pair {
        [Segment::Literal(a), Segment::Literal(b)] => {
            a == ".well-known" && DISCOVERY_DOCUMENTS.contains(&b.as_str())
        }
        _ => false,
    })
}

/// `stage-shadows-route`: an environment served from a named stage on the API's own endpoint,
/// where a route starts with the stage's name. A request for `/v1/x` selects the stage `v1`
/// (row 1) and reaches the table as `/x`, so a route `/v1/x` answers only at `/v1/v1/x`.
/// Through a custom domain there is no stage selection, so its environments are not linted.
fn stage_shadows_route(model: &Model, out: &mut Vec<Finding>) {
    for env in &model.environments {
        let Entry::ApiEndpoint { stage: Some(stage) } = env.entry() else { continue };
        for (index, route) in model.routes.iter().enumerate() {
            let RouteKey::Route { segments, .. } = &route.parsed else { continue };
            if segments.first() != Some(&Segment::Literal(stage.clone())) {
                continue;
            }
            let path = route.path.as_deref().unwrap_or("/");
            let message = format!(
                "route `{}` starts with `/{stage}`, the stage of environment `{}`: a request for \
                 {}{path} selects the stage and reaches the routes as `{}`, so this route \
                 answers only at {}{path}",
                route.key,
                env.name,
                env.origin,
                path.strip_prefix(&format!("/{stage}")).filter(|p| !p.is_empty()).unwrap_or("/"),
                env.base_url
            );
            let help = format!(
                "remove `/{stage}` from the route (the stage already puts it in every URL), or \
                 rename the stage"
            );
            out.push(Finding {
                route: index,
                diagnostic: Diagnostic::error(
                    "stage-shadows-route",
                    &model.file,
                    route.at,
                    message,
                )
                .help(help),
            });
        }
    }
}

/// `route-unreachable`: a route that wins no witness request, so every request it matches goes
/// to another route. The message names the routes that take its requests.
///
/// Unlike the other lints, this one marks no assumption. Reading rows 10, 11 or 13 the other
/// way only lets routes match more requests, the route and its rivals alike: `$default` stays
/// unreachable when every request already has a route, and a search over small random tables
/// found no other route that such a reading makes reachable.
fn route_unreachable(table: &Table, out: &mut Vec<Finding>) {
    let winners: BTreeSet<usize> = table.answers.iter().filter_map(|(_, _, s)| s.winner).collect();
    for (index, route) in table.model.routes.iter().enumerate() {
        if winners.contains(&index) {
            continue;
        }
        // The routes that take its requests, those that take the most first, at most three.
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for (_, _, selection) in &table.answers {
            if let Some(w) = selection.winner
                && selection.runners_up.contains(&index)
            {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut takers: Vec<(usize, usize)> = counts.into_iter().collect();
        takers.sort_by_key(|&(w, n)| (std::cmp::Reverse(n), w));
        let names: Vec<String> =
            takers.iter().take(3).map(|&(w, _)| format!("`{}`", table.route(w).key)).collect();
        let taken = match (names.as_slice(), takers.len()) {
            ([], _) => "no request matches it".to_owned(),
            ([one], 1) => format!("every request it matches goes to route {one}"),
            (names, n) if n <= 3 => format!(
                "every request it matches goes to route {} or {}",
                names[..names.len() - 1].join(", "),
                names[names.len() - 1]
            ),
            (names, n) => format!(
                "every request it matches goes to another route, most to {} and {} others",
                names.join(", "),
                n - names.len()
            ),
        };
        let message = format!("route `{}` can never be selected: {taken}", route.key);
        let help = if route.derived {
            "the OAuth block derives this route: remove or narrow the routes that take its requests"
        } else {
            "remove the route, or narrow the routes that take its requests"
        };
        out.push(Finding {
            route: index,
            diagnostic: table.diagnostic("route-unreachable", index, message).help(help),
        });
    }
}

/// What a route's auth asks of a request, for messages: `a JWT (authorizer `x`, from
/// `default_auth`)`, or `a bearer token, checked by backend `mcp``.
fn requirement(route: &RouteModel) -> String {
    let from_default = if route.auth_from_default { ", from `default_auth`" } else { "" };
    match (route.auth, &route.authorizer) {
        ("jwt", Some(name)) => format!("a JWT (authorizer `{name}`{from_default})"),
        ("bearer", _) => {
            format!("a bearer token (checked by backend `{}`{from_default})", route.backend)
        }
        _ => format!("{} auth", route.auth),
    }
}

/// ` (assumed: row 10 [?], ...)` for the `[?]` rows an answer rests on, or nothing.
fn assumed(rules: &[Rule]) -> String {
    if rules.is_empty() {
        return String::new();
    }
    let rows: Vec<String> = rules
        .iter()
        .map(|r| {
            let text = r.description().trim_end_matches(" (assumed)");
            format!("row {} {}, {text}", r.row(), r.tag())
        })
        .collect();
    format!(" (assumed: {})", rows.join("; "))
}
