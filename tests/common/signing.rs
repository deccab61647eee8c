//! SigV4-signed S3 requests for seeding and checking the test servers.
//!
//! The signing settings are the ones S3 expects: the path is signed exactly as
//! sent (single percent-encoding, no path normalisation), and the payload hash
//! travels in `x-amz-content-sha256`.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4::SigningParams;

/// Access key, secret key and region used to sign a request.
#[derive(Clone, Debug)]
pub struct SigningCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// Status, headers and body of a response to a signed request.
#[derive(Clone, Debug)]
pub struct SignedResponse {
    pub status: u16,
    /// Header names in lower case, in the order received, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SignedResponse {
    /// Returns the first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns the body as text, replacing invalid UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes an object key for the URI path the way S3 canonicalises it:
/// `A-Za-z0-9-_.~` and `/` stay literal, every other byte of the UTF-8 form
/// becomes `%XX` with upper-case hex digits.
pub fn encode_key_path(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len() * 3);
    for &byte in key.as_bytes() {
        if is_unreserved(byte) || byte == b'/' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Percent-encodes a query-string name or value: like [`encode_key_path`],
/// but `/` is encoded too.
pub fn encode_query_component(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for &byte in value.as_bytes() {
        if is_unreserved(byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Builds the path-style request target `/<bucket>/<encoded key>`.
pub fn object_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", encode_key_path(key))
}

/// Signs a request with SigV4 and sends it with a fresh ureq agent.
///
/// `path_and_query` is sent and signed exactly as given, so it must already be
/// percent-encoded (see [`object_path`]). Every header in `headers` is signed.
/// Panics when the request cannot be signed or the connection fails, because
/// a test cannot continue without the server.
pub fn send_signed(
    endpoint: &str,
    credentials: &SigningCredentials,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> SignedResponse {
    let url = format!("{}{path_and_query}", endpoint.trim_end_matches('/'));
    let signed_headers = sign_headers(&url, credentials, method, headers, body);

    let mut builder = http::Request::builder().method(method).uri(&url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    for (name, value) in &signed_headers {
        builder = builder.header(name.as_str(), value.as_str());
    }

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections(0)
        .build()
        .into();

    // ureq 3 rejects a body on methods that carry none, so an empty body goes
    // out as `()`.
    let result = if body.is_empty() && method != "PUT" && method != "POST" {
        agent.run(builder.body(()).expect("valid request"))
    } else {
        agent.run(builder.body(body).expect("valid request"))
    };
    let mut response = result.unwrap_or_else(|err| panic!("signed {method} {url} failed: {err}"));

    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap_or_else(|err| panic!("reading the body of {method} {url} failed: {err}"))
    };
    SignedResponse { status, headers, body }
}

/// Returns the headers SigV4 adds (`authorization`, `x-amz-date`,
/// `x-amz-content-sha256`).
fn sign_headers(
    url: &str,
    credentials: &SigningCredentials,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(String, String)> {
    let identity = Credentials::new(
        &credentials.access_key,
        &credentials.secret_key,
        None,
        None,
        "test-harness",
    )
    .into();

    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;

    let params = SigningParams::builder()
        .identity(&identity)
        .region(&credentials.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("complete signing parameters")
        .into();

    let signable = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .unwrap_or_else(|err| panic!("cannot sign {method} {url}: {err}"));
    let (instructions, _signature) = sign(signable, &params)
        .unwrap_or_else(|err| panic!("signing {method} {url} failed: {err}"))
        .into_parts();
    let (new_headers, _params) = instructions.into_parts();
    new_headers
        .into_iter()
        .map(|header| (header.name().to_owned(), header.value().to_owned()))
        .collect()
}
