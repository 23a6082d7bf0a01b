//! The JSON Schema of the spec format, written once to `generated/specgen.schema.json` so that
//! editors can complete and check specs.

use super::{File, json_with_header};
use crate::spec::Spec;

pub const SCHEMA_FILE: &str = "specgen.schema.json";

pub fn schema_file() -> File {
    let schema = schemars::schema_for!(Spec);
    let value = serde_json::to_value(&schema).expect("the schema serializes");
    File { path: SCHEMA_FILE.into(), bytes: json_with_header(value, None) }
}
