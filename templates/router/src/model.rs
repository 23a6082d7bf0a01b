//! The shapes of the tables that `spec.rs` compiles in: environments, resources and routes.
//!
//! `spec.rs` is the only file rendered from the spec; everything else reads these types, so the
//! rest of the crate is the same for every spec.

/// One deployment target, with every public URL baked in at build time.
#[derive(Debug)]
pub struct Environment {
    /// The name that the environment variable `spec::ENV_VAR` selects, e.g. `dev`.
    pub name: &'static str,
    /// A local environment runs on this machine, on a loopback origin.
    pub local: bool,
    /// The API Gateway stage: `$default` or a name.
    pub stage: &'static str,
    /// The API mapping key of the custom domain (`""` for the empty key), `None` when requests
    /// come through the API's own endpoint.
    pub mapping_key: Option<&'static str>,
    /// What the stage or mapping key puts between the origin and the mounts in public URLs,
    /// e.g. `/prod` or `/v1`, `""` for nothing. API Gateway may or may not keep it in `rawPath`.
    pub base_path: &'static str,
    /// The issuer exactly as the authorization server writes it (the `iss` of its tokens).
    pub issuer: &'static str,
    /// The issuer's RFC 8414 metadata URL, from which the router forwards metadata and learns
    /// `jwks_uri` and the endpoints.
    pub as_metadata_url: &'static str,
    /// The backend's protected resources in this environment, indexed like `spec::RESOURCES`.
    pub resources: &'static [EnvironmentResource],
}

/// A protected resource as it is published in one environment.
#[derive(Debug)]
pub struct EnvironmentResource {
    /// The path the resource is mounted at, e.g. `/mcp`.
    pub mount: &'static str,
    /// The canonical resource URL: the PRM's `resource` and the audience tokens must carry.
    pub resource_url: &'static str,
    /// The path-inserted PRM URL that the 401 challenge points at.
    pub prm_url: &'static str,
    /// Whether the root PRM (`/.well-known/oauth-protected-resource`) describes this resource.
    pub root_prm: bool,
}

/// A protected resource as the spec names it, the same in every environment.
#[derive(Debug)]
pub struct Resource {
    pub mount: &'static str,
    /// `resource_name` in the PRM, when the spec gives one.
    pub name: Option<&'static str>,
}

/// One API Gateway route that reaches this backend.
#[derive(Debug)]
pub struct Route {
    /// The route key exactly as API Gateway reports it in `requestContext.routeKey`.
    pub key: &'static str,
    pub arm: Arm,
    /// Index into `spec::RESOURCES` (and each environment's `resources`).
    pub resource: Option<usize>,
    /// The authorization server endpoint a `DefaultEndpoint` route redirects to.
    pub endpoint: Option<Endpoint>,
}

/// What the router does with a request on a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The MCP endpoint itself: bearer guard, then the handler.
    McpEndpoint,
    /// Paths below the MCP endpoint: bearer guard, then the handler; JSON 404 for well-known
    /// paths.
    McpSubtree,
    /// The protected resource metadata of one resource.
    ProtectedResourceMetadata,
    /// The root protected resource metadata, served for the origin's only resource.
    RootProtectedResourceMetadata,
    /// The issuer's RFC 8414 metadata, forwarded verbatim.
    AuthorizationServerMetadata,
    /// A well-known path that clients probe and that has no document: JSON 404.
    WellKnownNotFound,
    /// `/authorize`, `/token` or `/register` on the resource's origin: a redirect to the
    /// authorization server.
    DefaultEndpoint,
    /// The handler, with no guard.
    Unprotected,
}

/// The authorization server endpoints that a `DefaultEndpoint` route can redirect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Authorize,
    Token,
    Register,
}
