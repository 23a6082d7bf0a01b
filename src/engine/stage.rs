//! Stage and custom-domain entry (reference row 1 and section 3): the path a route table sees.

use super::rule::Rule;

/// How a request reaches the API: its own endpoint with one deployed stage, or a custom domain
/// through one API mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `https://{api-id}.execute-api.{region}.amazonaws.com`, serving one stage: `None` is the
    /// `$default` stage, at the root; a named stage is the first segment of every URL.
    ApiEndpoint { stage: Option<String> },
    /// A custom domain whose API mapping has this key (`""` for the empty key, or `v1/orders`).
    /// Requests through a custom domain skip stage selection.
    CustomDomain { mapping_key: String },
}

/// Why a request through an [`Entry`] never reaches the API's route table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotServed {
    /// The first segment of the path is not the deployed stage, so the request is for the
    /// `$default` stage, which is not deployed: 404.
    #[error(
        "`{path}` does not start with the stage `/{stage}`, and no `$default` stage is deployed \
         to take it: 404"
    )]
    OtherStage { stage: String, path: String },
    /// The path is not under the API mapping's key, so the mapping does not take it.
    #[error("`{path}` is not under the API mapping key `{mapping_key}`")]
    MappingKeyNotPrefix { mapping_key: String, path: String },
}

impl NotServed {
    /// The row of reference section 1 behind the refusal, if one is.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            NotServed::OtherStage { .. } => Some(Rule::StageFirst),
            NotServed::MappingKeyNotPrefix { .. } => None,
        }
    }
}

/// The path the route table sees for a request to `path` through `entry`, or why the request
/// never gets there.
///
/// A named stage and a mapping key are cut off as whole leading segments, compared
/// case-sensitively (row 13's assumption). What is left of a bare `/prod` or `/v1`, or of
/// `/prod/`, is read as the root `/`: section 3 reports an empty `rawPath` for the bare key and
/// says to treat `""` as `/`; that `/prod/` also reaches `/` is an assumption of this function.
pub fn strip_entry(entry: &Entry, path: &str) -> Result<String, NotServed> {
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };

    let prefix = match entry {
        Entry::ApiEndpoint { stage: None } => return Ok(path),
        Entry::ApiEndpoint { stage: Some(stage) } if stage == "$default" => return Ok(path),
        Entry::ApiEndpoint { stage: Some(stage) } => stage.as_str(),
        Entry::CustomDomain { mapping_key } => mapping_key.trim_matches('/'),
    };
    if prefix.is_empty() {
        return Ok(path);
    }

    match strip_segments(&path, prefix) {
        Some(rest) if rest.is_empty() || rest == "/" => Ok("/".to_owned()),
        Some(rest) => Ok(rest.to_owned()),
        None => Err(match entry {
            Entry::ApiEndpoint { .. } => NotServed::OtherStage { stage: prefix.to_owned(), path },
            Entry::CustomDomain { .. } => {
                NotServed::MappingKeyNotPrefix { mapping_key: prefix.to_owned(), path }
            }
        }),
    }
}

/// `path` without the leading segments `/{prefix}`, or `None` when they are not its start
/// (`/prodx` is not under `/prod`).
fn strip_segments<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix('/')?.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}
