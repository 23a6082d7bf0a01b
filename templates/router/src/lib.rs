//! The Lambda router for one backend of a specgen spec. It serves the OAuth discovery documents
//! of the backend's protected resources, guards the MCP endpoint with bearer tokens, and hands
//! verified requests to the consumer's handler, any `tower::Service` over `lambda_http::Request`.
//!
//! API Gateway has already chosen the route. The router dispatches on the route key it reports
//! (`requestContext.routeKey`) and on `pathParameters`, checks that the path it received fits
//! that route, and takes every public URL from [`spec`], never from the request.
//!
//! A consumer's `main` calls [`run`] with its handler on Lambda, or [`serve_local`] to serve the
//! same router over HTTP on 127.0.0.1 during development; tests build a [`Router`] with
//! [`Router::builder`] and call [`Router::handle`] on API Gateway events, or serve it with
//! [`serve_local_listener`] on port 0.

mod auth;
mod config;
mod discovery;
mod dispatch;
mod local;
pub mod model;
mod respond;
#[rustfmt::skip]
pub mod spec;
mod upstream;

pub use auth::VerifiedClaims;
pub use config::{ConfigError, select_environment};
pub use dispatch::{Router, RouterBuilder};
pub use lambda_http::Error;
pub use local::{LocalError, serve_local, serve_local_listener};

/// Starts the Lambda runtime with a router in front of `handler`.
///
/// The environment comes from the variable named by [`spec::ENV_VAR`]; the router refuses to
/// start, and this returns the reason, when it is missing or names no known environment.
pub async fn run<S, B>(handler: S) -> Result<(), Error>
where
    S: tower::Service<lambda_http::Request, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    let router = Router::builder(handler).build()?;
    lambda_http::run(router).await
}
