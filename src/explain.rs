//! `specgen explain`: which route API Gateway picks for one request, and why.
//!
//! FIXME: not implemented yet.
