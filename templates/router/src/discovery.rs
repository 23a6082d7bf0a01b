//! The OAuth discovery answers: protected resource metadata (RFC 9728), the authorization
//! server's metadata (RFC 8414) forwarded verbatim from the issuer or fixed by the spec, JSON
//! 404s for the well-known paths that have no document, and redirects from the default
//! endpoints to the authorization server.

use http::{Method, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::model::{Endpoint, Environment, Resource};
use crate::respond::{self, AS_METADATA_CACHE_CONTROL, DISCOVERY_METHODS, PRM_CACHE_CONTROL};
use crate::spec;
use crate::upstream::AuthorizationServer;

/// The PRM document, in the order RFC 9728 lists its fields.
#[derive(Serialize)]
struct ProtectedResourceMetadata<'a> {
    resource: &'a str,
    authorization_servers: [&'a str; 1],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    scopes_supported: &'a [&'a str],
    bearer_methods_supported: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
}

/// The PRM of resource `index` in `environment`, for GET and HEAD.
pub(crate) fn protected_resource_metadata(
    method: &Method,
    environment: &Environment,
    index: usize,
) -> Response<Body> {
    let (Some(published), Some(Resource { name, .. })) =
        (environment.resources.get(index), spec::RESOURCES.get(index))
    else {
        return respond::not_found();
    };
    let document = ProtectedResourceMetadata {
        resource: published.resource_url,
        authorization_servers: [environment.issuer],
        scopes_supported: spec::SCOPES,
        bearer_methods_supported: ["header"],
        resource_name: *name,
    };
    let body = serde_json::to_string(&document).expect("the PRM serializes");
    document_response(method, body, PRM_CACHE_CONTROL)
}

/// The issuer's metadata document, byte for byte as the issuer serves it.
pub(crate) async fn authorization_server_metadata(
    method: &Method,
    server: &AuthorizationServer,
) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return document_response(method, String::new(), AS_METADATA_CACHE_CONTROL);
    }
    match server.document().await {
        Ok(document) => document_response(method, document, AS_METADATA_CACHE_CONTROL),
        Err(error) => {
            tracing::error!(%error, "cannot fetch the authorization server metadata");
            respond::error(StatusCode::BAD_GATEWAY, "authorization_server_unavailable")
        }
    }
}

/// A well-known path with no document here: a JSON 404 that a browser can read.
pub(crate) fn well_known_not_found(method: &Method) -> Response<Body> {
    if *method == Method::OPTIONS {
        respond::discovery_preflight(DISCOVERY_METHODS)
    } else {
        respond::not_found()
    }
}

/// A redirect from the default endpoint on the resource's origin to the authorization server's
/// own, with the query string: 302 for `/authorize` (a browser navigation), 307 for `/token`
/// and `/register` so that the POST and its body are sent again.
pub(crate) async fn default_endpoint(
    method: &Method,
    endpoint: Endpoint,
    query: Option<&str>,
    server: &AuthorizationServer,
) -> Response<Body> {
    if *method == Method::OPTIONS {
        return respond::discovery_preflight(respond::ENDPOINT_METHODS);
    }
    let metadata = match server.metadata().await {
        Ok(metadata) => metadata,
        Err(error) => {
            tracing::error!(%error, "cannot fetch the authorization server metadata");
            return respond::error(StatusCode::BAD_GATEWAY, "authorization_server_unavailable");
        }
    };

    let (target, status) = match endpoint {
        Endpoint::Authorize => (&metadata.authorization_endpoint, StatusCode::FOUND),
        Endpoint::Token => (&metadata.token_endpoint, StatusCode::TEMPORARY_REDIRECT),
        Endpoint::Register => (&metadata.registration_endpoint, StatusCode::TEMPORARY_REDIRECT),
    };
    let Some(target) = target else {
        return respond::not_found();
    };
    if !server.policy().permits(target) {
        tracing::error!(target, "the authorization server advertises an endpoint not allowed");
        return respond::error(StatusCode::BAD_GATEWAY, "invalid_authorization_server_endpoint");
    }

    let location = match query.filter(|q| !q.is_empty()) {
        Some(query) => {
            let separator = if target.contains('?') { '&' } else { '?' };
            format!("{target}{separator}{query}")
        }
        None => target.clone(),
    };
    respond::redirect(status, &location)
}

/// A discovery document's answer to `method`: the document for GET, its headers for HEAD, a
/// preflight answer for OPTIONS, 405 otherwise.
fn document_response(method: &Method, body: String, cache_control: &'static str) -> Response<Body> {
    match *method {
        Method::GET => respond::json(StatusCode::OK, body, cache_control),
        Method::HEAD => {
            let mut response = respond::json(StatusCode::OK, body, cache_control);
            *response.body_mut() = Body::Empty;
            response
        }
        Method::OPTIONS => respond::discovery_preflight(DISCOVERY_METHODS),
        _ => respond::method_not_allowed(DISCOVERY_METHODS),
    }
}
