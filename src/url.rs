//! URL helpers: parsing origins and issuers, and the RFC 8414 / RFC 9728 path insertion.
//!
//! specgen needs very little of URL syntax, and what it needs must be exact: a resource URL is
//! compared byte for byte by clients. So this module accepts only the canonical shapes and says
//! precisely what is wrong with anything else, instead of normalising it silently.

/// An absolute `http` or `https` URL split into the parts specgen reasons about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// The path exactly as written, `""` when there is none.
    pub path: String,
}

impl ParsedUrl {
    /// `scheme://host[:port]`, as written.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// True for `localhost`, `[::1]` and an IPv4 literal in 127.0.0.0/8. A name that only
    /// starts with `127.`, such as `127.example.com`, is a DNS name like any other and may
    /// resolve anywhere, so it is not loopback.
    pub fn is_loopback(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "[::1]")
            || self.host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Why a URL was refused, as a message and a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlProblem {
    pub message: String,
    pub help: String,
}

fn problem(message: impl Into<String>, help: impl Into<String>) -> UrlProblem {
    UrlProblem { message: message.into(), help: help.into() }
}

/// Parses an absolute URL with no user info, query or fragment.
pub fn parse(text: &str) -> Result<ParsedUrl, UrlProblem> {
    let (scheme, rest) = text.split_once("://").ok_or_else(|| {
        problem(format!("`{text}` is not an absolute URL"), "write it as https://host")
    })?;
    if scheme != "https" && scheme != "http" {
        return Err(problem(
            format!("`{text}` has scheme `{scheme}`; only https (and http on loopback) work here"),
            "use an https URL",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(problem(
            format!("`{text}` has a query or fragment"),
            "remove everything from `?` or `#` on",
        ));
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\' || c == '"') {
        return Err(problem(
            format!("`{}` contains whitespace, a quote or a backslash", text.escape_debug()),
            "remove the character; URLs are compared byte for byte",
        ));
    }
    if let Some(c) = rest.chars().find(|c| !is_url_char(*c)) {
        return Err(problem(
            format!(
                "`{}` contains `{}`, which a URL cannot hold",
                text.escape_debug(),
                c.escape_debug()
            ),
            "percent-encode the character, or remove it",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(problem(format!("`{text}` carries user info"), "remove the `user@` part"));
    }
    let (host, port) = split_port(authority).ok_or_else(|| {
        problem(format!("`{text}` has an invalid port"), "write host:PORT with 1-65535")
    })?;
    if host.is_empty() || !valid_host(host) {
        return Err(problem(
            format!("`{text}` has an invalid host `{host}`"),
            "use a lowercase DNS name, an IPv4 address or [::1]",
        ));
    }
    Ok(ParsedUrl {
        scheme: scheme.to_string(),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// RFC 3986's characters outside the query and fragment: unreserved, sub-delims, `:`, `@`, `/`,
/// `%`, and the brackets of an IPv6 literal.
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/%[]".contains(c)
}

fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let bracket_end = authority.rfind(']');
    match authority.rfind(':') {
        Some(i) if bracket_end.is_none_or(|b| i > b) => {
            let port: u16 = authority[i + 1..].parse().ok().filter(|p| *p > 0)?;
            Some((&authority[..i], Some(port)))
        }
        _ => Some((authority, None)),
    }
}

fn valid_host(host: &str) -> bool {
    if host == "[::1]" {
        return true;
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

/// Checks that an origin is canonical: lowercase, default port elided, no path.
pub fn check_origin(url: &ParsedUrl, text: &str) -> Result<(), UrlProblem> {
    if !url.path.is_empty() {
        return Err(problem(
            format!("origin `{text}` carries the path `{}`", url.path),
            format!(
                "an origin is scheme, host and port only; write `{}` and put the path in a \
                 mount, stage or mapping key, from which specgen derives every URL once",
                url.origin()
            ),
        ));
    }
    let default_port = if url.scheme == "https" { 443 } else { 80 };
    if url.port == Some(default_port) {
        return Err(problem(
            format!("origin `{text}` spells out the default port {default_port}"),
            format!("write `{}://{}`: clients compare the canonical form", url.scheme, url.host),
        ));
    }
    Ok(())
}

/// The host of an API's own endpoint, `{api-id}.execute-api.{region}.amazonaws.com`.
pub fn is_execute_api_host(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 5
        && parts[1] == "execute-api"
        && parts[3] == "amazonaws"
        && parts[4] == "com"
        && parts[0].chars().all(|c| c.is_ascii_alphanumeric())
}

/// RFC 8414 / RFC 9728 insertion: `https://h/p` becomes `https://h/.well-known/<name>/p`.
/// A path of just `/` is dropped first.
pub fn insert_well_known(url: &str, name: &str) -> String {
    let (origin, path) = split_origin(url);
    let path = if path == "/" { "" } else { path };
    format!("{origin}/.well-known/{name}{path}")
}

/// Splits `https://h:1/p` into `("https://h:1", "/p")`.
pub fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

/// Finds a run of `needle` path segments repeated back to back in `path` (`/mcp/mcp`).
pub fn doubled_segments(path: &str, needle: &[&str]) -> bool {
    if needle.is_empty() {
        return false;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let n = needle.len();
    segments.windows(2 * n).any(|w| w[..n] == *needle && w[n..] == *needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_follows_rfc_8414() {
        assert_eq!(
            insert_well_known("https://t.authkit.app", "oauth-authorization-server"),
            "https://t.authkit.app/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            insert_well_known("https://auth.h/realms/x", "oauth-authorization-server"),
            "https://auth.h/.well-known/oauth-authorization-server/realms/x"
        );
        assert_eq!(
            insert_well_known("https://h/", "oauth-protected-resource"),
            "https://h/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn doubling_is_found_only_back_to_back() {
        assert!(doubled_segments("/mcp/mcp", &["mcp"]));
        assert!(doubled_segments("/a/b/a/b", &["a", "b"]));
        assert!(!doubled_segments("/mcp/x/mcp", &["mcp"]));
        assert!(!doubled_segments("/mcp", &["mcp"]));
    }

    #[test]
    fn origins_must_be_canonical() {
        let url = parse("https://dev.wikibot.io/mcp").unwrap();
        assert!(check_origin(&url, "https://dev.wikibot.io/mcp").is_err());
        assert!(parse("https://Dev.wikibot.io").is_err());
        assert!(parse("ftp://h").is_err());
        let url = parse("https://h:443").unwrap();
        assert!(check_origin(&url, "https://h:443").is_err());
        assert!(parse("http://127.0.0.1:8787").unwrap().is_loopback());
        assert!(parse("http://127.1.2.3:8787").unwrap().is_loopback());
        assert!(parse("http://[::1]:8787").unwrap().is_loopback());
        assert!(parse("http://localhost:8787").unwrap().is_loopback());
        for remote in [
            "http://127.evil.example:8787",
            "http://127.0.0.1.nip.io:8787",
            "http://127.0.0.256:8787",
            "http://128.0.0.1:8787",
            "http://localhost.example:8787",
        ] {
            assert!(!parse(remote).is_ok_and(|u| u.is_loopback()), "{remote}");
        }
    }
}
