//! Route keys as API Gateway accepts them (reference section 2): parsing, printing, duplicates.

use std::fmt;
use std::str::FromStr;

/// An HTTP method a route key can name. `Any` is the key word `ANY`, not a request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Any,
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Any,
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Head,
        Method::Options,
    ];

    /// The key word as a route key spells it, always uppercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Any => "ANY",
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }

    /// The method spelled exactly as a route key must spell it; `get` is not `GET`.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `/`-separated piece of a route key's path. Variables hold their name without braces or `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Literal(String),
    Var(String),
    Greedy(String),
}

impl Segment {
    /// The segment with its variable name blanked out, so `{x}` and `{y}` compare equal.
    fn shape(&self) -> Segment {
        match self {
            Segment::Literal(s) => Segment::Literal(s.clone()),
            Segment::Var(_) => Segment::Var(String::new()),
            Segment::Greedy(_) => Segment::Greedy(String::new()),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Literal(s) => f.write_str(s),
            Segment::Var(name) => write!(f, "{{{name}}}"),
            Segment::Greedy(name) => write!(f, "{{{name}+}}"),
        }
    }
}

/// A route key: `$default`, or a method and a path. The root path `/` has no segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKey {
    Default,
    Route { method: Method, segments: Vec<Segment> },
}

impl RouteKey {
    /// Parses a route key by API Gateway's rules, or says which rule it breaks and how to fix it.
    pub fn parse(s: &str) -> Result<RouteKey, KeyError> {
        if s == "$default" {
            return Ok(RouteKey::Default);
        }

        if s.trim() == "$default" {
            return Err(KeyError::new(
                KeyErrorKind::Syntax,
                format!("route key `{s}` has spaces around `$default`"),
                "write `$default` alone",
            ));
        }
        let Some((method, path)) = s.split_once(' ') else {
            return Err(KeyError::new(
                KeyErrorKind::Syntax,
                format!("route key `{s}` is not `$default` nor `METHOD /path`"),
                "write a method, one space and a path, as in `GET /pets/{id}`",
            ));
        };
        let method = parse_method(s, method)?;
        let segments = parse_path(s, path)?;
        Ok(RouteKey::Route { method, segments })
    }

    /// The path part as a route key prints it: `/` for the root, `None` for `$default`.
    pub fn path(&self) -> Option<String> {
        match self {
            RouteKey::Default => None,
            RouteKey::Route { segments, .. } => Some(render_path(segments)),
        }
    }

    /// The key with parameter names blanked: two keys with equal shapes are duplicates.
    pub fn shape(&self) -> RouteKey {
        match self {
            RouteKey::Default => RouteKey::Default,
            RouteKey::Route { method, segments } => RouteKey::Route {
                method: *method,
                segments: segments.iter().map(Segment::shape).collect(),
            },
        }
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Default => f.write_str("$default"),
            RouteKey::Route { method, segments } => write!(f, "{method} {}", render_path(segments)),
        }
    }
}

impl FromStr for RouteKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<RouteKey, KeyError> {
        RouteKey::parse(s)
    }
}

fn render_path(segments: &[Segment]) -> String {
    if segments.is_empty() {
        return "/".to_owned();
    }
    segments.iter().map(|s| format!("/{s}")).collect()
}

/// Why a route key was refused. `message` names the key; `help` says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyError {
    pub kind: KeyErrorKind,
    pub message: String,
    pub help: String,
}

impl KeyError {
    fn new(kind: KeyErrorKind, message: String, help: impl Into<String>) -> KeyError {
        KeyError { kind, message, help: help.into() }
    }
}

