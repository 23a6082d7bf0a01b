//! Lints on the route table: behaviour API Gateway allows but that is rarely intended.
//!
//! FIXME: no lint is implemented yet; this module only defines the entry point that the
//! pipeline calls.

use crate::diag::Diagnostics;
use crate::model::Model;

/// Runs every lint on a resolved model. Findings are errors unless the spec acknowledges them.
pub fn lint(model: &Model) -> Diagnostics {
    let _ = model;
    Diagnostics::default()
}
