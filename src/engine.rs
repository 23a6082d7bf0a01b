//! API Gateway's route selection for HTTP APIs, as a pure function the checks can ask.
//!
//! The engine answers one question: given one stage's route keys and a request, which route
//! takes it, by which rules of reference section 1, and on which of its `[?]` rows the answer
//! rests. [`RouteKey::parse`] holds section 2's rules for keys, [`select`] the ranking within a
//! stage, and [`strip_entry`] the stage or custom-domain prefix cut before it (row 1, section 3).
//! No emulator is faithful (the reference lists how SAM, serverless-offline and the .NET tool
//! differ), so this one is written from the reference alone and tested against a golden table
//! whose rows carry the reference's tags.
//!
//! The `[?]` rows come in two kinds and the engine treats them as the reference says. Rows on
//! how a request is read (10, 11, 13) are assumed as written, and [`Selection::assumptions`]
//! names each one an answer depends on. Row 14, precedence between two matching routes, is not
//! guessed silently: the engine still picks a winner (path specificity first) so every answer is
//! deterministic, but sets [`Selection::ambiguous`] so the checks can lint the table.

mod key;
mod rule;
mod select;
mod stage;

pub use key::{KeyError, KeyErrorKind, Method, RouteKey, Segment, duplicate_keys, same_route};
pub use rule::Rule;
pub use select::{Selection, Step, select};
pub use stage::{Entry, NotServed, strip_entry};

/// Routes per API; AWS raises it on request.
pub const MAX_ROUTES: usize = 300;

/// Integrations per API; AWS does not raise it, so routes share integrations.
pub const MAX_INTEGRATIONS: usize = 300;
