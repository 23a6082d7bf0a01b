//! The guarantees, proved on the resolved model before anything is written.
//!
//! Two promises: every discovery URL an MCP client needs reaches the backend that serves it under
//! API Gateway's own route selection (never `$default`), and no emitted URL doubles a path. Both
//! are errors with stable codes that point at the route, stage or value responsible. The probes
//! that only some clients send are warnings.

use std::collections::BTreeSet;

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::engine;
use crate::model::{EnvModel, Model, issuer_paths_on_origin};
use crate::url;

/// Runs every check on a resolved model.
pub fn check(model: &Model) -> Diagnostics {
    let mut diags = Diagnostics::default();
    if let Some(at) = model.discovery_disabled_at {
        diags.push(
            Diagnostic::error(
                "discovery-disabled",
                &model.file,
                at,
                "discovery routes are switched off, so MCP clients cannot find the OAuth metadata",
            )
            .help("remove `discovery_routes: false`; the OAuth block must derive its routes"),
        );
    }
    check_token_verification(model, &mut diags);
    check_default_endpoints(model, &mut diags);
    check_execute_api_origins(model, &mut diags);
    check_static_metadata(model, &mut diags);
    for env in &model.environments {
        check_discovery(model, env, &mut diags, &mut BTreeSet::new());
        check_doubling(model, env, &mut diags);
        check_framework_values(model, env, &mut diags);
    }
    diags
}

/// A URL that clients request, with the backend that must (or should) answer it.
struct Probe {
    url: String,
    methods: &'static [&'static str],
    backend: String,
    what: &'static str,
    required: bool,
}

const DOCUMENT_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS"];
const MCP_METHODS: &[&str] = &["POST", "GET", "DELETE", "OPTIONS"];

/// The discovery sequence of one environment, following the numbered client requests of the
/// OAuth discovery contract: 1, 3, 5, 7 and the issuer's own metadata on a shared origin are
/// required; 4, 8 and 9 are probes that only some clients send.
fn probes(model: &Model, env: &EnvModel) -> Vec<Probe> {
    let Some(oauth) = &model.oauth else { return Vec::new() };
    let mut out = Vec::new();
    let mut push = |url: String, methods, backend: &str, what, required| {
        out.push(Probe { url, methods, backend: backend.to_string(), what, required });
    };
    for r in &env.resources {
        push(r.resource_url.clone(), MCP_METHODS, &r.backend, "MCP endpoint", true);
        push(
            format!("{}/x", r.resource_url),
            MCP_METHODS,
            &r.backend,
            "MCP endpoint subpath",
            true,
        );
        push(r.prm_url.clone(), DOCUMENT_METHODS, &r.backend, "protected resource metadata", true);
        push(
            r.appended_prm_url.clone(),
            DOCUMENT_METHODS,
            &r.backend,
            "appended metadata probe",
            false,
        );
        if let Some(root) = &r.root_prm_url {
            push(
                root.clone(),
                DOCUMENT_METHODS,
                &r.backend,
                "root protected resource metadata",
                true,
            );
        }
        let (origin, mount_path) = (&env.origin, url::split_origin(&r.resource_url).1);
        for probe in [
            format!("{origin}/.well-known/oauth-authorization-server{mount_path}"),
            format!("{}/.well-known/oauth-authorization-server", r.resource_url),
            format!("{origin}/.well-known/openid-configuration{mount_path}"),
            format!("{}/.well-known/openid-configuration", r.resource_url),
        ] {
            push(probe, DOCUMENT_METHODS, &r.backend, "metadata probe seen in client logs", false);
        }
    }

    // A user route that reaches into a mount takes part of the MCP endpoint away from its
    // backend: probe one request of each such route, with its own method.
    for route in model.routes.iter().filter(|r| !r.derived) {
        let Some(witness) = witness_path(&route.parsed) else { continue };
        for r in &env.resources {
            let mount =
                url::split_origin(&r.resource_url).1.strip_prefix(env.base_path()).unwrap_or("");
            if witness == mount || witness.starts_with(&format!("{mount}/")) {
                let methods: &'static [&'static str] = match route.method.as_deref() {
                    Some("ANY") | None => MCP_METHODS,
                    Some(m) => crate::explain::REQUEST_METHODS
                        .iter()
                        .find(|known| **known == m)
                        .map_or(MCP_METHODS, std::slice::from_ref),
                };
                push(
                    format!("{}{witness}", env.base_url),
                    methods,
                    &r.backend,
                    "MCP endpoint subpath",
                    true,
                );
            }
        }
    }

    let issuer_backend = oauth.issuer_backend.clone();
    let on_origin = issuer_paths_on_origin(env);
    let legacy = format!("{}/.well-known/oauth-authorization-server", env.origin);
    let legacy_backend = match (&on_origin, &issuer_backend) {
        (Some(paths), Some(b)) if paths.iter().any(|p| format!("{}{p}", env.origin) == legacy) => {
            b.clone()
        }
        _ => oauth.metadata_backend.clone(),
    };
    if !legacy_backend.is_empty() {
        push(
            legacy,
            DOCUMENT_METHODS,
            &legacy_backend,
            "legacy authorization server metadata",
            true,
        );
    }
    if let Some(paths) = on_origin {
        let backend = issuer_backend.unwrap_or_default();
        for p in paths {
            push(format!("{}{p}", env.origin), DOCUMENT_METHODS, &backend, "issuer metadata", true);
        }
    }
    if !oauth.metadata_backend.is_empty()
        && (oauth.default_endpoints || !oauth.default_endpoints_set)
    {
        for endpoint in ["authorize", "token", "register"] {
            let url = format!("{}/{endpoint}", env.origin);
            push(url, &["GET", "POST"], &oauth.metadata_backend, "default OAuth endpoint", false);
        }
    }
    out
}

