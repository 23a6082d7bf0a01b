//! The resolved model: the spec with every URL and route derived once.
//!
//! This is the middle of the pipeline. Resolution turns names into references, parses route keys,
//! derives the OAuth discovery routes and computes each environment's URLs from its origin, stage
//! or mapping key, and mount paths. Checks run on this model, and templates see only this model,
//! never the raw spec. Problems found while resolving are collected, not thrown: a spec with
//! several mistakes gets all of them in one run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use heck::{ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase};
use serde::Serialize;

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::engine::{self, Entry, RouteKey};
use crate::spec::{self, Auth, Deploy, EnvValue, Located, Spec};
use crate::url;

/// The environment variable that tells a generated router which environment it serves.
pub const ROUTER_ENV_VAR: &str = "SPECGEN_ENVIRONMENT";

/// Where the spec came from. The digest is of the spec's bytes, so a header names exactly the
/// input that produced a file.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub file: String,
    pub stem: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub source: Source,
    pub api: ApiModel,
    pub environments: Vec<EnvModel>,
    pub backends: Vec<BackendModel>,
    pub authorizers: Vec<AuthorizerModel>,
    pub routes: Vec<RouteModel>,
    pub oauth: Option<OAuthModel>,
    pub config_keys: Vec<ConfigKey>,
    pub crates: Vec<CrateModel>,
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub discovery_disabled_at: Option<Pos>,
    /// Requests the spec asserts, checked by [`crate::assertions`].
    #[serde(skip)]
    pub assertions: Vec<spec::Assertion>,
    /// Lints the spec acknowledges, used by [`crate::lint`].
    #[serde(skip)]
    pub acknowledgements: Vec<spec::Acknowledgement>,
    /// The findings those acknowledgements cover, for reviewers: `ROUTES.md` lists each with
    /// its reason. Filled in by the pipeline after the lints ran.
    pub acknowledged: Vec<AcknowledgedModel>,
}

/// A lint finding the spec acknowledges, filled in after the lints ran.
#[derive(Debug, Clone, Serialize)]
pub struct AcknowledgedModel {
    pub lint: String,
    pub route: String,
    pub finding: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiModel {
    pub name: String,
    pub description: Option<String>,
    pub ident: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvModel {
    pub name: String,
    pub local: bool,
    pub origin: String,
    pub stage: String,
    pub custom_domain: Option<CustomDomainModel>,
    pub base_url: String,
    pub issuer: String,
    pub as_metadata_url: String,
    pub resources: Vec<EnvResource>,
    #[serde(skip)]
    pub at: EnvPositions,
}

/// Where an environment's parts were written, for diagnostics about them.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvPositions {
    pub name: Pos,
    pub origin: Pos,
    pub stage: Option<Pos>,
    pub mapping_key: Option<Pos>,
    pub issuer: Pos,
}

impl EnvModel {
    /// How API Gateway picks this API and stage for a request on this environment's origin.
    pub fn entry(&self) -> Entry {
        match &self.custom_domain {
            Some(domain) => Entry::CustomDomain { mapping_key: domain.mapping_key.clone() },
            None if self.local => Entry::CustomDomain { mapping_key: String::new() },
            None if self.stage == "$default" => Entry::ApiEndpoint { stage: None },
            None => Entry::ApiEndpoint { stage: Some(self.stage.clone()) },
        }
    }

