//! The discovery guarantee as a property: whatever routes a spec adds, either every required
//! discovery URL still reaches its backend, or `check` fails and names the route that took it.
//!
//! Each case appends random user routes on the wiki backend to `specs/wikibot.yaml`, built from
//! the words discovery URLs are made of, and compiles the spec. A spec that does not resolve
//! (a duplicate or invalid key) is no case for the guarantee and passes. Otherwise, when the
//! guarantee reports nothing, the required URLs are followed again here, with the engine alone,
//! and must reach backend `mcp` without hanging on an undocumented precedence; when it reports
//! errors, one of them must name an added route or `$default`.

use std::fs;

use proptest::prelude::*;
use specgen::engine::{self, RouteKey};
use specgen::run::{compile, resolve_spec};

const WIKIBOT: &str = include_str!("../specs/wikibot.yaml");

/// The errors of the discovery guarantee in `src/check.rs`.
const GUARANTEE: [&str; 4] =
    ["discovery-shadowed", "discovery-ambiguous", "discovery-unrouted", "discovery-unservable"];

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["ANY", "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
}

/// A segment: a word of the discovery URLs, another literal, or a variable (named later).
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "mcp",
        ".well-known",
        "oauth-authorization-server",
        "oauth-protected-resource",
        "openid-configuration",
        "wiki",
        "{}",
    ])
}

/// A route key: a method, up to three segments and perhaps a greedy tail.
fn random_key() -> impl Strategy<Value = String> {
    (method(), prop::collection::vec(segment(), 0..=3), any::<bool>())
        .prop_map(|(method, segments, greedy)| key(method, &segments, greedy))
}

/// A route key aimed at a required URL: its path, cut short or not, with some segments turned
/// into variables and perhaps a greedy tail, so that cases often take a discovery URL.
fn aimed_key() -> impl Strategy<Value = String> {
    let path = prop::sample::select(REQUIRED.iter().map(|(_, path)| *path).collect::<Vec<_>>());
    (
        method(),
        path,
        prop::collection::vec(prop::bool::weighted(0.25), 3),
        0..=3usize,
        any::<bool>(),
    )
        .prop_map(|(method, path, vars, cut, greedy)| {
            let segments: Vec<&str> =
                path[1..].split('/').zip(vars).map(|(s, var)| if var { "{}" } else { s }).collect();
            let keep = segments.len().saturating_sub(cut % (segments.len() + 1));
            key(method, &segments[..keep], greedy)
        })
}

/// `METHOD /a/b`, with variables numbered so that no key repeats a name.
fn key(method: &str, segments: &[&str], greedy: bool) -> String {
    let mut parts: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| if *s == "{}" { format!("{{v{i}}}") } else { s.to_string() })
        .collect();
    if greedy {
        parts.push("{rest+}".into());
    }
    format!("{method} /{}", parts.join("/"))
}

fn route_key() -> impl Strategy<Value = String> {
    prop_oneof![random_key(), aimed_key()]
}

/// The spec with `keys` added as routes to the wiki, before its `$default`.
fn spec_with(keys: &[String]) -> String {
    let routes: String =
        keys.iter().map(|k| format!("  - key: \"{k}\"\n    backend: wiki\n")).collect();
    let spec = WIKIBOT.replacen("routes:\n", &format!("routes:\n{routes}"), 1);
    assert_ne!(spec, WIKIBOT, "specs/wikibot.yaml has no `routes:` list to add to");
    spec
}

/// The required discovery requests of reference section 4 (1, 3, 5 and 7), as paths on the
/// spec's one environment, which has the empty mapping key.
const REQUIRED: [(&str, &str); 4] = [
    ("POST", "/mcp"),
    ("GET", "/.well-known/oauth-protected-resource/mcp"),
    ("GET", "/.well-known/oauth-protected-resource"),
    ("GET", "/.well-known/oauth-authorization-server"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn required_urls_reach_mcp_or_check_names_the_route(
        keys in prop::collection::vec(route_key(), 1..=3)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wikibot.yaml");
        fs::write(&file, spec_with(&keys)).unwrap();

        // Duplicate or invalid keys stop the spec before the guarantee runs.
        if resolve_spec(&file).model.is_none() {
            return Ok(());
        }
        let compiled = compile(&file);
        let model = compiled.model.as_ref().expect("a resolved spec keeps its model");
        let errors: Vec<_> = compiled
            .diagnostics
            .sorted()
            .into_iter()
            .filter(|d| d.is_error() && GUARANTEE.contains(&d.code))
            .collect();

        if errors.is_empty() {
            let table: Vec<RouteKey> = model.routes.iter().map(|r| r.parsed.clone()).collect();
            let env = &model.environments[0];
            for (method, path) in REQUIRED {
                let routed = engine::strip_entry(&env.entry(), path).unwrap();
                let selection = engine::select(&table, method, &routed);
                let winner = selection.winner.map(|i| &model.routes[i]);
                prop_assert_eq!(
                    winner.map(|r| r.backend.as_str()),
                    Some("mcp"),
                    "{} {} goes to {:?} with routes {:?}",
                    method, path, winner.map(|r| &r.key), keys
                );
                if let Some((_, rival, _)) = selection.ambiguous {
                    let rival = &model.routes[rival];
                    prop_assert_eq!(
                        rival.backend.as_str(),
                        "mcp",
                        "{} {} may go to `{}` under an undocumented precedence, with routes {:?}",
                        method, path, &rival.key, keys
                    );
                }
            }
        } else {
            let named = |d: &specgen::diag::Diagnostic| {
                d.message.contains("`$default`")
                    || keys.iter().any(|k| d.message.contains(&format!("`{k}`")))
            };
            prop_assert!(
                errors.iter().any(named),
                "no guarantee error names an added route {:?}: {:#?}",
                keys,
                errors
            );
        }
    }
}