/// The pairs of routes, lower index first, that `discovery-ambiguous` reports, so that the
/// `route-ambiguous` lint does not report the same pair a second time in vaguer words.
pub(crate) fn discovery_ambiguous_pairs(model: &Model) -> BTreeSet<(usize, usize)> {
    let mut pairs = BTreeSet::new();
    for env in &model.environments {
        check_discovery(model, env, &mut Diagnostics::default(), &mut pairs);
    }
    pairs
}

fn check_discovery(
    model: &Model,
    env: &EnvModel,
    diags: &mut Diagnostics,
    ambiguous_pairs: &mut BTreeSet<(usize, usize)>,
) {
    let keys: Vec<engine::RouteKey> = model.routes.iter().map(|r| r.parsed.clone()).collect();
    for probe in probes(model, env) {
        if probe.backend.is_empty() {
            let at = model.oauth.as_ref().map_or(Pos::FILE, |o| o.at);
            diags.push(
                Diagnostic::error(
                    "issuer-backend-missing",
                    &model.file,
                    at,
                    format!(
                        "the issuer shares origin {} but no backend serves its metadata",
                        env.origin
                    ),
                )
                .help("name the backend that serves the issuer's metadata with `issuer_backend`"),
            );
            continue;
        }
        let path = url::split_origin(&probe.url).1;
        let path = if path.is_empty() { "/" } else { path };
        let routed = match engine::strip_entry(&env.entry(), path) {
            Ok(p) => p,
            Err(not_served) => {
                if probe.required {
                    let at = env.at.stage.or(env.at.mapping_key).unwrap_or(env.at.origin);
                    diags.push(
                        Diagnostic::error(
                            "discovery-unservable",
                            &model.file,
                            at,
                            format!(
                                "{} {} cannot reach this API in environment `{}`: {}",
                                probe.what, probe.url, env.name, not_served
                            ),
                        )
                        .help(
                            "serve the environment from a custom domain whose API mapping has an \
                             empty key, so requests at the origin's root reach the API",
                        ),
                    );
                }
                continue;
            }
        };
        for method in probe.methods {
            let selection = engine::select(&keys, method, &routed);
            if let Some((wi, ri, rule)) = selection.ambiguous {
                let (w, rival) = (&model.routes[wi], &model.routes[ri]);
                if probe.required && w.backend != rival.backend {
                    ambiguous_pairs.insert((wi.min(ri), wi.max(ri)));
                    // Which of the two wins is undocumented: the URL must not hang on it.
                    let culprit = if w.derived { rival } else { w };
                    let other = if w.derived { w } else { rival };
                    diags.push(
                        Diagnostic::error(
                            "discovery-ambiguous",
                            &model.file,
                            culprit.at,
                            format!(
                                "{method} {} ({}) goes to route `{}` or route `{}` depending on a \
                                 precedence rule AWS does not document ({} {})",
                                probe.url,
                                probe.what,
                                culprit.key,
                                other.key,
                                rule.tag(),
                                rule.description()
                            ),
                        )
                        .help(format!(
                            "narrow route `{}` so it cannot match this URL, e.g. with a literal \
                             first segment",
                            culprit.key
                        )),
                    );
                    break;
                }
            }
            let winner = selection.winner.map(|i| &model.routes[i]);
            match winner {
                Some(route) if route.backend == probe.backend => {}
                Some(route) => {
                    let message = format!(
                        "{method} {} ({}) is caught by route `{}` and goes to backend `{}`, \
                         not `{}`",
                        probe.url, probe.what, route.key, route.backend, probe.backend
                    );
                    let help = if route.key == "$default" {
                        "the OAuth block derives this route; check that discovery routes are on \
                         and that no route with the same path takes it"
                            .to_string()
                    } else {
                        format!(
                            "remove or narrow route `{}`, or point it at backend `{}`",
                            route.key, probe.backend
                        )
                    };
                    diags.push(if probe.required {
                        Diagnostic::error("discovery-shadowed", &model.file, route.at, message)
                            .help(help)
                    } else {
                        Diagnostic::warning(
                            "discovery-probe-elsewhere",
                            &model.file,
                            route.at,
                            message,
                        )
                        .help(probe_help(probe.what))
                    });
                    break;
                }
                None if probe.required => {
                    let at = model.oauth.as_ref().map_or(Pos::FILE, |o| o.at);
                    diags.push(
                        Diagnostic::error(
                            "discovery-unrouted",
                            &model.file,
                            at,
                            format!(
                                "{method} {} ({}) matches no route and gets a 404",
                                probe.url, probe.what
                            ),
                        )
                        .help("keep discovery routes on so the OAuth block derives the route"),
                    );
                    break;
                }
                None => {}
            }
        }
    }
}

