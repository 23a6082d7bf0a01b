//! specgen compiles a routing spec into a Pulumi program, OpenAPI documents and a Lambda router.
//!
//! The pipeline runs in stages, one module each: [`spec`] reads the YAML as written, [`model`]
//! resolves it into URLs and routes derived once, [`check`] proves the guarantees on that model,
//! [`render`] turns the model into files in memory, and [`output`] compares them with
//! `generated/` or writes them. [`engine`] is API Gateway's route selection, which every check
//! shares, and [`lint`], [`assertions`] and [`explain`] build on it. [`probe`] checks a running
//! deployment against the model, and [`serve`] plays a local environment as API Gateway would,
//! with the same engine. [`run`] ties the stages together for the command line.

pub mod assertions;
pub mod check;
pub mod diag;
pub mod engine;
pub mod explain;
pub mod lint;
pub mod model;
pub mod output;
pub mod probe;
pub mod render;
pub mod routeset;
pub mod run;
pub mod serve;
pub mod spec;
#[cfg(feature = "unchecked")]
pub mod unchecked;
pub mod url;