/// The rule of section 2 a route key breaks; [`KeyErrorKind::code`] is its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyErrorKind {
    /// Neither `$default` nor `METHOD /path` (no space, two spaces, empty).
    Syntax,
    /// A known method in the wrong case, such as `get`.
    LowercaseMethod,
    /// A word that is no method a route key may name, such as `TRACE`.
    UnknownMethod,
    /// The path does not start with `/`.
    PathNotAbsolute,
    /// The path ends in `/` and is not the root: AWS rejects it, SAM silently drops the route.
    TrailingSlash,
    /// Two slashes in a row.
    EmptySegment,
    /// A brace that does not span a whole segment, such as `/{id}.json`.
    PartialSegmentVariable,
    /// A variable whose name is empty or uses characters outside `[A-Za-z0-9_-]`.
    InvalidVariableName,
    /// Two variables with one name in a key.
    DuplicateVariable,
    /// A greedy variable followed by more segments.
    GreedyNotLast,
    /// More than one greedy variable.
    MultipleGreedy,
    /// A literal segment with a character outside `[A-Za-z0-9._:-]`.
    IllegalLiteralCharacter,
}

impl KeyErrorKind {
    /// A stable kebab-case code for diagnostics.
    pub fn code(self) -> &'static str {
        match self {
            KeyErrorKind::Syntax => "route-key-syntax",
            KeyErrorKind::LowercaseMethod => "route-key-lowercase-method",
            KeyErrorKind::UnknownMethod => "route-key-unknown-method",
            KeyErrorKind::PathNotAbsolute => "route-key-path-not-absolute",
            KeyErrorKind::TrailingSlash => "route-key-trailing-slash",
            KeyErrorKind::EmptySegment => "route-key-empty-segment",
            KeyErrorKind::PartialSegmentVariable => "route-key-partial-segment-variable",
            KeyErrorKind::InvalidVariableName => "route-key-invalid-variable-name",
            KeyErrorKind::DuplicateVariable => "route-key-duplicate-variable",
            KeyErrorKind::GreedyNotLast => "route-key-greedy-not-last",
            KeyErrorKind::MultipleGreedy => "route-key-multiple-greedy",
            KeyErrorKind::IllegalLiteralCharacter => "route-key-illegal-character",
        }
    }
}

fn parse_method(key: &str, word: &str) -> Result<Method, KeyError> {
    if let Some(method) = Method::parse(word) {
        return Ok(method);
    }
    if let Some(method) = Method::parse(&word.to_ascii_uppercase()) {
        return Err(KeyError::new(
            KeyErrorKind::LowercaseMethod,
            format!("route key `{key}` spells the method `{word}` in lowercase"),
            format!("write `{method}`: route keys name methods in uppercase"),
        ));
    }
    if word.is_empty() {
        return Err(KeyError::new(
            KeyErrorKind::Syntax,
            format!("route key `{key}` starts with a space"),
            "write the method first, as in `GET /pets`",
        ));
    }
    Err(KeyError::new(
        KeyErrorKind::UnknownMethod,
        format!("route key `{key}` names `{word}`, which is not a method a route can have"),
        "use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY",
    ))
}