/// Rejects any emitted URL or environment value in which the mount path, the stage or the
/// mapping key appears twice in a row. Paths that merely repeat a word elsewhere are fine.
fn check_doubling(model: &Model, env: &EnvModel, diags: &mut Diagnostics) {
    let mut needles: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(oauth) = &model.oauth {
        for r in &oauth.resources {
            needles.push((format!("mount path {}", r.mount), segments(&r.mount)));
        }
    }
    if env.stage != "$default" {
        needles.push((format!("stage {}", env.stage), vec![env.stage.clone()]));
    }
    if let Some(cd) = env.custom_domain.as_ref().filter(|cd| !cd.mapping_key.is_empty()) {
        needles.push((format!("mapping key {}", cd.mapping_key), segments(&cd.mapping_key)));
    }

    let mut urls: Vec<(String, Pos, &str)> =
        vec![(env.base_url.clone(), env.at.origin, "base URL")];
    for r in &env.resources {
        let at = model
            .oauth
            .as_ref()
            .and_then(|o| o.resources.iter().find(|m| m.mount == r.mount))
            .map_or(env.at.origin, |m| m.at);
        urls.push((r.resource_url.clone(), at, "resource URL"));
        urls.push((r.prm_url.clone(), at, "metadata URL"));
    }
    // A router crate is rendered from its own copy of those URLs, so the copy is checked too.
    let crate_envs =
        model.crates.iter().flat_map(|c| &c.environments).filter(|e| e.name == env.name);
    for r in crate_envs.flat_map(|e| &e.resources) {
        urls.push((r.resource_url.clone(), env.at.origin, "router resource URL"));
        urls.push((r.prm_url.clone(), env.at.origin, "router metadata URL"));
    }
    for b in &model.backends {
        for var in &b.environment {
            if let Some(v) = var.values.get(&env.name) {
                urls.push((v.clone(), var.at, "environment value"));
            }
        }
    }

    for (value, at, what) in urls {
        let path = if value.contains("://") { url::split_origin(&value).1 } else { value.as_str() };
        for (label, needle) in &needles {
            let needle: Vec<&str> = needle.iter().map(String::as_str).collect();
            if url::doubled_segments(path, &needle) {
                diags.push(
                    Diagnostic::error(
                        "url-doubled",
                        &model.file,
                        at,
                        format!(
                            "{what} `{value}` repeats the {label} twice in a row (environment \
                             `{}`)",
                            env.name
                        ),
                    )
                    .help(
                        "derive URLs from the origin; specgen appends the stage, mapping key and \
                         mount exactly once",
                    ),
                );
            }
        }
    }
}

