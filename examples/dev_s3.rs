//! A local S3 server for trying the proxy and for benchmarks: s3s-fs over a
//! temporary folder on 127.0.0.1, checking SigV4 signatures, with
//! TCP_NODELAY on every connection.
//!
//! Usage: `cargo run --example dev_s3 -- [--wiki] [--bench] [--conditional]`
//!
//! - `--wiki` stores sample MediaWiki files (images, SVG, video, private
//!   zones) under the top directory `prod`.
//! - `--bench` stores `bench/1k.bin` (1 KiB) and `bench/5m.bin` (5 MiB) and
//!   prints presigned GET URLs for them, so a load generator can read them
//!   straight from S3 for comparison.
//! - `--conditional` evaluates If-None-Match and the other conditions with
//!   304 and 412 as real S3 does; plain s3s-fs ignores them.
//!
//! It prints one JSON line with the endpoint, bucket, keys and URLs, then
//! serves until SIGTERM or SIGINT, when it deletes its folder and exits.

#[path = "../tests/common/harness.rs"]
mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use common::{PutOptions, S3Server, fixtures};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for arg in &args {
        if !matches!(arg.as_str(), "--wiki" | "--bench" | "--conditional") {
            eprintln!("unknown argument {arg:?}; expected --wiki, --bench or --conditional");
            std::process::exit(2);
        }
    }
    let wants = |flag: &str| args.iter().any(|a| a == flag);

    let server = if wants("--conditional") {
        S3Server::start_conditional()
    } else {
        S3Server::start()
    };

    let mut keys = Vec::new();
    if wants("--wiki") {
        let seeded = fixtures::seed_small(&server);
        keys.extend(seeded.iter().map(|f| f.key.to_string()));
    }
    let mut presigned = serde_json::Map::new();
    if wants("--bench") {
        for (key, size) in [("bench/1k.bin", 1024), ("bench/5m.bin", 5 * 1024 * 1024)] {
            let bytes = fixtures::pattern_bytes(size, 7);
            server.put(key, &bytes, &PutOptions::content_type("application/octet-stream"));
            presigned.insert(key.to_string(), presign(&server, key).into());
            keys.push(key.to_string());
        }
    }

    let summary = serde_json::json!({
        "endpoint": server.endpoint(),
        "bucket": server.bucket(),
        "region": server.region(),
        "access_key": server.access_key(),
        "secret_key": server.secret_key(),
        "root_dir": server.root_dir().display().to_string(),
        "keys": keys,
        "presigned": presigned,
    });
    println!("{summary}");

    // Serve until SIGTERM or SIGINT, then drop the server, which stops it
    // and deletes its temporary folder.
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .expect("register signal handlers");
    signals.forever().next();
    drop(server);
}

/// Returns a GET URL for `key` signed in its query string, valid for an hour.
fn presign(server: &S3Server, key: &str) -> String {
    let uri = format!("{}{}", server.endpoint(), common::object_path(server.bucket(), key));
    let identity: Identity = Credentials::new(server.access_key(), server.secret_key(), None, None, "dev").into();

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(3600));
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(server.region())
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing parameters are complete")
        .into();

    let signable = SignableRequest::new("GET", uri.as_str(), std::iter::empty(), SignableBody::UnsignedPayload)
        .expect("the URI is valid");
    let (instructions, _) = sign(signable, &params).expect("signing succeeds").into_parts();
    let mut request = http::Request::builder().uri(&uri).body(()).expect("the URI is valid");
    instructions.apply_to_request_http1x(&mut request);
    request.uri().to_string()
}
