//! The S3 client: one keep-alive ureq agent, requests signed with SigV4.
//!
//! Requests are path-style (`/bucket/key`). The key is encoded once by
//! [`encode_key`], and that exact string is both signed and sent, so the
//! canonical URI always matches the request line.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::Config;
use crate::key::encode_key;

/// The S3 operations the proxy makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    GetObject,
    HeadObject,
    /// The readiness probe: a one-byte GetObject of a key that need not
    /// exist. A GET, because only a GET's error response names the error code.
    Probe,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::Probe => "Probe",
        }
    }

    fn method(self) -> Method {
        match self {
            Operation::GetObject | Operation::Probe => Method::GET,
            Operation::HeadObject => Method::HEAD,
        }
    }
}

/// An S3 response with status and headers. The caller reads the body.
pub struct S3Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: ureq::Body,
    /// Time from sending the request to receiving the response headers.
    pub duration: Duration,
    /// Whether the call was repeated after a dropped keep-alive connection.
    pub retried: bool,
}

impl S3Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads and drops the rest of a small body, so that ureq returns the
    /// connection to its pool (it does so only once a read reaches the end).
    /// A body over 64 KiB is left unread; its connection is then closed.
    pub fn discard(&mut self) {
        let mut reader = self.body.as_reader().take(64 * 1024);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    }

    /// Reads S3's error document and returns its `<Code>`.
    ///
    /// HEAD responses have no body; for them the code is `None`. The read is
    /// capped, so a misbehaving server cannot make the proxy buffer much.
    pub fn take_error_code(&mut self) -> Option<String> {
        let mut text = String::new();
        let reader = self.body.as_reader();
        reader.take(64 * 1024).read_to_string(&mut text).ok()?;
        xml_element(&text, "Code").map(str::to_string)
    }
}

/// Returns the text of the first `<name>…</name>` element.
fn xml_element<'a>(document: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = document.find(&open)? + open.len();
    let length = document[start..].find(&close)?;
    let value = document[start..start + length].trim();
    // An S3 error code is a short CamelCase word; anything else is not one.
    let plausible =
        !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    plausible.then_some(value)
}

/// S3 error codes that mean the proxy's own setup is wrong (credentials,
/// bucket, region or clock): an operator must act.
pub const SETUP_ERRORS: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "NotSignedUp",
    "RequestTimeTooSkewed",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
    "NoSuchBucket",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidBucketName",
    "PermanentRedirect",
];

/// Returns the metrics outcome for an S3 status and error code.
pub fn outcome(status: u16, code: Option<&str>) -> &'static str {
    let setup_error = code.is_some_and(|c| SETUP_ERRORS.contains(&c));
    match status {
        200..=299 => "ok",
        304 => "not_modified",
        412 => "precondition_failed",
        416 => "range_not_satisfiable",
        404 if !setup_error => "not_found",
        403 if !setup_error => "denied",
        429 | 503 => "throttled",
        500..=599 => "server_error",
        _ => "client_error",
    }
}

/// A call that produced no S3 response.
#[derive(Debug)]
pub struct CallError {
    pub kind: CallErrorKind,
    /// Description for the log; never contains credentials.
    pub detail: String,
    pub duration: Duration,
    pub retried: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallErrorKind {
    /// S3 did not respond within the configured timeouts.
    Timeout,
    /// No connection could be made (refused, DNS, TLS).
    Connect,
    /// The connection broke or S3 sent something that is not HTTP.
    Transport,
}

impl CallErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallErrorKind::Timeout => "timeout",
            CallErrorKind::Connect => "connection_error",
            CallErrorKind::Transport => "connection_error",
        }
    }
}

/// Client for one bucket.
pub struct S3Client {
    agent: ureq::Agent,
    /// An agent that keeps no idle connections, for the one retry: it must
    /// not pick another pooled connection that S3 may have closed too.
    fresh_agent: ureq::Agent,
    base_url: String,
    /// `/bucket`, encoded.
    bucket_path: String,
    region: String,
    identity: Identity,
}

