//! Start-up configuration: which environment this instance serves, and the checks that make a
//! router refuse to start rather than answer wrongly.

use std::fmt;

use crate::model::{Arm, Environment};
use crate::spec;

/// Why a router refused to start.
#[derive(Debug)]
pub enum ConfigError {
    /// The environment variable named by `spec::ENV_VAR` is not set.
    MissingEnvironment,
    /// The environment variable names no environment of the spec.
    UnknownEnvironment(String),
    /// A loopback authorization server URL that is not `http://` on a loopback host with a port.
    NotLoopback(String),
    /// The compiled-in tables contradict themselves (a specgen bug, not a deployment mistake).
    InconsistentSpec(String),
    /// The HTTP client for the authorization server could not be built.
    HttpClient(String),
    /// jsonwebtoken has no crypto provider, or two: the crate must enable exactly one.
    NoCryptoProvider,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = KnownEnvironments;
        match self {
            ConfigError::MissingEnvironment => {
                write!(f, "{} is not set; known environments: {known}", spec::ENV_VAR)
            }
            ConfigError::UnknownEnvironment(name) => write!(
                f,
                "{} is {name:?}, which is not a known environment; known environments: {known}",
                spec::ENV_VAR
            ),
            ConfigError::NotLoopback(url) => write!(
                f,
                "loopback authorization server {url:?} is not an http URL on 127.0.0.1, \
                 localhost or [::1] with a port"
            ),
            ConfigError::InconsistentSpec(detail) => {
                write!(f, "the tables compiled from {} are inconsistent: {detail}", spec::SOURCE)
            }
            ConfigError::HttpClient(detail) => write!(f, "cannot build the HTTP client: {detail}"),
            ConfigError::NoCryptoProvider => {
                write!(f, "jsonwebtoken has no single crypto provider; enable only aws_lc_rs")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The names of the spec's environments, comma-separated, for messages.
struct KnownEnvironments;

impl fmt::Display for KnownEnvironments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, environment) in spec::ENVIRONMENTS.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(environment.name)?;
        }
        Ok(())
    }
}

/// Finds the environment a router serves from the value of the variable named by
/// `spec::ENV_VAR` (`None` when it is not set).
pub fn select_environment(name: Option<&str>) -> Result<&'static Environment, ConfigError> {
    let name = name.ok_or(ConfigError::MissingEnvironment)?;
    spec::ENVIRONMENTS
        .iter()
        .find(|environment| environment.name == name)
        .ok_or_else(|| ConfigError::UnknownEnvironment(name.to_owned()))
}

/// Checks what the router relies on in the compiled-in tables, so that a broken table stops
/// the router at start-up instead of failing one request at a time.
pub(crate) fn check_tables() -> Result<(), ConfigError> {
    let inconsistent = |detail: String| Err(ConfigError::InconsistentSpec(detail));

    for environment in spec::ENVIRONMENTS {
        // Dispatch strips the base path from `rawPath`: it must be what the URLs hold.
        for resource in environment.resources {
            let path = url_path(resource.resource_url);
            if path != format!("{}{}", environment.base_path, resource.mount) {
                return inconsistent(format!(
                    "resource URL {:?} is not the base path {:?} plus the mount {:?}",
                    resource.resource_url, environment.base_path, resource.mount
                ));
            }
        }
        if environment.resources.len() != spec::RESOURCES.len() {
            return inconsistent(format!(
                "environment {:?} has {} resources, the backend has {}",
                environment.name,
                environment.resources.len(),
                spec::RESOURCES.len()
            ));
        }
    }

    for route in spec::ROUTES {
        let needs_resource = matches!(
            route.arm,
            Arm::McpEndpoint
                | Arm::McpSubtree
                | Arm::ProtectedResourceMetadata
                | Arm::RootProtectedResourceMetadata
        );
        match route.resource {
            Some(index) if index >= spec::RESOURCES.len() => {
                return inconsistent(format!(
                    "route {:?} names resource {index}, out of range",
                    route.key
                ));
            }
            None if needs_resource => {
                return inconsistent(format!("route {:?} needs a resource", route.key));
            }
            _ => {}
        }
        if (route.arm == Arm::DefaultEndpoint) != route.endpoint.is_some() {
            return inconsistent(format!(
                "route {:?} has an endpoint only if it is a DefaultEndpoint",
                route.key
            ));
        }
    }
    Ok(())
}

/// The path of a URL: everything after the authority, `""` when there is none.
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
    after_scheme.find('/').map_or("", |at| &after_scheme[at..])
}

/// Accepts only `http://` URLs on a loopback host with an explicit port: the authorization
/// server of a test, never a real one.
pub(crate) fn check_loopback(url: &str) -> Result<(), ConfigError> {
    if is_loopback_http(url) { Ok(()) } else { Err(ConfigError::NotLoopback(url.to_owned())) }
}

pub(crate) fn is_loopback_http(url: &str) -> bool {
    if !url.starts_with("http://") {
        return false;
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let host_is_loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));

    // `Url::port` hides a default port, so the explicit port is read from the text itself.
    let authority = url["http://".len()..].split(['/', '?', '#']).next().unwrap_or("");
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));

    host_is_loopback && has_port && parsed.username().is_empty() && parsed.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_told_apart() {
        assert!(is_loopback_http("http://127.0.0.1:8080/.well-known/oauth-authorization-server"));
        assert!(is_loopback_http("http://localhost:1/x"));
        assert!(is_loopback_http("http://[::1]:9/"));
        assert!(is_loopback_http("http://127.0.0.1:80/"));

        assert!(!is_loopback_http("https://127.0.0.1:8080/"));
        assert!(!is_loopback_http("http://127.0.0.1/"));
        assert!(!is_loopback_http("http://127.0.0.1:80@example.com/"));
        assert!(!is_loopback_http("http://user@127.0.0.1:80/"));
        assert!(!is_loopback_http("http://127.0.0.2:80/"));
        assert!(!is_loopback_http("http://localhost.example.com:80/"));
        assert!(!is_loopback_http("http://example.com:80/"));
        assert!(!is_loopback_http("HTTP://example.com:80/"));
    }

    #[test]
    fn compiled_in_tables_are_consistent() {
        check_tables().unwrap();
    }
}
