//! The harness without the proxy launcher, so that it compiles without the
//! proxy library. `tests/common/mod.rs` re-exports all of it and adds the
//! `proxy` module.

// Each test crate uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod conditional;
pub mod fault;
pub mod fixtures;
pub mod raw_http;
pub mod s3_server;
pub mod signing;

pub use conditional::ConditionalS3;
pub use fault::{AfterPartialBody, CannedResponse, ConnectionScript, FaultRequest, FaultS3, Step};
pub use fixtures::{Fixture, Fixtures, keys, seed, seed_all, seed_small};
pub use raw_http::{Framing, RawConnection, RawResponse, get, head, raw_request, request};
pub use s3_server::{PutOptions, RecordedRequest, S3Backend, S3Server};
pub use signing::{SignedResponse, SigningCredentials, encode_key_path, object_path, send_signed};
