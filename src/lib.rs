//! s3-proxy: a read-only HTTP gateway in front of a private S3 bucket.
//!
//! A browser requests `/prod/a/ab/File.png`, and the proxy maps the path to the
//! object key, refuses private keys without asking S3, signs one SigV4
//! request, and streams the object back with caching and security headers.

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod access;
pub mod admin;
pub mod config;
pub mod handler;
pub mod headers;
pub mod key;
pub mod log;
pub mod metrics;
pub mod preconditions;
pub mod response;
pub mod s3;
pub mod server;