/// Checks typed values that a backend's framework combines with its mount path: the result must
/// be the public resource URL, or the app advertises a resource that clients reject.
fn check_framework_values(model: &Model, env: &EnvModel, diags: &mut Diagnostics) {
    for b in &model.backends {
        let Some(fw) = &b.framework else { continue };
        let resources: Vec<_> = env.resources.iter().filter(|r| r.backend == b.name).collect();
        let Some(var_name) = &fw.base_url_variable else {
            if !resources.is_empty() {
                diags.push(
                    Diagnostic::error(
                        "framework-base-url-variable",
                        &model.file,
                        fw.at,
                        format!(
                            "backend `{}` runs {} but does not say which variable carries its \
                             base URL",
                            b.name, fw.name
                        ),
                    )
                    .help(
                        "set `base_url_variable`, e.g. MCP_BASE_URL, so specgen can derive and \
                         check it",
                    ),
                );
            }
            continue;
        };
        let [resource] = resources.as_slice() else { continue };
        let Some(var) = b.environment.iter().find(|v| v.name == var_name.value) else {
            diags.push(
                Diagnostic::error(
                    "framework-base-url-missing",
                    &model.file,
                    var_name.at,
                    format!(
                        "backend `{}` never sets `{}`, the base URL {} needs",
                        b.name, var_name.value, fw.name
                    ),
                )
                .help(format!(
                    "add `{}: {{derive: framework-base-url}}` to its environment",
                    var_name.value
                )),
            );
            continue;
        };
        let Some(value) = var.values.get(&env.name) else { continue };
        let public = fw.public_url(value, &resource.mount);
        if public != resource.resource_url {
            let rule = if fw.appends_mount() {
                format!(
                    "{} {} appends the mount path {} to {}",
                    fw.name, fw.version_text, resource.mount, var.name
                )
            } else {
                format!(
                    "{} {} uses {} as the resource URL as-is",
                    fw.name, fw.version_text, var.name
                )
            };
            let correct = if fw.appends_mount() { &env.base_url } else { &resource.resource_url };
            diags.push(
                Diagnostic::error(
                    "framework-url-mismatch",
                    &model.file,
                    var.at,
                    format!(
                        "{rule}, so `{value}` gives {public}, not the resource URL {} \
                         (environment `{}`)",
                        resource.resource_url, env.name
                    ),
                )
                .help(format!(
                    "write `{}: {{derive: framework-base-url}}`, or set it to {correct}",
                    var.name
                )),
            );
        }
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn probe_help(what: &str) -> &'static str {
    if what == "default OAuth endpoint" {
        "clients without usable metadata fall back to this path; set `oauth.default_endpoints: \
         true` to send it to the MCP backend, or `false` if this backend owns it"
    } else {
        "some MCP clients send this probe; a JSON 404 from the MCP backend is the safe answer, so \
         let the OAuth block's derived route take it"
    }
}

/// The MCP endpoint's routes carry no gateway authorizer by design, so the backend must verify
/// tokens itself. specgen knows that the generated router and a named framework do; of any other
/// backend it can only say that it cannot tell.
fn check_token_verification(model: &Model, diags: &mut Diagnostics) {
    let Some(oauth) = &model.oauth else { return };
    for r in &oauth.resources {
        let Some(b) = model.backends.iter().find(|b| b.name == r.backend) else { continue };
        if !b.router && b.framework.is_none() {
            diags.push(
                Diagnostic::warning(
                    "bearer-unverified",
                    &model.file,
                    r.at,
                    format!(
                        "backend `{}` serves the MCP endpoint {} with no gateway authorizer, and \
                         specgen cannot tell that it verifies bearer tokens",
                        b.name, r.mount
                    ),
                )
                .help(
                    "set `router: true` to generate the verifying router, or name the backend's \
                     framework",
                ),
            );
        }
    }
}

/// A static authorization-server document must name each environment's issuer exactly: clients
/// compare it with the issuer they were sent to (RFC 8414 section 3.3).
fn check_static_metadata(model: &Model, diags: &mut Diagnostics) {
    let Some(oauth) = &model.oauth else { return };
    let Some(document) = &oauth.as_metadata_document else { return };
    let value: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
    let Some(issuer) = value.get("issuer").and_then(|i| i.as_str()) else { return };
    for env in &model.environments {
        if issuer != env.issuer {
            diags.push(
                Diagnostic::error(
                    "as-metadata-issuer",
                    &model.file,
                    oauth.at,
                    format!(
                        "the static authorization server metadata names issuer `{issuer}`, but \
                         environment `{}` trusts `{}`",
                        env.name, env.issuer
                    ),
                )
                .help("make the document's `issuer` the environment's issuer, byte for byte"),
            );
        }
    }
}

/// One path a route matches: variables as `x`, a greedy variable as `x/y`.
fn witness_path(key: &engine::RouteKey) -> Option<String> {
    let engine::RouteKey::Route { segments, .. } = key else { return None };
    if segments.is_empty() {
        return Some("/".into());
    }
    let parts: Vec<&str> = segments
        .iter()
        .map(|s| match s {
            engine::Segment::Literal(l) => l.as_str(),
            engine::Segment::Var(_) => "x",
            engine::Segment::Greedy(_) => "x/y",
        })
        .collect();
    Some(format!("/{}", parts.join("/")))
}

/// `/authorize`, `/token` and `/register` redirect to the authorization server's endpoints. On
/// an origin the issuer owns, those endpoints are the same paths: the redirect would loop, and
/// the derived routes would take the server's own endpoints away from it.
fn check_default_endpoints(model: &Model, diags: &mut Diagnostics) {
    let Some(oauth) = model.oauth.as_ref().filter(|o| o.default_endpoints) else { return };
    let document: serde_json::Value = oauth
        .as_metadata_document
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    for env in &model.environments {
        let (issuer_origin, issuer_path) = url::split_origin(&env.issuer);
        // An issuer at the origin's root most likely serves these very paths; a static document
        // says so outright when it names them.
        let at_root = issuer_origin == env.origin && matches!(issuer_path, "" | "/");
        let names_them = ["authorize", "token", "register"].iter().any(|e| {
            ["authorization_endpoint", "token_endpoint", "registration_endpoint"]
                .iter()
                .any(|field| document[field] == format!("{}/{e}", env.origin).as_str())
        });
        if at_root || names_them {
            diags.push(
                Diagnostic::error(
                    "default-endpoints-on-issuer-origin",
                    &model.file,
                    oauth.at,
                    format!(
                        "`default_endpoints: true` would redirect /authorize on {} to the issuer \
                         {}, on the same origin (environment `{}`)",
                        env.origin, env.issuer, env.name
                    ),
                )
                .help(
                    "set `default_endpoints: false`: the authorization server on this origin \
                     serves those paths itself",
                ),
            );
        }
    }
}

/// An API's own endpoint host carries an id that exists only after the first deploy. specgen
/// compiles the origin into every URL, so a guessed or stale id would publish metadata for
/// another API; the reviewer must see that this origin is tied to one deployed API.
fn check_execute_api_origins(model: &Model, diags: &mut Diagnostics) {
    for env in model.environments.iter().filter(|e| !e.local && e.custom_domain.is_none()) {
        diags.push(
            Diagnostic::warning(
                "execute-api-origin",
                &model.file,
                env.at.origin,
                format!(
                    "environment `{}` uses the API's own endpoint {}, whose id is known only \
                     after the first deploy",
                    env.name, env.origin
                ),
            )
            .help(
                "after `pulumi up`, check that the stack output api_endpoint is this origin; a \
                 custom domain keeps URLs stable across redeploys",
            ),
        );
    }
}
