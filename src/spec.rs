//! The spec as the user writes it: serde types that mirror the YAML, and the loader.
//!
//! Nothing here interprets the spec. Each value that a later check may complain about is read as
//! [`Located`], so the check can point at its line and column. The loader uses serde-saphyr, which
//! keeps node positions and bounds the parser's work (see the README's design notes).

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::diag::{Diagnostic, Pos};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: Pos,
}

impl<T> Located<T> {
    pub fn new(value: T, at: Pos) -> Self {
        Located { value, at }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let at = spanned.referenced;
        let pos = Pos::new(clamp(at.line()), clamp(at.column()));
        Ok(Located { value: spanned.value, at: pos })
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A routing spec: one HTTP API, its environments, backends, routes and OAuth settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "specgen routing spec")]
pub struct Spec {
    /// The HTTP API.
    pub api: Api,
    /// Where the API is served. Each deployed environment is one Pulumi stack.
    pub environments: Located<Vec<Environment>>,
    /// The Lambda functions that routes send requests to.
    pub backends: Located<Vec<Backend>>,
    /// Route keys written by the user. The OAuth block adds the discovery routes itself.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// JWT authorizers that routes may name with `auth: {jwt: NAME}`.
    #[serde(default)]
    pub authorizers: Vec<Authorizer>,
    /// OAuth protection of MCP endpoints, and the discovery routes derived from it.
    pub oauth: Option<Located<OAuth>>,
    /// The auth of user routes that set none. Defaults to `none`. Derived routes never take it:
    /// discovery must stay public.
    pub default_auth: Option<Located<Auth>>,
    /// Requests with the route, backend and status they must get. `specgen check` checks them.
    #[serde(default)]
    pub assertions: Vec<Assertion>,
    /// Lints that are intended here, each with the reason why.
    #[serde(default)]
    pub acknowledge: Vec<Acknowledgement>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    /// `METHOD URL`, e.g. `GET https://dev.wikibot.io/.well-known/oauth-authorization-server`,
    /// or `METHOD /path` on the environment's origin.
    pub request: Located<String>,
    /// The environment whose origin and stage serve the request. Defaults to every environment
    /// whose origin the URL names (for a bare path: every environment).
    pub environment: Option<Located<String>>,
    /// The route key that must win, or `none` for API Gateway's own 404.
    pub route: Option<Located<String>>,
    /// The backend that must receive the request.
    pub backend: Option<Located<String>>,
    /// The status the request must get, where specgen can know it: 404 from the gateway, or
    /// the generated router's answer to a request without a token.
    pub status: Option<Located<u16>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// The lint's code, e.g. `auth-weaker-twin`.
    pub lint: Located<String>,
    /// The route key the finding is about. Required: an acknowledgement covers one route, so
    /// a new finding elsewhere is never hidden. (Optional here only so that a missing one gets
    /// a located diagnostic rather than a parse error.)
    pub route: Option<Located<String>>,
    /// Why the flagged behaviour is intended. Required, so a reviewer can judge it.
    pub reason: Located<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// The API's name, used for the Pulumi project and resource names.
    pub name: Located<String>,
    /// A sentence for reviewers and the API's description.
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The environment's name; for a deployed environment, also its Pulumi stack.
    pub name: Located<String>,
    /// Public origin: scheme, host and optional port, never a path. An origin other than the
    /// API's own `execute-api` endpoint is a custom domain.
    pub origin: Located<String>,
    /// The stage requests are served from. Defaults to `$default`.
    pub stage: Option<Located<String>>,
    /// The custom domain's API mapping. Required when the origin is not the API's own endpoint.
    pub custom_domain: Option<Located<CustomDomain>>,
    /// The OAuth issuer of this environment, when it differs from `oauth.issuer`.
    pub issuer: Option<Located<String>>,
    /// A local environment is never deployed and is no Pulumi stack. Only a local environment
    /// may use an `http` loopback origin.
    #[serde(default)]
    pub local: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomDomain {
    /// The API mapping key: the first path segment(s) that select this API. Often empty.
    #[serde(default)]
    pub mapping_key: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Deploy {
    /// Pulumi creates the function from a code artifact and sets its environment.
    Managed,
    /// The function exists already; Pulumi takes its ARN from stack config.
    Referenced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// The backend's name, used by routes and for resource names.
    pub name: Located<String>,
    pub description: Option<String>,
    /// `managed` or `referenced`.
    pub deploy: Located<Deploy>,
    /// Lambda runtime of a managed backend, e.g. `provided.al2023` or `python3.12`.
    pub runtime: Option<Located<String>>,
    /// Lambda handler of a managed backend.
    pub handler: Option<Located<String>>,
    /// Instruction set of a managed backend. Defaults to `x86_64`.
    pub architecture: Option<Architecture>,
    /// Memory of a managed backend in MB. Defaults to 256.
    pub memory_mb: Option<Located<u32>>,
    /// Timeout of a managed backend in seconds. Defaults to 29, API Gateway's own limit.
    pub timeout_seconds: Option<Located<u32>>,
    /// Served by the Rust router crate that specgen generates.
    #[serde(default)]
    pub router: bool,
    /// The web framework that serves the backend, when specgen must know its URL rules.
    pub framework: Option<Located<Framework>>,
    /// Environment variables: a typed string, `{derive: NAME}`, or `{per_environment: {..}}`.
    #[serde(default)]
    pub environment: BTreeMap<String, Located<EnvValue>>,
    /// Pages this backend serves as HTML, as paths on each environment's base URL (after the
    /// stage or mapping key), e.g. `/Home` for a wiki. After a deploy, `specgen probe` requests
    /// each one and expects a 200 `text/html` answer, so a route change that hands the page to
    /// another backend is caught.
    #[serde(default)]
    pub pages: Vec<Located<String>>,
    /// What answers for this backend when `specgen serve` runs a local environment, e.g.
    /// `{body: "<h1>wiki</h1>"}` for a wiki. A router backend is run from its own binary
    /// instead (`specgen serve --backend NAME=PATH`); any other backend needs a stand-in to be
    /// served locally. Never deployed.
    pub local: Option<LocalStandIn>,
}

/// A static answer that plays a backend under `specgen serve`: every request the backend's
/// routes take gets this status, content type and body.
#[derive(Debug, Clone, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStandIn {
    /// The status code, 200 by default.
    #[serde(default = "LocalStandIn::default_status")]
    pub status: u16,
    /// The `Content-Type` header, `text/html; charset=utf-8` by default.
    #[serde(default = "LocalStandIn::default_content_type")]
    pub content_type: String,
    /// The body.
    #[serde(default)]
    pub body: String,
}

impl LocalStandIn {
    fn default_status() -> u16 {
        200
    }

