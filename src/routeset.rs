//! One route set: the Pulumi program, every OpenAPI document and each generated router must
//! agree on which route keys exist and which backend serves each.
//!
//! All three are rendered from one model, so a disagreement means a template dropped or bent a
//! route: exactly the mistake that would ship a discovery URL to the wrong Lambda. The check
//! reads the rendered files back, as a reviewer would, rather than trusting the model.

use std::collections::BTreeSet;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::model::Model;
use crate::render::File;

/// A route key and the backend that serves it.
pub type RouteSet = BTreeSet<(String, String)>;

/// Compares the route sets of every rendered output of one spec.
pub fn check_route_sets(model: &Model, files: &[File]) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let expected: RouteSet =
        model.routes.iter().map(|r| (r.key.clone(), r.backend.clone())).collect();
    let stem = Path::new(&model.source.stem);

    for file in files {
        let text = String::from_utf8_lossy(&file.bytes);
        let name = file.path.strip_prefix(stem).unwrap_or(&file.path).display().to_string();
        if name == "__main__.py" {
            compare(
                &mut diags,
                model,
                format!("the Pulumi program {name}"),
                pulumi_routes(&text, model),
                &expected,
            );
        } else if name.starts_with("openapi.") && name.ends_with(".json") {
            compare(
                &mut diags,
                model,
                format!("the OpenAPI document {name}"),
                openapi_routes(&text),
                &expected,
            );
        }
    }
    for krate in &model.crates {
        let path = stem.join(&krate.name).join("src/spec.rs");
        let Some(file) = files.iter().find(|f| f.path == path) else {
            diags.push(mismatch(
                model,
                format!("the router crate {} has no src/spec.rs", krate.name),
            ));
            continue;
        };
        let wanted: RouteSet =
            expected.iter().filter(|(_, b)| *b == krate.backend).cloned().collect();
        let found = router_routes(&String::from_utf8_lossy(&file.bytes), &krate.backend);
        compare(&mut diags, model, format!("the router crate {}", krate.name), found, &wanted);
    }
    diags
}

fn compare(
    diags: &mut Diagnostics,
    model: &Model,
    what: String,
    found: RouteSet,
    wanted: &RouteSet,
) {
    for (key, backend) in wanted.difference(&found) {
        diags.push(mismatch(model, format!("{what} lacks route `{key}` to backend `{backend}`")));
    }
    for (key, backend) in found.difference(wanted) {
        diags.push(mismatch(
            model,
            format!("{what} has route `{key}` to backend `{backend}`, which the spec does not"),
        ));
    }
}

fn mismatch(model: &Model, message: String) -> Diagnostic {
    Diagnostic::error("route-set-mismatch", &model.file, Pos::FILE, message)
        .help("this is a bug in specgen's templates; please report it with the spec")
}

/// Route keys and targets in the Pulumi program: each `Route(` call's `route_key=` and
/// `target=<backend>_target`.
pub fn pulumi_routes(text: &str, model: &Model) -> RouteSet {
    let mut routes = RouteSet::new();
    let mut key: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(literal) = line.strip_prefix("route_key=") {
            key = decode_literal(literal.trim_end_matches(','));
        } else if let Some(target) = line.strip_prefix("target=") {
            let ident = target.trim_end_matches(',').trim_end_matches("_target");
            let backend = model.backends.iter().find(|b| b.ident == ident).map(|b| b.name.clone());
            if let (Some(k), Some(b)) = (key.take(), backend) {
                routes.insert((k, b));
            }
        }
    }
    routes
}

/// Route keys and integrations in an OpenAPI document.
pub fn openapi_routes(text: &str) -> RouteSet {
    let mut routes = RouteSet::new();
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else { return routes };
    let Some(paths) = doc["paths"].as_object() else { return routes };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (operation, op) in item {
            let method = match operation.as_str() {
                "x-amazon-apigateway-any-method" => "ANY".to_string(),
                "parameters" => continue,
                m => m.to_uppercase(),
            };
            let key = if path == "/$default" {
                "$default".to_string()
            } else {
                format!("{method} {path}")
            };
            let reference =
                op["x-amazon-apigateway-integration"]["$ref"].as_str().unwrap_or_default();
            let backend = reference.rsplit('/').next().unwrap_or_default().to_string();
            routes.insert((key, backend));
        }
    }
    routes
}

/// Route keys in a router crate's `src/spec.rs`: every `key: "..."` entry of its route table.
pub fn router_routes(text: &str, backend: &str) -> RouteSet {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("key: "))
        .filter_map(|literal| decode_literal(literal.trim_end_matches(',')))
        .map(|key| (key, backend.to_string()))
        .collect()
}

/// Decodes a string literal as specgen's escapers write it (Rust or Python, either quote).
fn decode_literal(literal: &str) -> Option<String> {
    let quote = literal.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = literal.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_decode_as_escaped() {
        assert_eq!(decode_literal(r#""ANY /a""#).as_deref(), Some("ANY /a"));
        assert_eq!(decode_literal(r#"'say "x"'"#).as_deref(), Some("say \"x\""));
        assert_eq!(decode_literal(r#""a\\b\"c""#).as_deref(), Some("a\\b\"c"));
        assert_eq!(decode_literal("nope"), None);
    }
}
