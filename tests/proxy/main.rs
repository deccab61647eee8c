//! Integration tests of the proxy over real HTTP, against s3s-fs (a real S3
//! server that checks SigV4 signatures) and, for faults a real server cannot
//! produce, the scripted fake S3.
//!
//! All modules build into one test binary, so the harness and the proxy
//! library compile once.

#[path = "../common/mod.rs"]
mod common;

mod support;

mod conditional;
mod errors;
mod headers;
mod lifecycle;
mod logs;
mod metrics;
mod objects;
mod paths;
mod ranges;
mod robustness;
