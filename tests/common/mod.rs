//! Shared harness for the integration tests: a real S3 server (s3s-fs), a
//! scripted fake S3 for faults, file fixtures, a raw HTTP client, and
//! launchers for the proxy in-process and as a child process.
//!
//! Use it with `mod common;`. A test that must not depend on the proxy
//! library can load the rest alone with
//! `#[path = "common/harness.rs"] mod common;`.

// Each test crate uses a different part of the harness.
#![allow(dead_code, unused_imports)]

#[path = "harness.rs"]
mod harness;
pub mod proxy;

pub use harness::*;
