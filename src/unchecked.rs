//! Test-only: the outage's two mistakes put back into a resolved model, which is then rendered and
//! served with the guarantees skipped.
//!
//! specgen refuses a spec with either mistake, so no spec can produce one. The end-to-end tests
//! still have to show that the guarantees matter: that real MCP clients fail on a deployment with
//! the mistake, and fail for the reason the guarantee names. This module builds that deployment.
//! It exists only with the `unchecked` feature, which the command line never enables, and nothing
//! in the command line calls it: `build`, `check` and `serve` always run the guarantees.

use std::path::Path;
use std::str::FromStr;

use heck::ToSnakeCase;

use crate::diag::Diagnostic;
use crate::model::{Model, RouteModel};
use crate::render::{self, File, RenderError};
use crate::{run, serve};

/// One of the outage's mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMistake {
    /// No route sends `/.well-known/*` to the backend that serves discovery, so `$default` (the
    /// wiki) answers it with HTML.
    ShadowedDiscovery,
    /// The resource URL holds the mount path twice, as when a base URL that already ends in the
    /// mount has the mount appended again: the PRM advertises `https://host/mcp/mcp` for an MCP
    /// endpoint at `https://host/mcp`.
    DoubledResource,
}

impl FromStr for SeedMistake {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "shadowed-discovery" => Ok(Self::ShadowedDiscovery),
            "doubled-resource" => Ok(Self::DoubledResource),
            other => Err(format!(
                "unknown mistake `{}`: use shadowed-discovery or doubled-resource",
                other.escape_debug()
            )),
        }
    }
}

/// Reads and resolves a spec that passes every check, so that the only mistake in the model is
/// the one [`apply`] puts there. A spec that fails any check is refused with its diagnostics.
pub fn resolve(spec: &Path) -> Result<Model, Vec<Diagnostic>> {
    let compiled = run::compile(spec);
    match compiled.model {
        Some(model) if !compiled.diagnostics.has_errors() => Ok(model),
        _ => Err(compiled.diagnostics.sorted()),
    }
}

/// Puts `mistake` into the model. Fails when the model has nothing the mistake could change,
/// so a test never runs a "mistake" that is in fact a correct deployment.
pub fn apply(model: &mut Model, mistake: SeedMistake) -> Result<(), String> {
    match mistake {
        SeedMistake::ShadowedDiscovery => shadow_discovery(model),
        SeedMistake::DoubledResource => {
            double_resources(model)?;
            rename_crates(model, "doubled-resource");
            Ok(())
        }
    }
}

/// Names each router crate after the mistake it carries. Cargo fingerprints a crate by its name
/// and its path inside its workspace, not by where the workspace is, so a mistaken crate with
/// the correct crate's name, built into the same target directory, could be taken as already
/// built and handed out as the correct binary.
fn rename_crates(model: &mut Model, suffix: &str) {
    for krate in &mut model.crates {
        krate.name = format!("{}-{suffix}", krate.name);
        krate.lib_name = krate.name.to_snake_case();
    }
}

/// Drops every gateway route under `/.well-known/`, as in a spec written before anyone knew MCP
/// clients ask for those URLs. The routers stay as they are: in the outage the MCP function was
/// right, and the gateway sent discovery elsewhere.
fn shadow_discovery(model: &mut Model) -> Result<(), String> {
    let well_known =
        |r: &RouteModel| r.path.as_deref().is_some_and(|p| p.starts_with("/.well-known/"));
    let before = model.routes.len();
    model.routes.retain(|r| !well_known(r));
    if model.routes.len() == before {
        return Err("the model has no route under /.well-known/ to drop".into());
    }
    if !model.routes.iter().any(|r| r.key == "$default") {
        return Err("the model has no $default route that could shadow discovery".into());
    }
    Ok(())
}

/// Appends each resource's mount to its resource URL once more, everywhere the URL is rendered:
/// in the environment and in every router crate's copy. The metadata URLs stay where the routes
/// are, so clients still find the PRM and read the wrong `resource` in it.
fn double_resources(model: &mut Model) -> Result<(), String> {
    // A framework backend derives its resource URL from its own variables at run time, so
    // doubling the model's copy would change a table, not the deployment.
    let routed_by_specgen = |backend: &str| model.crates.iter().any(|c| c.backend == backend);
    if let Some(oauth) = &model.oauth
        && let Some(r) = oauth.resources.iter().find(|r| !routed_by_specgen(&r.backend))
    {
        return Err(format!(
            "resource `{}` is served by backend `{}`, which is not a generated router: its \
             framework computes the URL, so doubling the model's copy would change nothing served",
            r.mount, r.backend
        ));
    }
    let mut changed = false;
    for env in &mut model.environments {
        for resource in &mut env.resources {
            resource.resource_url.push_str(&resource.mount);
            changed = true;
        }
    }
    for env in model.crates.iter_mut().flat_map(|c| c.environments.iter_mut()) {
        for resource in &mut env.resources {
            resource.resource_url.push_str(&resource.mount);
        }
    }
    if changed { Ok(()) } else { Err("the model has no OAuth resource to double".into()) }
}

/// The line of the router template that runs the router's own start-up check of its tables.
const ROUTER_TABLE_CHECK: &str = "        config::check_tables()?;\n";

/// Renders every output of the model as `build` would, without any check: specgen's
/// guarantees are not run, and each router crate's own start-up check is taken out. That check
/// is a second line of defence, which refuses a resource URL that is not the base path plus the
/// mount; left in, the router would stop at start-up and no client would ever see the mistake.
pub fn render(model: &Model) -> Result<Vec<File>, String> {
    let mut files = render::render_spec(model).map_err(|e: RenderError| e.to_string())?;
    for krate in &model.crates {
        let dispatch = Path::new(&model.source.stem).join(&krate.name).join("src/dispatch.rs");
        let file = files
            .iter_mut()
            .find(|f| f.path == dispatch)
            .ok_or_else(|| format!("no {} was rendered", dispatch.display()))?;
        let text = String::from_utf8(file.bytes.clone()).map_err(|e| e.to_string())?;
        if text.matches(ROUTER_TABLE_CHECK).count() != 1 {
            return Err(format!(
                "{} no longer calls config::check_tables() once; update unchecked::render",
                dispatch.display()
            ));
        }
        let skipped = "        // The table check is skipped: rendered by specgen's unchecked \
                       entry point.\n\
                       \x20       let _ = config::check_tables;\n";
        file.bytes = text.replacen(ROUTER_TABLE_CHECK, skipped, 1).into_bytes();
    }
    Ok(files)
}

/// Serves the model as `specgen serve` would, without any check, until `SIGINT` or `SIGTERM`.
/// `request.spec` is not read again; the model is served as given.
pub fn serve(
    model: Model,
    request: &serve::Request,
    listening: impl FnOnce(&str),
) -> serve::Report {
    serve::serve_model(model, request, listening, serve::Report::default())
}