    fn default_content_type() -> String {
        "text/html; charset=utf-8".to_owned()
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// The framework's name. Known: `fastmcp`.
    pub name: Located<String>,
    /// Its version, e.g. `2.12.4`. The URL rules of FastMCP changed at 2.12.1.
    pub version: Located<String>,
    /// The environment variable that carries the base URL the app passes to the framework.
    pub base_url_variable: Option<Located<String>>,
}

/// An environment variable's value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    /// The same typed value in every environment.
    Typed(String),
    /// A value derived from the spec's URLs.
    Derived(DerivedValue),
    /// A typed value per environment.
    PerEnvironment(PerEnvironmentValue),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DerivedValue {
    /// One of `origin`, `base-url`, `resource-url`, `framework-base-url`, `issuer`,
    /// `environment`.
    pub derive: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerEnvironmentValue {
    pub per_environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// An API Gateway route key: `$default`, or `METHOD /path` with `{param}` and `{name+}`.
    pub key: Located<String>,
    /// The backend that serves the route.
    pub backend: Located<String>,
    /// `none`, `bearer` (the backend verifies the token), or `{jwt: AUTHORIZER}`.
    #[serde(default)]
    pub auth: Option<Located<Auth>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    None,
    Bearer,
    Jwt(String),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorizer {
    pub name: Located<String>,
    /// The JWT issuer. Defaults to the environment's OAuth issuer.
    pub issuer: Option<Located<String>>,
    /// Accepted audiences. Defaults to the environment's resource URLs.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Where the token is read. Defaults to `$request.header.Authorization`.
    pub identity_source: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth {
    /// The authorization server's issuer, exactly as that server writes it.
    pub issuer: Located<String>,
    /// Scopes advertised in the metadata and the 401 challenge.
    #[serde(default)]
    pub scopes: Vec<Located<String>>,
    /// Scopes a token must carry to reach the MCP handler. Each must be among `scopes`.
    #[serde(default)]
    pub required_scopes: Vec<Located<String>>,
    /// How the authorization-server metadata is served on the MCP origin: `forward` fetches it
    /// from the issuer and passes it through verbatim (the default); `{static: {...}}` serves
    /// the given document, whose `issuer` must be the environment's issuer exactly.
    #[serde(default)]
    pub authorization_server_metadata: Option<Located<AsMetadata>>,
    /// The protected MCP resources.
    pub resources: Located<Vec<Resource>>,
    /// Derive the discovery routes. Switching this off is always an error: it exists so that a
    /// spec which does it is refused with a clear message rather than misread.
    #[serde(default)]
    pub discovery_routes: Option<Located<bool>>,
    /// Also derive `/authorize`, `/token` and `/register` on the MCP origin, for clients that
    /// fall back to them. Unset, they stay where the other routes send them, with a warning when
    /// that is another backend; `false` keeps them there knowingly, since a web app may own them.
    #[serde(default)]
    pub default_endpoints: Option<bool>,
    /// The backend that serves the issuer's metadata when the issuer shares the MCP origin.
    pub issuer_backend: Option<Located<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AsMetadata {
    Forward,
    Static(serde_json::Map<String, serde_json::Value>),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The backend that serves the MCP endpoint.
    pub backend: Located<String>,
    /// The MCP endpoint's path on the public base URL, e.g. `/mcp`.
    pub mount: Located<String>,
    /// `resource_name` in the protected-resource metadata.
    pub name: Option<String>,
}

/// The largest spec specgen reads. Real specs are a few kilobytes; the cap keeps a hostile file
/// from exhausting memory before the parser's own budget applies.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// Parses a spec, or returns the diagnostic that says where and why it could not be read.
pub fn parse(file: &Path, text: &str) -> Result<Spec, Diagnostic> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(Diagnostic::error(
            "spec-too-large",
            file,
            Pos::FILE,
            format!("the spec is {} bytes, more than the limit of {MAX_SPEC_BYTES}", text.len()),
        )
        .help("split the spec, or check that the right file was given"));
    }
    // YAML 1.1 booleans (`no`, `off`) and custom tags are refused: a spec is read exactly as
    // written, never guessed at.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        reject_unsupported_tags: true,
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 64,
        },
    };
    serde_saphyr::from_str_with_options::<Spec>(text, options).map_err(|e| parse_error(file, &e))
}

fn parse_error(file: &Path, error: &serde_saphyr::Error) -> Diagnostic {
    let at =
        error.location().map(|l| Pos::new(clamp(l.line()), clamp(l.column()))).unwrap_or(Pos::FILE);
    let (code, message, help) = explain_parse_error(&plain_message(error));
    Diagnostic::error(code, file, at, message).help(help)
}

/// Turns the parser's messages into specgen's voice, with a fix for the common ones.
fn explain_parse_error(message: &str) -> (&'static str, String, String) {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return (
            "spec-duplicate-key",
            format!("key `{key}` appears twice in one mapping"),
            "keep one of the two; YAML would otherwise silently drop one".into(),
        );
    }
    if message.starts_with("multiple YAML documents") {
        return (
            "spec-syntax",
            "the file holds more than one YAML document".into(),
            "keep one spec per file and remove the `---` after the first".into(),
        );
    }
    if message.contains("untagged enum EnvValue") {
        return (
            "spec-syntax",
            "an environment value must be a string, `{derive: NAME}` or \
             `{per_environment: {ENV: VALUE}}`"
                .into(),
            "quote numbers and booleans, e.g. `\"5\"`".into(),
        );
    }
    if let Some(kind) =
        ["u32", "u64", "usize"].iter().find(|k| message.contains(&format!("invalid {k}")))
    {
        let _ = kind;
        return (
            "spec-syntax",
            "expected a whole number of zero or more".into(),
            "write the number without quotes or sign, e.g. `256`".into(),
        );
    }
    let help = if message.contains("unknown field") {
        "remove the key, or check its spelling against generated/specgen.schema.json"
    } else if message.contains("missing field") {
        "add the field; generated/specgen.schema.json lists every field"
    } else if message.contains("budget") {
        "the spec is too large or too deeply nested for a routing spec"
    } else {
        "fix the YAML at this position; generated/specgen.schema.json describes the format"
    };
    ("spec-syntax", message.to_string(), help.to_string())
}

/// The parser's message without its own location suffix and source excerpt: specgen prints the
/// location itself, in the same form as every other diagnostic.
fn plain_message(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    let mut message = text.lines().next().unwrap_or("invalid spec").trim();
    message = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("line ") {
        // "line 10 column 5: unknown field ..." carries the position we print anyway.
        if let Some((position, tail)) = rest.split_once(": ")
            && position.split(' ').all(|w| w == "column" || w.chars().all(|c| c.is_ascii_digit()))
        {
            message = tail;
        }
    }
    if let Some(i) = message.rfind(" at line ") {
        message = &message[..i];
    }
    message.trim_end_matches('.').to_string()
}
