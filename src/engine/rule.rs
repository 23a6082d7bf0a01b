//! The rows of reference section 1 that the engine applies, each with how sure we are of it.

use std::fmt;

/// One row of reference section 1 (route selection), as a step of a [`Selection`] cites it.
///
/// Row 4 (AWS's worked example) and row 15 (`rawPath` is percent-decoded) are not rules the
/// engine decides by: the first is a golden test, the second says the path given to
/// [`select`] is the decoded one. Row 14 has two variants: the greedy case the reference names,
/// and the same question for exact routes, which the reference does not cover at all.
///
/// [`Selection`]: super::Selection
/// [`select`]: super::select
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// Row 1: the stage is chosen before any route.
    StageFirst,
    /// Row 2: an exact route beats a greedy one, which beats `$default`.
    Tiers,
    /// Row 2: nothing matches, so `404 {"message":"Not Found"}` (never 405).
    NotFound,
    /// Row 3: `ANY` stands only for the methods not otherwise defined on that route.
    AnyStandsForUndefined,
    /// Row 5: `$default` takes whatever no other route matches, `OPTIONS` preflights included.
    DefaultCatchesRest,
    /// Row 6: a literal segment beats a `{var}` at the same depth.
    LiteralOverVariable,
    /// Row 7: a method-specific route beats `ANY` on the same path.
    MethodOverAny,
    /// Row 8: between greedy routes the longer literal prefix wins.
    LongerGreedyPrefix,
    /// Row 9: an exact path with another method falls through to greedy routes and `$default`.
    MethodMismatchFallsThrough,
    /// Row 10, assumed: a greedy variable does not match an empty remainder (`/mcp/`, or `/`).
    /// The engine reads a `{var}` as never matching an empty segment (`/a//b`) in the same way.
    GreedyNeedsRemainder,
    /// Row 11, assumed: `/p/{proxy+}` does not match the bare `/p`.
    GreedyNotBare,
    /// Row 12: a trailing slash makes a different path.
    TrailingSlashDistinct,
    /// Row 13, assumed: paths (and methods) are compared case-sensitively.
    CaseSensitive,
    /// Row 14, undocumented: a method-specific greedy route with a shorter prefix against an
    /// `ANY` greedy route with a longer one.
    GreedyMethodVsPrefix,
    /// Row 14's question for exact routes, undocumented: a more literal `ANY` route against a
    /// method-specific route with a variable where the other has a literal.
    ExactMethodVsPath,
    /// Row 6's question when two routes cross, undocumented: each has a literal where the
    /// other has a variable, at different depths (`/a/{z}` against `/{x}/y`).
    CrossedSegments,
}

impl Rule {
    /// How sure the reference is of the row: `[doc]`, `[obs]` or `[?]`.
    pub fn tag(self) -> &'static str {
        match self {
            Rule::StageFirst
            | Rule::Tiers
            | Rule::NotFound
            | Rule::AnyStandsForUndefined
            | Rule::DefaultCatchesRest => "[doc]",
            Rule::LiteralOverVariable
            | Rule::MethodOverAny
            | Rule::LongerGreedyPrefix
            | Rule::MethodMismatchFallsThrough
            | Rule::TrailingSlashDistinct => "[obs]",
            Rule::GreedyNeedsRemainder
            | Rule::GreedyNotBare
            | Rule::CaseSensitive
            | Rule::GreedyMethodVsPrefix
            | Rule::ExactMethodVsPath
            | Rule::CrossedSegments => "[?]",
        }
    }

    /// The row of reference section 1.
    pub fn row(self) -> u8 {
        match self {
            Rule::StageFirst => 1,
            Rule::Tiers | Rule::NotFound => 2,
            Rule::AnyStandsForUndefined => 3,
            Rule::DefaultCatchesRest => 5,
            Rule::LiteralOverVariable | Rule::CrossedSegments => 6,
            Rule::MethodOverAny => 7,
            Rule::LongerGreedyPrefix => 8,
            Rule::MethodMismatchFallsThrough => 9,
            Rule::GreedyNeedsRemainder => 10,
            Rule::GreedyNotBare => 11,
            Rule::TrailingSlashDistinct => 12,
            Rule::CaseSensitive => 13,
            Rule::GreedyMethodVsPrefix | Rule::ExactMethodVsPath => 14,
        }
    }

    /// The rule in a few words, lowercase, for diagnostics and explanations.
    pub fn description(self) -> &'static str {
        match self {
            Rule::StageFirst => "the stage is chosen before any route",
            Rule::Tiers => "an exact route beats a greedy route, which beats $default",
            Rule::NotFound => "no route matches: 404 Not Found",
            Rule::AnyStandsForUndefined => "ANY stands for the methods not otherwise defined",
            Rule::DefaultCatchesRest => "$default takes every request no other route matches",
            Rule::LiteralOverVariable => "a literal segment beats a variable at the same depth",
            Rule::MethodOverAny => "a method-specific route beats ANY on the same path",
            Rule::LongerGreedyPrefix => "between greedy routes the longer prefix wins",
            Rule::MethodMismatchFallsThrough => "an exact path with another method falls through",
            Rule::GreedyNeedsRemainder => "a variable does not match an empty remainder (assumed)",
            Rule::GreedyNotBare => "a greedy route does not match its bare prefix (assumed)",
            Rule::TrailingSlashDistinct => "a trailing slash makes a different path",
            Rule::CaseSensitive => "paths are case-sensitive (assumed)",
            Rule::GreedyMethodVsPrefix => {
                "a method-specific greedy route against a longer ANY greedy route (undocumented)"
            }
            Rule::ExactMethodVsPath => {
                "a method-specific exact route against a more literal ANY route (undocumented)"
            }
            Rule::CrossedSegments => {
                "two routes each more literal at a different depth (undocumented)"
            }
        }
    }

    /// True for rows the reference marks `[?]`.
    pub fn is_assumed(self) -> bool {
        self.tag() == "[?]"
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} {}: {}", self.row(), self.tag(), self.description())
    }
}