fn parse_path(key: &str, path: &str) -> Result<Vec<Segment>, KeyError> {
    // Anything after the path, or a second space, is a syntax error rather than a strange literal.
    if path.contains(char::is_whitespace) {
        return Err(KeyError::new(
            KeyErrorKind::Syntax,
            format!("route key `{key}` has more than one space"),
            "write one space between the method and the path, and none inside the path",
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(KeyError::new(
            KeyErrorKind::PathNotAbsolute,
            format!("route key `{key}` has a path that does not start with `/`"),
            format!("write `/{path}`"),
        ));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(trimmed) = path.strip_suffix('/') {
        return Err(KeyError::new(
            KeyErrorKind::TrailingSlash,
            format!("route key `{key}` ends in `/`, which API Gateway rejects"),
            format!(
                "write `{}`; no route key can match a path ending in `/`, so such \
                 requests fall to a greedy route or `$default`",
                key.replacen(path, trimmed.trim_end_matches('/'), 1)
            ),
        ));
    }

    let mut segments = Vec::new();
    for piece in rest.split('/') {
        segments.push(parse_segment(key, piece)?);
    }
    check_variables(key, &segments)?;
    Ok(segments)
}

fn parse_segment(key: &str, piece: &str) -> Result<Segment, KeyError> {
    if piece.is_empty() {
        return Err(KeyError::new(
            KeyErrorKind::EmptySegment,
            format!("route key `{key}` has an empty segment (`//`)"),
            "remove the doubled slash",
        ));
    }

    // A variable spans the whole segment; a brace anywhere else is the partial-segment error
    // AWS reports as "One or more path parts appear to be invalid".
    if let Some(inner) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        let (name, greedy) = match inner.strip_suffix('+') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) {
            return Err(KeyError::new(
                KeyErrorKind::InvalidVariableName,
                format!("route key `{key}` has a variable `{piece}` with an invalid name"),
                "name variables with letters, digits, `_` and `-`, as in `{id}` or `{proxy+}`",
            ));
        }
        let name = name.to_owned();
        return Ok(if greedy { Segment::Greedy(name) } else { Segment::Var(name) });
    }
    if piece.contains(['{', '}']) {
        return Err(KeyError::new(
            KeyErrorKind::PartialSegmentVariable,
            format!("route key `{key}` has `{piece}`, a variable that is not a whole segment"),
            "make the variable the whole segment (`/{id}`) and parse the rest in the handler",
        ));
    }

    if let Some(bad) = piece.chars().find(|c| !(c.is_ascii_alphanumeric() || "._:-".contains(*c))) {
        return Err(KeyError::new(
            KeyErrorKind::IllegalLiteralCharacter,
            format!("route key `{key}` has `{bad}` in the segment `{piece}`"),
            "literal segments may use letters, digits, `.`, `_`, `:` and `-`",
        ));
    }
    Ok(Segment::Literal(piece.to_owned()))
}

/// Greedy variables come last and once; no two variables share a name.
fn check_variables(key: &str, segments: &[Segment]) -> Result<(), KeyError> {
    let greedy = segments.iter().filter(|s| matches!(s, Segment::Greedy(_))).count();
    if greedy > 1 {
        return Err(KeyError::new(
            KeyErrorKind::MultipleGreedy,
            format!("route key `{key}` has {greedy} greedy variables"),
            "keep one greedy variable, as the last segment",
        ));
    }
    if segments[..segments.len() - 1].iter().any(|s| matches!(s, Segment::Greedy(_))) {
        return Err(KeyError::new(
            KeyErrorKind::GreedyNotLast,
            format!("route key `{key}` has a greedy variable before its last segment"),
            "a greedy variable takes the rest of the path: make it the last segment",
        ));
    }

    let mut names: Vec<&str> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Var(n) | Segment::Greedy(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(KeyError::new(
            KeyErrorKind::DuplicateVariable,
            format!("route key `{key}` names two variables `{}`", pair[0]),
            "give each variable its own name",
        ));
    }
    Ok(())
}

/// True when API Gateway would take `a` and `b` for one route: equal keys, or keys that differ
/// only in a parameter's name (`GET /a/{x}` and `GET /a/{y}`).
pub fn same_route(a: &RouteKey, b: &RouteKey) -> bool {
    a.shape() == b.shape()
}

/// Every pair `(i, j)`, `i < j`, of keys API Gateway would take for one route (a 409 at deploy):
/// equal keys, and keys that differ only in a parameter's name (`/a/{x}` and `/a/{y}`).
pub fn duplicate_keys(keys: &[RouteKey]) -> Vec<(usize, usize)> {
    let shapes: Vec<RouteKey> = keys.iter().map(RouteKey::shape).collect();
    let mut pairs = Vec::new();
    for (i, a) in shapes.iter().enumerate() {
        for (j, b) in shapes.iter().enumerate().skip(i + 1) {
            if a == b {
                pairs.push((i, j));
            }
        }
    }
    pairs
}