    /// The path prefix that the stage or mapping key puts before every route, `""` for none.
    pub fn base_path(&self) -> &str {
        url::split_origin(&self.base_url).1
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomDomainModel {
    pub domain_name: String,
    pub mapping_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvResource {
    pub backend: String,
    pub mount: String,
    pub resource_url: String,
    pub prm_url: String,
    pub appended_prm_url: String,
    pub root_prm_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendModel {
    pub name: String,
    pub ident: String,
    pub const_ident: String,
    pub description: Option<String>,
    pub deploy: &'static str,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub architecture: &'static str,
    pub memory_mb: u32,
    pub timeout_seconds: u32,
    pub router: bool,
    pub crate_name: Option<String>,
    pub config: BTreeMap<&'static str, String>,
    pub environment: Vec<EnvVarModel>,
    /// Paths on the base URL that the backend serves as HTML pages, for `specgen probe`.
    pub pages: Vec<String>,
    /// What plays the backend under `specgen serve`, when the spec names a stand-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<spec::LocalStandIn>,
    #[serde(skip)]
    pub at: Pos,
    #[serde(skip)]
    pub framework: Option<FrameworkModel>,
}

#[derive(Debug, Clone)]
pub struct FrameworkModel {
    pub name: String,
    pub version: (u32, u32, u32),
    pub version_text: String,
    pub base_url_variable: Option<Located<String>>,
    pub at: Pos,
}

impl FrameworkModel {
    /// FastMCP appends its mount path to `base_url` since 2.12.1; before, it used it as-is.
    pub fn appends_mount(&self) -> bool {
        self.version >= (2, 12, 1)
    }

    /// The URL the framework would advertise for a base URL and a mount path.
    pub fn public_url(&self, base_url: &str, mount: &str) -> String {
        if self.appends_mount() {
            format!("{}{mount}", base_url.trim_end_matches('/'))
        } else {
            base_url.to_string()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvVarModel {
    pub name: String,
    /// The value in each environment, by environment name.
    pub values: BTreeMap<String, String>,
    pub derived: bool,
    #[serde(skip)]
    pub at: Pos,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthorizerModel {
    pub name: String,
    pub ident: String,
    pub issuer_by_env: BTreeMap<String, String>,
    pub audience_by_env: BTreeMap<String, Vec<String>>,
    pub identity_source: String,
}

/// What a route on a generated-router backend is for. The router has one arm per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Arm {
    McpEndpoint,
    McpSubtree,
    ProtectedResourceMetadata,
    RootProtectedResourceMetadata,
    AuthorizationServerMetadata,
    WellKnownNotFound,
    DefaultEndpoint,
    Unprotected,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteModel {
    pub key: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub backend: String,
    pub backend_ident: String,
    pub auth: &'static str,
    pub authorizer: Option<String>,
    /// True when the route set no `auth` and took the spec's `default_auth`.
    #[serde(skip)]
    pub auth_from_default: bool,
    pub derived: bool,
    pub purpose: String,
    pub ident: String,
    pub arm: Option<Arm>,
    pub resource: Option<usize>,
    pub endpoint: Option<&'static str>,
    #[serde(skip)]
    pub parsed: RouteKey,
    #[serde(skip)]
    pub at: Pos,
}

#[derive(Debug, Clone, Serialize)]
pub struct OAuthModel {
    pub issuer: String,
    pub scopes: Vec<String>,
    pub required_scopes: Vec<String>,
    pub as_metadata: &'static str,
    /// The static authorization-server metadata document, compact JSON, when configured.
    pub as_metadata_document: Option<String>,
    pub resources: Vec<ResourceModel>,
    pub default_endpoints: bool,
    #[serde(skip)]
    pub default_endpoints_set: bool,
    pub issuer_backend: Option<String>,
    pub metadata_backend: String,
    #[serde(skip)]
    pub at: Pos,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceModel {
    pub backend: String,
    pub mount: String,
    pub name: Option<String>,
    #[serde(skip)]
    pub at: Pos,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigKey {
    pub key: String,
    pub description: String,
    pub required: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateModel {
    pub name: String,
    pub lib_name: String,
    pub backend: String,
    pub env_var: &'static str,
    pub environments: Vec<CrateEnv>,
    pub resources: Vec<CrateResource>,
    pub scopes: Vec<String>,
    pub required_scopes: Vec<String>,
    pub routes: Vec<CrateRoute>,
    /// The static authorization-server metadata, compact JSON, or none to forward the issuer's.
    pub as_metadata_document: Option<String>,
    /// The Lambda's instruction set, `x86_64` or `arm64`.
    pub architecture: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateEnv {
    pub name: String,
    pub issuer: String,
    pub as_metadata_url: String,
    pub resources: Vec<CrateEnvResource>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateEnvResource {
    pub mount: String,
    pub resource_url: String,
    pub prm_url: String,
    pub root_prm: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateResource {
    pub mount: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrateRoute {
    pub key: String,
    pub arm: Arm,
    pub resource: Option<usize>,
    pub endpoint: Option<&'static str>,
}

/// Resolves a parsed spec. Returns the model when resolution got far enough to build one, which
/// it does whenever names resolve; the diagnostics say whether the spec is valid.
pub fn resolve(file: &Path, source_text: &str, spec: &Spec) -> (Option<Model>, Diagnostics) {
    let mut r = Resolver { file, diags: Diagnostics::default() };
    let model = r.resolve(source_text, spec);
    (model, r.diags)
}

struct Resolver<'a> {
    file: &'a Path,
    diags: Diagnostics,
}

impl Resolver<'_> {
    fn error(&mut self, code: &'static str, at: Pos, message: String, help: impl Into<String>) {
        self.diags.push(Diagnostic::error(code, self.file, at, message).help(help));
    }

    fn resolve(&mut self, source_text: &str, spec: &Spec) -> Option<Model> {
        let source = Source {
            file: display_path(self.file),
            stem: self
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            digest: crate::render::sha256_hex(source_text.as_bytes()),
        };
        let api = self.api(spec);
        let oauth_issuer = spec.oauth.as_ref().map(|o| o.value.issuer.clone());

        // Environments come first: every URL hangs off an origin.
        let mut environments = self.environments(spec, oauth_issuer.as_ref());
        let backends_in = self.backend_names(spec);
        let oauth = spec.oauth.as_ref().and_then(|o| self.oauth(o, &backends_in));
        self.env_resources(&mut environments, oauth.as_ref());

        let backends = self.backends(spec, &environments, oauth.as_ref(), &api);
        let authorizers = self.authorizers(spec, &environments);
        let routes = self.routes(spec, &backends, &authorizers, oauth.as_ref(), &environments);
        let crates = crate_models(&backends, &routes, &environments, oauth.as_ref());
        let config_keys = config_keys(&backends, &environments);

        tracing::debug!(
            routes = routes.len(),
            derived = routes.iter().filter(|r| r.derived).count(),
            "routes resolved"
        );
        let discovery_disabled_at = spec
            .oauth
            .as_ref()
            .and_then(|o| o.value.discovery_routes.as_ref())
            .filter(|d| !d.value)
            .map(|d| d.at);
        Some(Model {
            source,
            api,
            environments,
            backends,
            authorizers,
            routes,
            oauth,
            config_keys,
            crates,
            file: self.file.to_path_buf(),
            discovery_disabled_at,
            assertions: spec.assertions.clone(),
            acknowledgements: spec.acknowledge.clone(),
            acknowledged: Vec::new(),
        })
    }

    fn api(&mut self, spec: &Spec) -> ApiModel {
        let name = &spec.api.name;
        if !is_name(&name.value) {
            self.error(
                "invalid-name",
                name.at,
                format!("API name `{}` is not a simple name", name.value.escape_debug()),
                "use lowercase letters, digits and dashes, starting with a letter",
            );
        }
        ApiModel {
            name: name.value.clone(),
            description: spec.api.description.clone(),
            ident: name.value.to_snake_case(),
        }
    }

    fn environments(
        &mut self,
        spec: &Spec,
        default_issuer: Option<&Located<String>>,
    ) -> Vec<EnvModel> {
        if spec.environments.value.is_empty() {
            self.error(
                "no-environments",
                spec.environments.at,
                "the spec has no environment".into(),
                "add one with a name and an origin",
            );
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for env in &spec.environments.value {
            if !is_name(&env.name.value) {
                self.error(
                    "invalid-name",
                    env.name.at,
                    format!(
                        "environment name `{}` is not a simple name",
                        env.name.value.escape_debug()
                    ),
                    "use lowercase letters, digits and dashes, starting with a letter; it is also \
                     the Pulumi stack",
                );
            }
            if !seen.insert(env.name.value.clone()) {
                self.error(
                    "duplicate-name",
                    env.name.at,
                    format!("environment `{}` is defined twice", env.name.value),
                    "give each environment its own name",
                );
            }
            if let Some(model) = self.environment(env, default_issuer) {
                if let Some(other) = out.iter().find(|e: &&EnvModel| e.origin == model.origin) {
                    self.error(
                        "duplicate-origin",
                        env.origin.at,
                        format!(
                            "environments `{}` and `{}` share the origin {}",
                            other.name, model.name, model.origin
                        ),
                        "give each environment its own origin: each is a stack that owns its \
                         custom domain, and requests cannot tell them apart",
                    );
                }
                out.push(model);
            }
        }
        out
    }

    fn environment(
        &mut self,
        env: &spec::Environment,
        default_issuer: Option<&Located<String>>,
    ) -> Option<EnvModel> {
        let origin_text = &env.origin.value;
        let origin = match url::parse(origin_text) {
            Ok(u) => u,
            Err(p) => {
                self.error("invalid-origin", env.origin.at, p.message, p.help);
                return None;
            }
        };
        if let Err(p) = url::check_origin(&origin, origin_text) {
            let code = if origin.path.is_empty() { "invalid-origin" } else { "origin-has-path" };
            self.error(code, env.origin.at, p.message, p.help);
            return None;
        }
        if env.local {
            if !origin.is_loopback() {
                self.error(
                    "local-not-loopback",
                    env.origin.at,
                    format!(
                        "local environment `{}` has the non-loopback origin `{origin_text}`",
                        env.name.value
                    ),
                    "a local environment runs on this machine: use http://127.0.0.1:PORT",
                );
            }
        } else if origin.scheme != "https" {
            self.error(
                "insecure-origin",
                env.origin.at,
                format!(
                    "deployed environment `{}` uses `{origin_text}` without https",
                    env.name.value
                ),
                "use https, or mark the environment `local: true` if it only runs on loopback",
            );
        }

        let stage =
            env.stage.as_ref().map(|s| s.value.clone()).unwrap_or_else(|| "$default".into());
        if let Some(s) = &env.stage
            && s.value != "$default"
            && !is_stage_name(&s.value)
        {
            self.error(
                "invalid-stage",
                s.at,
                format!("stage name `{}` is not valid", s.value.escape_debug()),
                "use `$default`, or 1-128 letters, digits, `-` and `_`",
            );
        }

        let execute_api = url::is_execute_api_host(&origin.host);
        let ip_address = origin.host.starts_with('[')
            || origin.host.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()));
        if !env.local && ip_address {
            self.error(
                "invalid-origin",
                env.origin.at,
                format!("origin `{origin_text}` is an IP address, which no custom domain can be"),
                "use the custom domain's DNS name, or the API's own execute-api host",
            );
        }
        let custom_domain = if env.local || execute_api {
            if let Some(cd) = &env.custom_domain {
                self.error(
                    "custom-domain-mismatch",
                    cd.at,
                    format!(
                        "origin `{origin_text}` is not a custom domain, but `custom_domain` is set"
                    ),
                    "remove `custom_domain`; it applies only to origins other than the API's own \
                     endpoint",
                );
            }
            None
        } else {
            let key = env
                .custom_domain
                .as_ref()
                .and_then(|cd| cd.value.mapping_key.clone())
                .unwrap_or_else(|| Located::new(String::new(), env.origin.at));
            if !key.value.is_empty() && !is_mapping_key(&key.value) {
                self.error(
                    "invalid-mapping-key",
                    key.at,
                    format!("API mapping key `{}` is not valid", key.value.escape_debug()),
                    "use path segments of letters, digits, `.`, `_` and `-`, without leading or \
                     trailing `/`",
                );
            }
            Some((
                CustomDomainModel { domain_name: origin.host.clone(), mapping_key: key.value },
                key.at,
            ))
        };

        let base_url = match (&custom_domain, stage.as_str()) {
            (Some((cd, _)), _) if !cd.mapping_key.is_empty() => {
                format!("{origin_text}/{}", cd.mapping_key)
            }
            (None, s) if !env.local && s != "$default" => format!("{origin_text}/{s}"),
            _ => origin_text.clone(),
        };

        let issuer = env.issuer.as_ref().or(default_issuer);
        let (issuer_text, issuer_at) = match issuer {
            Some(i) => (i.value.clone(), i.at),
            None => (String::new(), env.name.at),
        };
        if issuer.is_some() {
            match url::parse(&issuer_text) {
                Ok(u) if u.scheme == "https" || (env.local && u.is_loopback()) => {}
                Ok(_) => self.error(
                    "invalid-issuer",
                    issuer_at,
                    format!(
                        "issuer `{issuer_text}` of environment `{}` is not https",
                        env.name.value
                    ),
                    "use the issuer exactly as the authorization server writes it, with https",
                ),
                Err(p) => self.error("invalid-issuer", issuer_at, p.message, p.help),
            }
        }

        // An issuer on this origin gets routes for its metadata, so its path must be one a
        // route key can spell: literal segments, no trailing slash.
        let (issuer_origin, issuer_path) = url::split_origin(&issuer_text);
        let issuer_parses = url::parse(&issuer_text).is_ok();
        if issuer_parses && issuer_origin == origin_text && !matches!(issuer_path, "" | "/") {
            let routable = RouteKey::parse(&format!("ANY {issuer_path}")).is_ok_and(|k| {
                matches!(&k, RouteKey::Route { segments, .. }
                    if segments.iter().all(|s| matches!(s, engine::Segment::Literal(_))))
            });
            if !routable {
                self.error(
                    "issuer-path-unroutable",
                    issuer_at,
                    format!(
                        "issuer `{issuer_text}` shares the origin, but API Gateway cannot route \
                         its path `{issuer_path}`"
                    ),
                    "an issuer on the MCP origin needs a path of literal segments without a \
                     trailing slash, so its metadata URLs can be routes",
                );
            }
        }

        Some(EnvModel {
            name: env.name.value.clone(),
            local: env.local,
            origin: origin_text.clone(),
            stage,
            at: EnvPositions {
                name: env.name.at,
                origin: env.origin.at,
                stage: env.stage.as_ref().map(|s| s.at),
                mapping_key: custom_domain.as_ref().map(|(_, at)| *at),
                issuer: issuer_at,
            },
            custom_domain: custom_domain.map(|(cd, _)| cd),
            base_url,
            as_metadata_url: url::insert_well_known(&issuer_text, "oauth-authorization-server"),
            issuer: issuer_text,
            resources: Vec::new(),
        })
    }

    fn backend_names(&mut self, spec: &Spec) -> BTreeMap<String, Pos> {
        let mut names = BTreeMap::new();
        for b in &spec.backends.value {
            if !is_name(&b.name.value) {
                self.error(
                    "invalid-name",
                    b.name.at,
                    format!("backend name `{}` is not a simple name", b.name.value.escape_debug()),
                    "use lowercase letters, digits and dashes, starting with a letter",
                );
            }
            if names.insert(b.name.value.clone(), b.name.at).is_some() {
                self.error(
                    "duplicate-name",
                    b.name.at,
                    format!("backend `{}` is defined twice", b.name.value),
                    "give each backend its own name",
                );
            }
        }
        if spec.backends.value.len() > engine::MAX_INTEGRATIONS {
            self.error(
                "quota-integrations",
                spec.backends.at,
                format!(
                    "{} backends need more integrations than API Gateway's limit of {}",
                    spec.backends.value.len(),
                    engine::MAX_INTEGRATIONS
                ),
                "the integration quota cannot be raised; split the API",
            );
        }
        names
    }

    fn known_backend(&mut self, names: &BTreeMap<String, Pos>, name: &Located<String>) -> bool {
        if names.contains_key(&name.value) {
            return true;
        }
        let known: Vec<&str> = names.keys().map(String::as_str).collect();
        self.error(
            "unknown-backend",
            name.at,
            format!("backend `{}` is not defined", name.value.escape_debug()),
            format!("define it under `backends`, or use one of: {}", known.join(", ")),
        );
        false
    }

    fn oauth(
        &mut self,
        oauth: &Located<spec::OAuth>,
        backends: &BTreeMap<String, Pos>,
    ) -> Option<OAuthModel> {
        let o = &oauth.value;
        if o.resources.value.is_empty() {
            self.error(
                "no-resources",
                o.resources.at,
                "the OAuth block protects no resource".into(),
                "add a resource with a backend and a mount path, or remove the OAuth block",
            );
        }
        let mut resources = Vec::new();
        let mut mounts = BTreeSet::new();
        for r in &o.resources.value {
            let ok = self.known_backend(backends, &r.backend);
            let mount = &r.mount;
            if let Err(message) = check_mount(&mount.value) {
                self.error(
                    "invalid-mount",
                    mount.at,
                    message,
                    "write the mount as `/mcp`: a leading slash, literal segments, no trailing \
                     slash",
                );
                continue;
            }
            if !mounts.insert(mount.value.clone()) {
                self.error(
                    "duplicate-mount",
                    mount.at,
                    format!("mount `{}` is used by two resources", mount.value),
                    "give each protected resource its own mount path",
                );
                continue;
            }
            if ok {
                resources.push(ResourceModel {
                    backend: r.backend.value.clone(),
                    mount: mount.value.clone(),
                    name: r.name.clone(),
                    at: mount.at,
                });
            }
        }
        // Mounts nested in one another would make one resource's subtree swallow the other's.
        for a in &resources {
            for b in &resources {
                if a.mount != b.mount && b.mount.starts_with(&format!("{}/", a.mount)) {
                    self.error(
                        "nested-mount",
                        b.at,
                        format!("mount `{}` lies under mount `{}`", b.mount, a.mount),
                        "mount protected resources side by side, not one inside another",
                    );
                }
            }
        }
        for scope in o.scopes.iter().chain(&o.required_scopes) {
            if !is_scope_token(&scope.value) {
                self.error(
                    "invalid-scope",
                    scope.at,
                    format!("scope `{}` is not an OAuth scope token", scope.value.escape_debug()),
                    "a scope is printable ASCII without spaces, `\"` or `\\` (RFC 6749 section \
                     3.3)",
                );
            }
        }
        let advertised: Vec<&str> = o.scopes.iter().map(|s| s.value.as_str()).collect();
        for scope in o.required_scopes.iter().filter(|s| !advertised.contains(&s.value.as_str())) {
            self.error(
                "required-scope-unadvertised",
                scope.at,
                format!("required scope `{}` is not among `scopes`", scope.value.escape_debug()),
                "add it to `scopes`: clients ask only for the scopes the challenge and the \
                 metadata advertise, so every token would lack it",
            );
        }
        let issuer_backend = o
            .issuer_backend
            .as_ref()
            .and_then(|b| self.known_backend(backends, b).then(|| b.value.clone()));
        let metadata_backend = resources.first().map(|r| r.backend.clone()).unwrap_or_default();
        let as_metadata_document = match o.authorization_server_metadata.as_ref() {
            Some(Located { value: spec::AsMetadata::Static(document), at }) => {
                if document.get("issuer").and_then(|i| i.as_str()).is_none() {
                    self.error(
                        "as-metadata-invalid",
                        *at,
                        "the static authorization server metadata has no `issuer` string".into(),
                        "add `issuer`, exactly as the authorization server writes it (RFC 8414)",
                    );
                }
                Some(serde_json::to_string(document).expect("JSON maps serialize"))
            }
            _ => None,
        };
        Some(OAuthModel {
            issuer: o.issuer.value.clone(),
            scopes: o.scopes.iter().map(|s| s.value.clone()).collect(),
            required_scopes: o.required_scopes.iter().map(|s| s.value.clone()).collect(),
            as_metadata: if as_metadata_document.is_some() { "static" } else { "forward" },
            as_metadata_document,
            resources,
            default_endpoints: o.default_endpoints == Some(true),
            default_endpoints_set: o.default_endpoints.is_some(),
            issuer_backend,
            metadata_backend,
            at: oauth.at,
        })
    }

    fn env_resources(&mut self, envs: &mut [EnvModel], oauth: Option<&OAuthModel>) {
        let Some(oauth) = oauth else { return };
        let single = oauth.resources.len() == 1;
        for env in envs.iter_mut() {
            let origin = env.origin.clone();
            let base_path = env.base_path().to_string();
            env.resources = oauth
                .resources
                .iter()
                .map(|r| {
                    let resource_url = format!("{}{}", env.base_url, r.mount);
                    EnvResource {
                        backend: r.backend.clone(),
                        mount: r.mount.clone(),
                        prm_url: format!(
                            "{origin}/.well-known/oauth-protected-resource{base_path}{}",
                            r.mount
                        ),
                        appended_prm_url: format!(
                            "{resource_url}/.well-known/oauth-protected-resource"
                        ),
                        root_prm_url: single
                            .then(|| format!("{origin}/.well-known/oauth-protected-resource")),
                        resource_url,
                    }
                })
                .collect();
        }
    }

    fn backends(
        &mut self,
        spec: &Spec,
        envs: &[EnvModel],
        oauth: Option<&OAuthModel>,
        api: &ApiModel,
    ) -> Vec<BackendModel> {
        spec.backends.value.iter().map(|b| self.backend(b, envs, oauth, api)).collect()
    }

    fn backend(
        &mut self,
        b: &spec::Backend,
        envs: &[EnvModel],
        oauth: Option<&OAuthModel>,
        api: &ApiModel,
    ) -> BackendModel {
        let name = b.name.value.clone();
        let managed = b.deploy.value == Deploy::Managed;
        let (mut runtime, mut handler) = (b.runtime.clone(), b.handler.clone());
        if b.router && managed {
            runtime.get_or_insert_with(|| Located::new("provided.al2023".into(), b.name.at));
            handler.get_or_insert_with(|| Located::new("bootstrap".into(), b.name.at));
        }
        if managed {
            for (field, value) in [("runtime", &runtime), ("handler", &handler)] {
                if value.is_none() {
                    self.error(
                        "backend-incomplete",
                        b.name.at,
                        format!("managed backend `{name}` has no `{field}`"),
                        format!("set `{field}`, or make the backend `deploy: referenced`"),
                    );
                }
            }
        } else {
            for (field, present) in [
                ("runtime", b.runtime.as_ref().map(|v| v.at)),
                ("handler", b.handler.as_ref().map(|v| v.at)),
                ("memory_mb", b.memory_mb.as_ref().map(|v| v.at)),
                ("timeout_seconds", b.timeout_seconds.as_ref().map(|v| v.at)),
            ] {
                if let Some(at) = present {
                    self.error(
                        "referenced-backend-field",
                        at,
                        format!(
                            "`{field}` is set on referenced backend `{name}`, which Pulumi does \
                             not create"
                        ),
                        "remove it, or make the backend `deploy: managed`",
                    );
                }
            }
        }
        let memory_mb = b.memory_mb.as_ref().map_or(256, |m| m.value);
        if let Some(m) = &b.memory_mb
            && !(128..=10240).contains(&m.value)
        {
            self.error(
                "invalid-memory",
                m.at,
                format!("memory {} MB is outside Lambda's 128-10240", m.value),
                "pick a value from 128 to 10240",
            );
        }
        let timeout_seconds = b.timeout_seconds.as_ref().map_or(29, |t| t.value);
        if let Some(t) = &b.timeout_seconds
            && !(1..=900).contains(&t.value)
        {
            self.error(
                "invalid-timeout",
                t.at,
                format!("timeout {} s is outside Lambda's 1-900", t.value),
                "pick a value from 1 to 900; API Gateway itself waits at most 30 s",
            );
        }

        let framework = b.framework.as_ref().and_then(|f| self.framework(f, b.router));
        let environment = self.backend_environment(b, envs, oauth, framework.as_ref());

        let mut config = BTreeMap::new();
        let camel = name.to_lower_camel_case();
        if managed {
            config.insert("artifact", format!("{camel}Artifact"));
        } else {
            config.insert("function_arn", format!("{camel}FunctionArn"));
        }
        BackendModel {
            ident: name.to_snake_case(),
            const_ident: name.to_shouty_snake_case(),
            description: b.description.clone(),
            deploy: if managed { "managed" } else { "referenced" },
            runtime: runtime.map(|r| r.value),
            handler: handler.map(|h| h.value),
            architecture: match b.architecture {
                Some(spec::Architecture::Arm64) => "arm64",
                _ => "x86_64",
            },
            memory_mb,
            timeout_seconds,
            router: b.router,
            crate_name: b.router.then(|| format!("{}-{}-router", api.name, name).to_kebab_case()),
            config,
            environment,
            pages: self.pages(b),
            local: b.local.clone(),
            at: b.name.at,
            framework,
            name,
        }
    }

    /// The backend's pages, each a plain path as a client sends it after the base URL.
    fn pages(&mut self, b: &spec::Backend) -> Vec<String> {
        let mut pages = Vec::new();
        for page in &b.pages {
            let path = &page.value;
            let plain = path.starts_with('/')
                && !path.contains(['?', '#'])
                && !path.chars().any(|c| c.is_whitespace() || c.is_control());
            if !plain {
                self.error(
                    "invalid-page",
                    page.at,
                    format!(
                        "page `{}` of backend `{}` is not a plain path",
                        path.escape_debug(),
                        b.name.value
                    ),
                    "write a path that starts with `/`, without query, fragment or spaces, e.g. \
                     `/Home`",
                );
            } else if pages.contains(path) {
                self.error(
                    "duplicate-page",
                    page.at,
                    format!("page `{path}` of backend `{}` is listed twice", b.name.value),
                    "remove one of the two",
                );
            } else {
                pages.push(path.clone());
            }
        }
        pages
    }

    fn framework(&mut self, f: &Located<spec::Framework>, router: bool) -> Option<FrameworkModel> {
        let fw = &f.value;
        if router {
            self.error(
                "framework-on-router",
                f.at,
                "a backend served by the generated router names no framework".into(),
                "remove `framework`, or set `router: false`",
            );
            return None;
        }
        if fw.name.value != "fastmcp" {
            self.error(
                "unknown-framework",
                fw.name.at,
                format!("framework `{}` is not known to specgen", fw.name.value.escape_debug()),
                "known frameworks: fastmcp",
            );
            return None;
        }
        let Some(version) = parse_version(&fw.version.value) else {
            self.error(
                "invalid-version",
                fw.version.at,
                format!("`{}` is not a version like 2.12.4", fw.version.value.escape_debug()),
                "write the framework's version as MAJOR.MINOR.PATCH",
            );
            return None;
        };
        Some(FrameworkModel {
            name: fw.name.value.clone(),
            version,
            version_text: fw.version.value.clone(),
            base_url_variable: fw.base_url_variable.clone(),
            at: f.at,
        })
    }

    fn backend_environment(
        &mut self,
        b: &spec::Backend,
        envs: &[EnvModel],
        oauth: Option<&OAuthModel>,
        framework: Option<&FrameworkModel>,
    ) -> Vec<EnvVarModel> {
        let mut vars = Vec::new();
        for (var, value) in &b.environment {
            if !is_env_var_name(var) {
                self.error(
                    "invalid-env-name",
                    value.at,
                    format!("`{}` is not a valid environment variable name", var.escape_debug()),
                    "use letters, digits and `_`, starting with a letter",
                );
                continue;
            }
            if var == ROUTER_ENV_VAR || var.starts_with("AWS_") || var.starts_with("LAMBDA_") {
                self.error(
                    "reserved-env-name",
                    value.at,
                    format!("environment variable `{var}` is reserved"),
                    format!(
                        "`{ROUTER_ENV_VAR}` is set by specgen; `AWS_*` and `LAMBDA_*` by Lambda"
                    ),
                );
                continue;
            }
            let mut values = BTreeMap::new();
            let derived = matches!(value.value, EnvValue::Derived(_));
            for env in envs {
                let v = match &value.value {
                    EnvValue::Typed(text) => Some(text.clone()),
                    EnvValue::PerEnvironment(p) => p.per_environment.get(&env.name).cloned(),
                    EnvValue::Derived(d) => {
                        match derive_value(&d.derive, env, &b.name.value, oauth, framework) {
                            Ok(v) => Some(v),
                            Err((message, help)) => {
                                // A framework that failed to resolve was reported already;
                                // its derived values would only repeat that.
                                if b.framework.is_none() || framework.is_some() {
                                    self.error("invalid-derive", value.at, message, help);
                                }
                                break;
                            }
                        }
                    }
                };
                match v {
                    Some(v) => {
                        values.insert(env.name.clone(), v);
                    }
                    None => self.error(
                        "missing-env-value",
                        value.at,
                        format!("`{var}` has no value for environment `{}`", env.name),
                        "add the environment under `per_environment`",
                    ),
                }
            }
            if let EnvValue::PerEnvironment(p) = &value.value {
                for name in p.per_environment.keys() {
                    if !envs.iter().any(|e| &e.name == name) {
                        self.error(
                            "unknown-environment",
                            value.at,
                            format!(
                                "`{var}` names environment `{}`, which is not defined",
                                name.escape_debug()
                            ),
                            "remove the entry, or define the environment",
                        );
                    }
                }
            }
            vars.push(EnvVarModel { name: var.clone(), values, derived, at: value.at });
        }
        if b.router {
            let values = envs.iter().map(|e| (e.name.clone(), e.name.clone())).collect();
            vars.push(EnvVarModel {
                name: ROUTER_ENV_VAR.into(),
                values,
                derived: true,
                at: b.name.at,
            });
        }
        vars.sort_by(|a, b| a.name.cmp(&b.name));
        vars
    }

    fn authorizers(&mut self, spec: &Spec, envs: &[EnvModel]) -> Vec<AuthorizerModel> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        if spec.authorizers.len() > 10 {
            self.error(
                "quota-authorizers",
                spec.authorizers[10].name.at,
                format!("{} authorizers exceed API Gateway's limit of 10", spec.authorizers.len()),
                "share authorizers between routes",
            );
        }
        for a in &spec.authorizers {
            if !is_name(&a.name.value) || !seen.insert(a.name.value.clone()) {
                self.error(
                    "invalid-name",
                    a.name.at,
                    format!(
                        "authorizer name `{}` is invalid or repeated",
                        a.name.value.escape_debug()
                    ),
                    "use a unique lowercase name",
                );
                continue;
            }
            let mut issuer_by_env = BTreeMap::new();
            let mut audience_by_env = BTreeMap::new();
            for env in envs.iter().filter(|e| !e.local) {
                let issuer = a.issuer.as_ref().map_or(env.issuer.clone(), |i| i.value.clone());
                if issuer.is_empty() {
                    self.error(
                        "authorizer-no-issuer",
                        a.name.at,
                        format!(
                            "authorizer `{}` has no issuer for environment `{}`",
                            a.name.value, env.name
                        ),
                        "set `issuer` on the authorizer, or an OAuth issuer",
                    );
                }
                let audience = if a.audience.is_empty() {
                    env.resources.iter().map(|r| r.resource_url.clone()).collect()
                } else {
                    a.audience.clone()
                };
                issuer_by_env.insert(env.name.clone(), issuer);
                audience_by_env.insert(env.name.clone(), audience);
            }
            out.push(AuthorizerModel {
                name: a.name.value.clone(),
                ident: a.name.value.to_snake_case(),
                issuer_by_env,
                audience_by_env,
                identity_source: a
                    .identity_source
                    .clone()
                    .unwrap_or_else(|| "$request.header.Authorization".into()),
            });
        }
        out
    }

    fn routes(
        &mut self,
        spec: &Spec,
        backends: &[BackendModel],
        authorizers: &[AuthorizerModel],
        oauth: Option<&OAuthModel>,
        envs: &[EnvModel],
    ) -> Vec<RouteModel> {
        let derived = match oauth {
            Some(o) if self.discovery_enabled(spec) => derive_routes(o, envs, backends),
            _ => Vec::new(),
        };
        let mut routes: Vec<RouteModel> = Vec::new();
        for d in derived {
            routes.push(d);
        }

        let backend_names: BTreeMap<String, Pos> =
            backends.iter().map(|b| (b.name.clone(), b.at)).collect();
        for r in &spec.routes {
            let parsed = match RouteKey::parse(&r.key.value) {
                Ok(k) => k,
                Err(e) => {
                    self.error("invalid-route-key", r.key.at, e.message, e.help);
                    continue;
                }
            };
            if !self.known_backend(&backend_names, &r.backend) {
                continue;
            }
            let (auth, authorizer) =
                match r.auth.as_ref().or(spec.default_auth.as_ref()).map(|a| (&a.value, a.at)) {
                    None | Some((Auth::None, _)) => ("none", None),
                    Some((Auth::Bearer, _)) => ("bearer", None),
                    Some((Auth::Jwt(name), at)) => {
                        if !authorizers.iter().any(|a| &a.name == name) {
                            self.error(
                                "unknown-authorizer",
                                at,
                                format!("authorizer `{}` is not defined", name.escape_debug()),
                                "define it under `authorizers`",
                            );
                            continue;
                        }
                        ("jwt", Some(name.clone()))
                    }
                };
            let clash = routes.iter().find(|d| engine::same_route(&d.parsed, &parsed));
            if let Some(other) = clash {
                let (code, message, help) = if other.derived {
                    (
                        "route-derived-duplicate",
                        format!(
                            "route `{}` is already derived by the OAuth block ({})",
                            r.key.value, other.purpose
                        ),
                        "remove this route: the OAuth block derives it and sends it to the right \
                         backend",
                    )
                } else {
                    (
                        "route-duplicate",
                        format!("route `{}` duplicates route `{}`", r.key.value, other.key),
                        "API Gateway refuses duplicate route keys (keys that differ only in a \
                         parameter name are duplicates); remove one",
                    )
                };
                self.error(code, r.key.at, message, help);
                continue;
            }
            let backend =
                backends.iter().find(|b| b.name == r.backend.value).expect("checked above");
            // The generated router hands a user route to the consumer's handler as it is; it
            // cannot serve `$default` (no route key to check the path against), and it guards
            // bearer tokens only for a protected resource's mount.
            // A bearer route at a mount is the MCP endpoint itself (written by hand when
            // discovery routes are off).
            let at_mount = oauth.and_then(|o| {
                let path = route_path(&parsed)?;
                let index = o
                    .resources
                    .iter()
                    .position(|m| m.mount == path && m.backend == backend.name)?;
                Some(backend_resource_index(o, index))
            });
            let arm = if backend.router && auth == "bearer" && at_mount.is_some() {
                Some(Arm::McpEndpoint)
            } else if backend.router {
                let problem = if parsed == RouteKey::Default {
                    Some("`$default` cannot go to a backend served by the generated router")
                } else if auth == "bearer" {
                    Some(
                        "a bearer route on a router backend must lie under a protected \
                         resource's mount, where the OAuth block derives it",
                    )
                } else {
                    None
                };
                if let Some(problem) = problem {
                    self.error(
                        "router-route-unsupported",
                        r.key.at,
                        format!("route `{}` on backend `{}`: {problem}", r.key.value, backend.name),
                        "send the route to another backend, or protect it with a JWT authorizer",
                    );
                    continue;
                }
                Some(Arm::Unprotected)
            } else {
                None
            };
            routes.push(RouteModel {
                key: parsed.to_string(),
                method: route_method(&parsed),
                path: route_path(&parsed),
                backend: backend.name.clone(),
                backend_ident: backend.ident.clone(),
                auth,
                authorizer,
                auth_from_default: r.auth.is_none() && spec.default_auth.is_some(),
                derived: false,
                purpose: "user route".into(),
                ident: String::new(),
                resource: if arm == Some(Arm::McpEndpoint) { at_mount } else { None },
                arm,
                endpoint: None,
                parsed,
                at: r.key.at,
            });
        }
        if routes.len() > engine::MAX_ROUTES {
            self.error(
                "quota-routes",
                Pos::FILE,
                format!(
                    "{} routes exceed API Gateway's default quota of {}",
                    routes.len(),
                    engine::MAX_ROUTES
                ),
                "request a quota increase, or merge routes under greedy paths",
            );
        }
        routes.sort_by_key(sort_key);
        assign_idents(&mut routes);
        routes
    }

    fn discovery_enabled(&self, spec: &Spec) -> bool {
        spec.oauth.as_ref().and_then(|o| o.value.discovery_routes.as_ref()).is_none_or(|d| d.value)
    }
}

/// The routes the OAuth block derives. Each `ANY`, so `HEAD` and `OPTIONS` reach the backend too.
fn derive_routes(
    oauth: &OAuthModel,
    envs: &[EnvModel],
    backends: &[BackendModel],
) -> Vec<RouteModel> {
    let mut out: Vec<RouteModel> = Vec::new();
    let router = |name: &str| backends.iter().any(|b| b.name == name && b.router);
    let mut add = |path: String,
                   backend: &str,
                   auth: &'static str,
                   purpose: &str,
                   arm: Arm,
                   resource: Option<usize>,
                   at: Pos| {
        let key = format!("ANY {path}");
        if out.iter().any(|r| r.key == key) {
            return;
        }
        // Mounts are checked to be literal paths; an issuer path that no route key can spell is
        // refused where the environment is resolved. Either way, never a route from it.
        let Ok(parsed) = RouteKey::parse(&key) else { return };
        let backend_model = backends.iter().find(|b| b.name == backend);
        out.push(RouteModel {
            key,
            method: Some("ANY".into()),
            path: Some(path),
            backend: backend.to_string(),
            backend_ident: backend_model.map(|b| b.ident.clone()).unwrap_or_default(),
            auth,
            authorizer: None,
            auth_from_default: false,
            derived: true,
            purpose: purpose.to_string(),
            ident: String::new(),
            arm: router(backend).then_some(arm),
            resource: if router(backend) { resource } else { None },
            endpoint: None,
            parsed,
            at,
        });
    };

    // The issuer's own metadata first: when the issuer shares the MCP origin and has no path,
    // its metadata URL is the legacy URL below, and the issuer's backend must win it.
    if let Some(issuer_backend) = &oauth.issuer_backend {
        for env in envs {
            if let Some(paths) = issuer_paths_on_origin(env) {
                for path in paths {
                    add(
                        path,
                        issuer_backend,
                        "none",
                        "issuer metadata",
                        Arm::Unprotected,
                        None,
                        oauth.at,
                    );
                }
            }
        }
    }

    for (index, r) in oauth.resources.iter().enumerate() {
        let m = &r.mount;
        let b = r.backend.as_str();
        let i = backend_resource_index(oauth, index);
        add(m.clone(), b, "bearer", "MCP endpoint", Arm::McpEndpoint, Some(i), r.at);
        add(
            format!("{m}/{{proxy+}}"),
            b,
            "bearer",
            "MCP endpoint subtree",
            Arm::McpSubtree,
            Some(i),
            r.at,
        );
        add(
            format!("/.well-known/oauth-protected-resource{m}"),
            b,
            "none",
            "protected resource metadata",
            Arm::ProtectedResourceMetadata,
            Some(i),
            r.at,
        );
        add(
            format!("{m}/.well-known/oauth-protected-resource"),
            b,
            "none",
            "protected resource metadata, appended probe",
            Arm::ProtectedResourceMetadata,
            Some(i),
            r.at,
        );
        // Legacy clients look for the authorization server's metadata at these paths too: they
        // get the same document as at the root. No OpenID configuration is served.
        for probe in [
            format!("/.well-known/oauth-authorization-server{m}"),
            format!("{m}/.well-known/oauth-authorization-server"),
        ] {
            let purpose = "authorization server metadata, probe seen in client logs";
            add(probe, b, "none", purpose, Arm::AuthorizationServerMetadata, None, r.at);
        }
        for probe in [
            format!("/.well-known/openid-configuration{m}"),
            format!("{m}/.well-known/openid-configuration"),
        ] {
            let purpose = "OpenID configuration probe seen in client logs";
            add(probe, b, "none", purpose, Arm::WellKnownNotFound, None, r.at);
        }
    }

    let first = oauth.metadata_backend.as_str();
    // The root document describes the origin's only resource. With several there is none to
    // describe, but the URL still goes to an MCP backend, whose router answers a JSON 404: an
    // HTML page from `$default` there would look like an answer.
    if let Some(r) = oauth.resources.first() {
        let single = oauth.resources.len() == 1;
        let purpose = if single {
            "root protected resource metadata"
        } else {
            "root protected resource metadata: a JSON 404, as the origin has several resources"
        };
        add(
            "/.well-known/oauth-protected-resource".into(),
            &r.backend,
            "none",
            purpose,
            Arm::RootProtectedResourceMetadata,
            Some(0),
            r.at,
        );
    }
    if !first.is_empty() {
        add(
            "/.well-known/oauth-authorization-server".into(),
            first,
            "none",
            "authorization server metadata, legacy location",
            Arm::AuthorizationServerMetadata,
            None,
            oauth.at,
        );
        if oauth.default_endpoints {
            for endpoint in ["authorize", "token", "register"] {
                add(
                    format!("/{endpoint}"),
                    first,
                    "none",
                    "default OAuth endpoint",
                    Arm::DefaultEndpoint,
                    None,
                    oauth.at,
                );
            }
        }
    }
    for route in &mut out {
        if route.arm == Some(Arm::DefaultEndpoint) {
            route.endpoint = route.path.as_deref().map(|p| match p {
                "/authorize" => "authorize",
                "/token" => "token",
                _ => "register",
            });
        }
    }
    out
}

/// The index of resource `index` among the resources of its own backend.
fn backend_resource_index(oauth: &OAuthModel, index: usize) -> usize {
    let backend = &oauth.resources[index].backend;
    oauth.resources[..index].iter().filter(|r| &r.backend == backend).count()
}

/// The route-table paths of the issuer's metadata URLs, when the issuer is on this origin.
pub fn issuer_paths_on_origin(env: &EnvModel) -> Option<Vec<String>> {
    let (issuer_origin, issuer_path) = url::split_origin(&env.issuer);
    if issuer_origin != env.origin {
        return None;
    }
    let issuer_path = if issuer_path == "/" { "" } else { issuer_path };
    let inserted = |name: &str| format!("/.well-known/{name}{issuer_path}");
    let mut paths = vec![inserted("oauth-authorization-server"), inserted("openid-configuration")];
    if !issuer_path.is_empty() {
        paths.push(format!(
            "{}/.well-known/openid-configuration",
            issuer_path.trim_end_matches('/')
        ));
    }
    Some(paths)
}

fn derive_value(
    what: &str,
    env: &EnvModel,
    backend: &str,
    oauth: Option<&OAuthModel>,
    framework: Option<&FrameworkModel>,
) -> Result<String, (String, String)> {
    let resources: Vec<&EnvResource> =
        env.resources.iter().filter(|r| r.backend == backend).collect();
    let one_resource = || match resources.as_slice() {
        [one] => Ok(*one),
        _ => Err((
            format!(
                "`{what}` needs exactly one protected resource on backend `{backend}`, which \
                 has {}",
                resources.len()
            ),
            "derive it on the backend that serves the MCP endpoint".to_string(),
        )),
    };
    match what {
        "origin" => Ok(env.origin.clone()),
        "base-url" => Ok(env.base_url.clone()),
        "environment" => Ok(env.name.clone()),
        "issuer" if oauth.is_some() => Ok(env.issuer.clone()),
        "resource-url" => Ok(one_resource()?.resource_url.clone()),
        "framework-base-url" => {
            let Some(fw) = framework else {
                return Err((
                    format!("`framework-base-url` needs a framework on backend `{backend}`"),
                    "name the framework and its version under `framework`".into(),
                ));
            };
            let r = one_resource()?;
            Ok(if fw.appends_mount() { env.base_url.clone() } else { r.resource_url.clone() })
        }
        other => Err((
            format!("`{}` is not a value specgen can derive", other.escape_debug()),
            "use one of: origin, base-url, resource-url, framework-base-url, issuer, environment"
                .into(),
        )),
    }
}

fn crate_models(
    backends: &[BackendModel],
    routes: &[RouteModel],
    envs: &[EnvModel],
    oauth: Option<&OAuthModel>,
) -> Vec<CrateModel> {
    backends
        .iter()
        .filter(|b| b.router)
        .map(|b| {
            let resources: Vec<&ResourceModel> = oauth
                .map(|o| o.resources.iter().filter(|r| r.backend == b.name).collect())
                .unwrap_or_default();
            let name = b.crate_name.clone().expect("router backends have a crate name");
            CrateModel {
                lib_name: name.to_snake_case(),
                name,
                backend: b.name.clone(),
                env_var: ROUTER_ENV_VAR,
                environments: envs
                    .iter()
                    .map(|e| CrateEnv {
                        name: e.name.clone(),
                        issuer: e.issuer.clone(),
                        as_metadata_url: e.as_metadata_url.clone(),
                        resources: e
                            .resources
                            .iter()
                            .filter(|r| r.backend == b.name)
                            .map(|r| CrateEnvResource {
                                mount: r.mount.clone(),
                                resource_url: r.resource_url.clone(),
                                prm_url: r.prm_url.clone(),
                                root_prm: r.root_prm_url.is_some(),
                            })
                            .collect(),
                    })
                    .collect(),
                resources: resources
                    .iter()
                    .map(|r| CrateResource { mount: r.mount.clone(), name: r.name.clone() })
                    .collect(),
                as_metadata_document: oauth.and_then(|o| o.as_metadata_document.clone()),
                architecture: b.architecture,
                scopes: oauth.map(|o| o.scopes.clone()).unwrap_or_default(),
                required_scopes: oauth.map(|o| o.required_scopes.clone()).unwrap_or_default(),
                routes: routes
                    .iter()
                    .filter(|r| r.backend == b.name)
                    .filter_map(|r| {
                        Some(CrateRoute {
                            key: r.key.clone(),
                            arm: r.arm?,
                            resource: r.resource,
                            endpoint: r.endpoint,
                        })
                    })
                    .collect(),
            }
        })
        .collect()
}

fn config_keys(backends: &[BackendModel], envs: &[EnvModel]) -> Vec<ConfigKey> {
    let mut keys = vec![ConfigKey {
        key: "aws:region".into(),
        description: "AWS region of the API and its functions".into(),
        required: true,
    }];
    for b in backends {
        if let Some(k) = b.config.get("function_arn") {
            keys.push(ConfigKey {
                key: k.clone(),
                description: format!("ARN of the existing Lambda function of backend {}", b.name),
                required: true,
            });
        }
        if let Some(k) = b.config.get("artifact") {
            keys.push(ConfigKey {
                key: k.clone(),
                description: format!("path to the code archive, a zip file, of backend {}", b.name),
                required: true,
            });
        }
    }
    if envs.iter().any(|e| !e.local && e.custom_domain.is_some()) {
        keys.push(ConfigKey {
            key: "certificateArn".into(),
            description:
                "ARN of the ACM certificate of the stack's custom domain, in the API's region"
                    .into(),
            required: true,
        });
    }
    keys
}

fn sort_key(r: &RouteModel) -> (u8, String, String) {
    match (&r.path, &r.method) {
        (Some(p), Some(m)) => (0, p.clone(), m.clone()),
        _ => (1, String::new(), String::new()),
    }
}

fn assign_idents(routes: &mut [RouteModel]) {
    let mut used = BTreeSet::new();
    for r in routes.iter_mut() {
        let base = match (&r.method, &r.path) {
            (Some(m), Some(p)) => {
                let words: String = format!("{m} {p}")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
                    .collect();
                let ident = words.to_snake_case();
                if ident.is_empty() { "route".to_string() } else { ident }
            }
            _ => "default".to_string(),
        };
        let mut ident = base.clone();
        let mut n = 2;
        while !used.insert(ident.clone()) {
            ident = format!("{base}_{n}");
            n += 1;
        }
        r.ident = ident;
    }
}

fn route_method(key: &RouteKey) -> Option<String> {
    match key {
        RouteKey::Default => None,
        RouteKey::Route { method, .. } => Some(method.as_str().to_string()),
    }
}

fn route_path(key: &RouteKey) -> Option<String> {
    let text = key.to_string();
    text.split_once(' ').map(|(_, p)| p.to_string())
}

fn check_mount(mount: &str) -> Result<(), String> {
    let bad = || Err(format!("mount `{}` is not a literal path like `/mcp`", mount.escape_debug()));
    if !mount.starts_with('/') || mount.len() < 2 || mount.ends_with('/') {
        return bad();
    }
    let ok = mount[1..].split('/').all(|s| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
    });
    if !ok {
        return bad();
    }
    if mount[1..].split('/').next() == Some(".well-known") {
        return Err(format!("mount `{mount}` lies under `/.well-known`, which discovery owns"));
    }
    Ok(())
}

/// A full `MAJOR.MINOR.PATCH`. A partial version is refused, not padded: `2.12` could be any
/// 2.12.x, on either side of a URL-rule change at 2.12.1.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| {
        (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit())).then(|| p.parse::<u32>().ok())?
    });
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn is_stage_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_mapping_key(key: &str) -> bool {
    key.split('/').all(|s| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    })
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A path as headers show it: relative, with `/` separators, so output does not depend on the
/// machine or on how the user spelled the path.
pub fn display_path(path: &Path) -> String {
    use std::path::Component;
    let absolute = path.has_root();
    let parts: Vec<String> = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let joined = parts.join("/");
    if absolute { format!("/{joined}") } else { joined }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("2.12.1"), Some((2, 12, 1)));
        assert_eq!(parse_version("2.12"), None, "partial versions are ambiguous");
        assert_eq!(parse_version("2.12.1-rc1"), None);
        assert_eq!(parse_version("3.0.0rc1"), None);
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn mounts_are_literal_paths() {
        assert!(check_mount("/mcp").is_ok());
        assert!(check_mount("/api/v1/mcp").is_ok());
        for bad in ["mcp", "/", "/mcp/", "/{x}", "/a//b", "/.well-known/mcp", "/a/../b"] {
            assert!(check_mount(bad).is_err(), "{bad}");
        }
    }
}