impl S3Client {
    pub fn new(config: &Config) -> Result<S3Client, String> {
        let roots = match &config.s3_ca_file {
            Some(path) => Some(load_ca_bundle(path)?),
            None => None,
        };
        let pooled = build_agent(config, roots.clone(), true);
        let unpooled = build_agent(config, roots, false);

        let credentials = Credentials::new(
            config.access_key_id.clone(),
            config.secret_access_key.expose().to_string(),
            config.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "environment",
        );

        Ok(S3Client {
            agent: pooled,
            fresh_agent: unpooled,
            base_url: config.endpoint.base_url(),
            bucket_path: format!("/{}", encode_key(&config.bucket)),
            region: config.region.clone(),
            identity: credentials.into(),
        })
    }

    /// Sends one signed request for `key`, with extra request headers (Range,
    /// conditionals). A request that fails on a kept-alive connection before
    /// any response arrives is repeated once, on a fresh connection.
    pub fn call(
        &self,
        operation: Operation,
        key: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<S3Response, CallError> {
        let started = Instant::now();
        let first = self.call_once(&self.agent, operation, key, headers);
        let error = match first {
            Ok(response) => {
                return Ok(S3Response {
                    status: response.status().as_u16(),
                    duration: started.elapsed(),
                    retried: false,
                    headers: response.headers().clone(),
                    body: response.into_body(),
                });
            }
            Err(error) => error,
        };

        if !is_retryable(&error) {
            return Err(call_error(&error, started.elapsed(), false));
        }
        match self.call_once(&self.fresh_agent, operation, key, headers) {
            Ok(response) => Ok(S3Response {
                status: response.status().as_u16(),
                duration: started.elapsed(),
                retried: true,
                headers: response.headers().clone(),
                body: response.into_body(),
            }),
            Err(error) => Err(call_error(&error, started.elapsed(), true)),
        }
    }

    fn call_once(
        &self,
        agent: &ureq::Agent,
        operation: Operation,
        key: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .signed_request(operation.method(), key, headers, SystemTime::now())
            .map_err(|detail| ureq::Error::Other(detail.into()))?;
        agent.run(request)
    }

    /// Builds the signed request. Public for tests of the signing inputs.
    pub fn signed_request(
        &self,
        method: Method,
        key: &str,
        headers: &[(HeaderName, HeaderValue)],
        time: SystemTime,
    ) -> Result<http::Request<()>, String> {
        let uri = format!("{}{}/{}", self.base_url, self.bucket_path, encode_key(key));
        let mut builder = http::Request::builder().method(method.clone()).uri(&uri);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let mut request = builder.body(()).map_err(|e| format!("cannot build S3 request: {e}"))?;

        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;

        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot build signing parameters: {e}"))?
            .into();

        let signed_headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(method.as_str(), uri.as_str(), signed_headers, SignableBody::Bytes(&[]))
            .map_err(|e| format!("cannot sign S3 request: {e}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("cannot sign S3 request: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

/// Builds a ureq agent for S3. `pooled` keeps idle connections for reuse.
fn build_agent(config: &Config, roots: Option<ureq::tls::RootCerts>, pooled: bool) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(roots) = roots {
        tls = tls.root_certs(roots);
    }
    let idle_connections = if pooled { config.workers.max(4) * 2 } else { 0 };
    ureq::Agent::config_builder()
        // 3xx, 4xx and 5xx are responses to pass on, not transport errors.
        .http_status_as_error(false)
        .max_redirects(0)
        .no_delay(true)
        .timeout_connect(Some(config.s3_connect_timeout))
        .timeout_send_request(Some(config.s3_response_timeout))
        .timeout_recv_response(Some(config.s3_response_timeout))
        // The body of a large video may take long to stream to a slow
        // client, so the body has no total deadline, only a per-read one.
        .timeout_recv_body(None)
        .timeout_per_read(Some(config.s3_read_timeout))
        .max_idle_connections(idle_connections)
        .max_idle_connections_per_host(idle_connections)
        // S3 servers close idle connections after a timeout of their own. A
        // short idle age makes reusing an already closed one, and the retry
        // that follows, rare.
        .max_idle_age(Duration::from_secs(4))
        .user_agent(concat!("s3-proxy/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls.build())
        .build()
        .into()
}

fn load_ca_bundle(path: &std::path::Path) -> Result<ureq::tls::RootCerts, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read PROXY_S3_CA_FILE {}: {e}", path.display()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(e) => return Err(format!("cannot parse PROXY_S3_CA_FILE {}: {e}", path.display())),
        }
    }
    if certificates.is_empty() {
        return Err(format!(
            "PROXY_S3_CA_FILE {} holds no PEM certificate; expected one or more BEGIN CERTIFICATE blocks",
            path.display()
        ));
    }
    Ok(ureq::tls::RootCerts::Specific(Arc::new(certificates)))
}

/// Reports whether the error may come from a kept-alive connection that S3
/// closed while it was idle. Timeouts are not repeated: that would double
/// the wait.
fn is_retryable(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

fn call_error(error: &ureq::Error, duration: Duration, retried: bool) -> CallError {
    let kind = match error {
        ureq::Error::Timeout(_) => CallErrorKind::Timeout,
        ureq::Error::Io(e)
            if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            CallErrorKind::Timeout
        }
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
            CallErrorKind::Connect
        }
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => CallErrorKind::Connect,
        _ => CallErrorKind::Transport,
    };
    CallError {
        kind,
        detail: error.to_string(),
        duration,
        retried,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn client() -> S3Client {
        let vars = HashMap::from([
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_REGION", "default"),
            ("S3_BUCKET_NAME", "wiki-media"),
            ("S3_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("S3_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ]);
        let config = Config::from_lookup(|name| vars.get(name).map(|v| v.to_string())).unwrap();
        S3Client::new(&config).unwrap()
    }

    #[test]
    fn signed_path_is_sent_path() {
        let key = "prod/a/ab/C++ (OLPC)!'&$*,;=@:~ä日😀.png";
        let request = client()
            .signed_request(
                Method::GET,
                key,
                &[],
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
            .unwrap();
        let expected =
            "/wiki-media/prod/a/ab/C%2B%2B%20%28OLPC%29%21%27%26%24%2A%2C%3B%3D%40%3A~%C3%A4%E6%97%A5%F0%9F%98%80.png";
        assert_eq!(request.uri().path(), expected);
        assert_eq!(request.uri().query(), None);
    }

    #[test]
    fn signature_headers_present() {
        let range = (http::header::RANGE, HeaderValue::from_static("bytes=0-9"));
        let request = client()
            .signed_request(
                Method::GET,
                "a.png",
                &[range],
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
            .unwrap();
        let headers = request.headers();
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/default/s3/aws4_request"));
        assert!(
            authorization.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"),
            "{authorization}"
        );
        assert!(!authorization.contains("wJalrXUtnFEMI"));
        assert_eq!(headers["x-amz-date"], "20231114T221320Z");
        assert_eq!(
            headers["x-amz-content-sha256"],
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn outcomes_classify() {
        let cases = [
            (200, None, "ok"),
            (206, None, "ok"),
            (304, None, "not_modified"),
            (404, Some("NoSuchKey"), "not_found"),
            (404, Some("NoSuchBucket"), "client_error"),
            (403, Some("AccessDenied"), "denied"),
            (403, None, "denied"),
            (403, Some("SignatureDoesNotMatch"), "client_error"),
            (403, Some("NotSignedUp"), "client_error"),
            (400, Some("InvalidArgument"), "client_error"),
            (503, Some("SlowDown"), "throttled"),
            (429, None, "throttled"),
            (500, None, "server_error"),
        ];
        for (status, code, expected) in cases {
            assert_eq!(outcome(status, code), expected, "{status} {code:?}");
        }
    }

    #[test]
    fn error_code_extraction() {
        let document = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>";
        assert_eq!(xml_element(document, "Code"), Some("NoSuchKey"));
        assert_eq!(xml_element("<Error><Code></Code></Error>", "Code"), None);
        assert_eq!(xml_element("<html>no</html>", "Code"), None);
        assert_eq!(xml_element("<Code>has space</Code>", "Code"), None);
    }
}
