//! One request, from the request line to the last body byte and the log line.
//!
//! The steps: method check, the proxy's own endpoint, key mapping, access
//! policy, one S3 call, status and header mapping, streaming, logging.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::access::Policy;
use crate::config::Config;
use crate::headers;
use crate::key;
use crate::log::{self, Level};
use crate::metrics::Metrics;
use crate::preconditions::{Outcome, Preconditions, normalize_etag, resolve_range};
use crate::response::{self, Head, TEXT_PLAIN};
use crate::s3::{self, CallError, CallErrorKind, Operation, S3Client, S3Response, SETUP_ERRORS};

/// Shared state of all workers.
pub struct Context {
    pub config: Arc<Config>,
    pub s3: Arc<S3Client>,
    pub policy: Policy,
    pub metrics: Arc<Metrics>,
    /// Set once shutdown begins: responses then carry `Connection: close`.
    pub draining: Arc<AtomicBool>,
    pub local_port: u16,
}

/// Facts about one request, gathered before the request is consumed.
struct Exchange {
    started: Instant,
    method: String,
    target: String,
    request_id: String,
    remote: Option<SocketAddr>,
    user_agent: Option<String>,
    close: bool,
    http11: bool,
    /// Declared request body length; 0 without a body.
    body_length: usize,
    headers: Vec<(String, String)>,
    log: Map<String, Value>,
    level: Level,
}

impl Exchange {
    /// Returns all values of a request header joined with `, `.
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// Reports whether the request declares a body, by length or chunked.
    fn has_body(&self) -> bool {
        self.body_length > 0 || self.header("transfer-encoding").is_some()
    }

    fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    fn note(&mut self, key: &str, value: impl Into<Value>) {
        self.log.insert(key.to_string(), value.into());
    }
}

/// The body to stream after the head.
enum Body {
    Bytes(std::io::Cursor<Vec<u8>>),
    S3(Box<dyn Read + Send>),
}

impl Read for Body {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Body::Bytes(bytes) => bytes.read(buffer),
            Body::S3(reader) => reader.read(buffer),
        }
    }
}

/// Handles one request to completion. Every failure becomes a response
/// and a log line, never a panic.
pub fn handle(context: &Context, request: tiny_http::Request) {
    context.metrics.request_started();
    let mut exchange = read_exchange(&request);
    if exchange.body_length > response::MAX_DRAINED_BODY {
        return drop_connection_with_body(context, exchange, request);
    }
    if exchange.has_body() {
        // No request here takes a body. Reading stops before the response,
        // so an unsent body (as with `Expect: 100-continue`) cannot hold
        // the worker, and the body is never read as a next request.
        if let Some(peer) = exchange.remote {
            response::stop_reading_connection(peer, context.local_port);
        }
        exchange.close = true;
    }

    let (mut head, mut body) = route(context, &mut exchange);
    head.header("X-Request-Id", exchange.request_id.clone());
    head.close = head.close || exchange.close || context.draining.load(Ordering::Relaxed);

    let remote = exchange.remote;
    let local_port = context.local_port;
    let abort = move || {
        if let Some(peer) = remote {
            response::shutdown_connection(peer, local_port);
        }
    };
    let sent = response::send(request, &head, &mut body, exchange.is_head(), &abort);

    if let Some(error) = &sent.source_error {
        context.metrics.s3_body_error();
        log::event(
            Level::Error,
            "S3 body failed while streaming; client connection closed",
            crate::fields! {
                "error" => error,
                "request_id" => exchange.request_id,
                "path" => exchange.target,
                "bytes" => sent.body_bytes,
            },
        );
    }
    if let Some(error) = &sent.client_error {
        context.metrics.client_write_error();
        exchange.note("client_error", error.as_str());
    }

    let duration = exchange.started.elapsed();
    context
        .metrics
        .request_finished(&exchange.method, head.status, duration, sent.body_bytes);
    write_access_log(exchange, head.status, sent.body_bytes, duration);
}

/// Closes the connection of a request whose declared body is still on the
/// socket, without a response, and logs it.
fn drop_connection_with_body(context: &Context, mut exchange: Exchange, request: tiny_http::Request) {
    response::discard_request_with_body(request, context.local_port);
    context.metrics.refused("request_body");
    exchange.note("refused", "request_body");
    exchange.note("error", "request body declared; connection closed without a response");
    let duration = exchange.started.elapsed();
    context.metrics.request_finished(&exchange.method, 400, duration, 0);
    write_access_log(exchange, 400, 0, duration);
}

fn read_exchange(request: &tiny_http::Request) -> Exchange {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };

    let request_id = find("x-request-id")
        .filter(|id| valid_request_id(id))
        .unwrap_or_else(new_request_id);
    let connection = find("connection").unwrap_or_default().to_ascii_lowercase();
    let http10 = *request.http_version() == tiny_http::HTTPVersion(1, 0);
    let close = connection.contains("close") || (http10 && !connection.contains("keep-alive"));

    Exchange {
        started: Instant::now(),
        method: request.method().as_str().to_string(),
        target: request.url().to_string(),
        request_id,
        remote: request.remote_addr().copied(),
        user_agent: find("user-agent"),
        close,
        http11: *request.http_version() == tiny_http::HTTPVersion(1, 1),
        body_length: request.body_length().unwrap_or(0),
        headers,
        log: Map::new(),
        level: Level::Info,
    }
}

/// Reports whether a Host value is a plausible `host[:port]`: empty (allowed
/// by RFC 9112 for a URI without authority), a name or IPv4 address, or a
/// bracketed IPv6 address, with no spaces, slashes, `@` or commas.
fn valid_host(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']' | b'%'))
}

/// Accepts a client's request id of up to 128 characters from a safe set, so
/// it can be echoed and logged without escaping problems.
fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='))
}

/// Returns a new 128-bit request id as 32 hex digits.
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        match from_os {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
            }
        }
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64 spreads the counter so ids do not look sequential.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let high = mix(seed.wrapping_add(count.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    let low = mix(high ^ seed.rotate_left(17) ^ count);
    format!("{high:016x}{low:016x}")
}

fn plain(status: u16, message: &str) -> (Head, Body) {
    let (head, bytes) = Head::generated(status, TEXT_PLAIN, &format!("{message}\n"), "no-store");
    (head, Body::Bytes(std::io::Cursor::new(bytes)))
}

fn route(context: &Context, exchange: &mut Exchange) -> (Head, Body) {
    if exchange.method != "GET" && exchange.method != "HEAD" {
        context.metrics.refused("bad_method");
        exchange.note("refused", "bad_method");
        let (mut head, body) = plain(405, "Method Not Allowed");
        head.header("Allow", "GET, HEAD");
        return (head, body);
    }

    // RFC 9112 section 3.2: an HTTP/1.1 request with no Host header, or with
    // more than one, gets 400.
    let hosts: Vec<&str> = exchange
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.as_str())
        .collect();
    let host_ok = match hosts.as_slice() {
        [] => !exchange.http11,
        [host] => valid_host(host),
        _ => false,
    };
    if !host_ok {
        context.metrics.refused("bad_request");
        exchange.note("refused", "bad_request");
        return plain(400, "Bad Request: expected exactly one valid Host header");
    }

    if exchange.has_body() {
        context.metrics.refused("request_body");
        exchange.note("refused", "request_body");
        return plain(400, "Bad Request: GET and HEAD take no request body");
    }

    let path = match key::target_path(&exchange.target) {
        Ok(path) => path.to_string(),
        Err(error) => return refuse_path(context, exchange, error),
    };
    if path == "/health" {
        exchange.level = Level::Debug;
        let (head, bytes) = Head::generated(200, "application/json", "{\"status\":\"ok\"}\n", "no-store");
        return (head, Body::Bytes(std::io::Cursor::new(bytes)));
    }

    let key = match key::decode_key(&path) {
        Ok(key) => key,
        Err(error) => return refuse_path(context, exchange, error),
    };
    if let Err(refusal) = context.policy.check(&key) {
        context.metrics.refused(refusal.reason());
        exchange.note("refused", refusal.reason());
        return plain(403, "Forbidden");
    }

    let preconditions = Preconditions::from_request(|name| exchange.header(name));
    fetch_object(context, exchange, &key, &preconditions)
}

fn refuse_path(context: &Context, exchange: &mut Exchange, error: key::PathError) -> (Head, Body) {
    let reason = if error == key::PathError::Directory {
        "directory"
    } else {
        "bad_path"
    };
    context.metrics.refused(reason);
    exchange.note("refused", reason);
    exchange.note("error", error.reason());
    match error.status() {
        404 => {
            let (mut head, body) = plain(404, "Not Found");
            set_header(&mut head, "Cache-Control", &context.config.cache_control_not_found);
            (head, body)
        }
        414 => plain(414, "URI Too Long: the object key is limited to 1024 bytes"),
        _ => plain(400, &format!("Bad Request: {}", error.reason())),
    }
}

fn set_header(head: &mut Head, name: &str, value: &str) {
    head.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    head.header(name, value);
}

/// Calls S3 and records the call in the metrics and the log fields.
fn call_s3(
    context: &Context,
    exchange: &mut Exchange,
    operation: Operation,
    key: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
) -> Result<S3Response, CallError> {
    let result = context.s3.call(operation, key, headers);
    match &result {
        Ok(response) => {
            exchange.note("s3_status", response.status);
            exchange.note("s3_duration_ms", millis(response.duration));
            if let Some(id) = response.header("x-amz-request-id") {
                exchange.note("s3_request_id", id);
            }
            if response.retried {
                exchange.note("s3_retried", true);
            }
        }
        Err(error) => {
            context
                .metrics
                .s3_call(operation.as_str(), error.kind.as_str(), error.duration, error.retried);
            exchange.note("s3_status", Value::Null);
            exchange.note("s3_duration_ms", millis(error.duration));
            exchange.note("s3_error", error.kind.as_str());
        }
    }
    result
}

fn fetch_object(context: &Context, exchange: &mut Exchange, key: &str, preconditions: &Preconditions) -> (Head, Body) {
    let mut operation = if exchange.is_head() {
        Operation::HeadObject
    } else {
        Operation::GetObject
    };
    let mut s3_headers = preconditions.s3_headers();
    let mut validators_fetched = false;
    let mut if_range_checked = false;

    // Usually one call. A second one follows only when S3 returned 304
    // without validators, or a partial response that If-Range rules out,
    // and a third when the object changed in between. Each happens once.
    for _ in 0..3 {
        let mut response = match call_s3(context, exchange, operation, key, &s3_headers) {
            Ok(response) => response,
            Err(error) => return transport_failure(exchange, operation, &error),
        };

        let status = response.status;
        let etag = response.header("etag").and_then(normalize_etag);
        let last_modified = response
            .header("last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok());

        if status == 304 && (etag.is_none() || last_modified.is_none()) && !validators_fetched {
            // Ceph RGW 16 returns 304 without ETag and Last-Modified, which
            // the client's cache needs. An unconditional HeadObject supplies
            // them, and the conditions are then evaluated here.
            context
                .metrics
                .s3_call(operation.as_str(), "not_modified", response.duration, response.retried);
            response.discard();
            validators_fetched = true;
            operation = Operation::HeadObject;
            s3_headers.clear();
            exchange.note("s3_validators", "fetched");
            continue;
        }
        if status == 416 && preconditions.has_if_range() && !if_range_checked {
            // A failed If-Range means the Range is ignored (RFC 9110 section
            // 13.1.5), so an unsatisfiable range must not end in 416 then.
            if_range_checked = true;
            if let Some(info) = object_info(context, key)
                && !preconditions.if_range_allows_partial(info.etag.as_deref(), info.last_modified)
            {
                response.discard();
                context.metrics.s3_call(
                    operation.as_str(),
                    "range_not_satisfiable",
                    response.duration,
                    response.retried,
                );
                exchange.note("if_range", "mismatch");
                s3_headers.retain(|(name, _)| name != http::header::RANGE);
                continue;
            }
        }
        if status != 200 && status != 206 {
            return map_s3_status(context, exchange, operation, key, preconditions, &mut response);
        }
        context
            .metrics
            .s3_call(operation.as_str(), "ok", response.duration, response.retried);

        match preconditions.evaluate(etag.as_deref(), last_modified) {
            Outcome::NotModified => {
                response.discard();
                context.metrics.conditional("not_modified");
                return not_modified(context, etag, last_modified);
            }
            Outcome::PreconditionFailed => {
                response.discard();
                context.metrics.conditional("precondition_failed");
                return plain(412, "Precondition Failed");
            }
            Outcome::Proceed => {}
        }

        if validators_fetched && !exchange.is_head() && operation == Operation::HeadObject {
            // The object changed after S3's 304: fetch it without conditions.
            response.discard();
            operation = Operation::GetObject;
            s3_headers = preconditions.range().map(range_header).into_iter().collect();
            continue;
        }
        if status == 206 && !if_range_checked && !preconditions.if_range_allows_partial(etag.as_deref(), last_modified)
        {
            // The object changed since the client's partial copy: send it whole.
            if_range_checked = true;
            response.discard();
            exchange.note("if_range", "mismatch");
            s3_headers.retain(|(name, _)| name != http::header::RANGE);
            continue;
        }
        if preconditions.is_conditional() {
            context.metrics.conditional("full");
        }
        return object_response(context, exchange, key, preconditions, response, etag, last_modified);
    }
    log::event(
        Level::Error,
        "object kept changing between S3 calls",
        crate::fields! {"request_id" => exchange.request_id},
    );
    plain(503, "Service Unavailable")
}

fn range_header(range: &str) -> (http::HeaderName, http::HeaderValue) {
    let value = http::HeaderValue::from_str(range).unwrap_or_else(|_| http::HeaderValue::from_static("bytes=0-"));
    (http::header::RANGE, value)
}

fn range_not_satisfiable(content_range: Option<String>) -> (Head, Body) {
    let (mut head, body) = plain(416, "Range Not Satisfiable");
    if let Some(range) = content_range {
        head.header("Content-Range", range);
    }
    (head, body)
}

fn not_modified(context: &Context, etag: Option<String>, last_modified: Option<SystemTime>) -> (Head, Body) {
    let mut head = Head::new(304);
    head.content_length = None;
    if let Some(etag) = etag {
        head.header("ETag", etag);
    }
    if let Some(time) = last_modified {
        head.header("Last-Modified", httpdate::fmt_http_date(time));
    }
    head.header("Cache-Control", context.config.cache_control.clone());
    (head, Body::Bytes(std::io::Cursor::new(Vec::new())))
}

/// Builds the 200 or 206 response from S3's headers and streams S3's body.
fn object_response(
    context: &Context,
    exchange: &mut Exchange,
    key: &str,
    preconditions: &Preconditions,
    mut response: S3Response,
    etag: Option<String>,
    last_modified: Option<SystemTime>,
) -> (Head, Body) {
    let mut status = response.status;
    // A response with Transfer-Encoding must not be framed by its
    // Content-Length (RFC 9112 section 6.3), so such a length is not trusted.
    let mut length = if response.header("transfer-encoding").is_some() {
        None
    } else {
        response
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let mut content_range = response.header("content-range").map(str::to_string);

    // S3 may return 200 to a ranged request: s3s-fs ignores Range on HEAD,
    // and some servers return 200 for a whole-object range. The client is
    // still owed what GET would give, so the range is resolved here: a HEAD
    // gets the partial or 416 headers, and a GET whose range covers the
    // whole object gets a 206. A GET for part of the object gets the whole
    // object with 200, which RFC 9110 allows when a range is ignored.
    if status == 200
        && let (Some(range), Some(total)) = (preconditions.range(), length)
        && preconditions.if_range_allows_partial(etag.as_deref(), last_modified)
    {
        match resolve_range(range, total) {
            Some((first, last)) if exchange.is_head() || (first == 0 && last + 1 == total) => {
                status = 206;
                length = Some(last - first + 1);
                content_range = Some(format!("bytes {first}-{last}/{total}"));
            }
            None if exchange.is_head() => {
                response.discard();
                return range_not_satisfiable(Some(format!("bytes */{total}")));
            }
            _ => {}
        }
    }

    let content_type = headers::content_type(response.header("content-type"), key);
    let treatment = headers::treatment(&content_type);

    let mut head = Head::new(status);
    head.content_length = length;
    head.header("Content-Type", content_type);
    if let Some(etag) = etag {
        head.header("ETag", etag);
    }
    if let Some(time) = last_modified {
        head.header("Last-Modified", httpdate::fmt_http_date(time));
    }
    head.header("Cache-Control", context.config.cache_control.clone());
    head.header("Accept-Ranges", "bytes");
    if let Some(range) = content_range {
        head.header("Content-Range", range);
    }
    for (lookup, name) in [
        ("content-encoding", "Content-Encoding"),
        ("content-language", "Content-Language"),
    ] {
        if let Some(value) = response.header(lookup) {
            head.header(name, value.to_string());
        }
    }
    if let Some(disposition) = headers::content_disposition(treatment, response.header("content-disposition")) {
        head.header("Content-Disposition", disposition);
    }
    if let Some(policy) = headers::content_security_policy(treatment) {
        head.header("Content-Security-Policy", policy);
    }
    if length.is_none() {
        // Without a length the body ends when the connection closes.
        head.close = true;
        exchange.note("s3_length", "missing");
    }

    let body = if exchange.is_head() {
        response.discard();
        Body::Bytes(std::io::Cursor::new(Vec::new()))
    } else {
        Body::S3(Box::new(response.body.into_reader()))
    };
    (head, body)
}

/// Maps an S3 status other than 200 and 206 to the client's response.
fn map_s3_status(
    context: &Context,
    exchange: &mut Exchange,
    operation: Operation,
    key: &str,
    preconditions: &Preconditions,
    response: &mut S3Response,
) -> (Head, Body) {
    let status = response.status;
    let mut code = response.take_error_code();
    if operation == Operation::HeadObject && status == 403 && code.is_none() {
        // HEAD responses carry no error document. A signed GET of one byte
        // distinguishes a missing key (AccessDenied) from a setup problem.
        code = diagnose_denied_head(context, key);
        exchange.note("s3_head_diagnosis", code.clone().unwrap_or_else(|| "unknown".into()));
    }
    if let Some(code) = &code {
        exchange.note("s3_error_code", code.as_str());
    }

    let is_setup_error = code.as_deref().is_some_and(|c| SETUP_ERRORS.contains(&c));
    let outcome = s3::outcome(status, code.as_deref());
    context
        .metrics
        .s3_call(operation.as_str(), outcome, response.duration, response.retried);

    match status {
        304 => {
            let etag = response.header("etag").and_then(normalize_etag);
            let modified = response
                .header("last-modified")
                .and_then(|v| httpdate::parse_http_date(v).ok());
            // If-Match comes before If-None-Match (RFC 9110 section 13.2.2).
            // A weak or listed If-Match is not sent to S3, so S3's 304 may
            // still have to become 412.
            if preconditions.evaluate(etag.as_deref(), modified) == Outcome::PreconditionFailed {
                context.metrics.conditional("precondition_failed");
                return plain(412, "Precondition Failed");
            }
            context.metrics.conditional("not_modified");
            return not_modified(context, etag, modified);
        }
        412 => {
            context.metrics.conditional("precondition_failed");
            return plain(412, "Precondition Failed");
        }
        416 => {
            // Preconditions come before Range (RFC 9110 section 13.2.2), but
            // a server that ignores them (s3s-fs) returns 416 first, and Ceph
            // RGW 16 sends no Content-Range. One HeadObject supplies both the
            // validators and the size.
            let mut content_range = response.header("content-range").map(str::to_string);
            if (preconditions.is_conditional() || content_range.is_none())
                && let Some(info) = object_info(context, key)
            {
                match preconditions.evaluate(info.etag.as_deref(), info.last_modified) {
                    Outcome::NotModified => {
                        context.metrics.conditional("not_modified");
                        return not_modified(context, info.etag, info.last_modified);
                    }
                    Outcome::PreconditionFailed => {
                        context.metrics.conditional("precondition_failed");
                        return plain(412, "Precondition Failed");
                    }
                    Outcome::Proceed => {}
                }
                if content_range.is_none() {
                    content_range = info.length.map(|size| format!("bytes */{size}"));
                }
            }
            return range_not_satisfiable(content_range);
        }
        _ => {}
    }

    let (mut head, body) = match outcome {
        "not_found" | "denied" => plain(404, "Not Found"),
        "throttled" => plain(503, "Service Unavailable"),
        _ => plain(502, "Bad Gateway"),
    };
    match head.status {
        404 => {
            set_header(&mut head, "Cache-Control", &context.config.cache_control_not_found);
            if status == 403 {
                log::event(
                    Level::Warn,
                    "S3 denied access; answered 404, since S3 denies missing keys to credentials without ListBucket",
                    crate::fields! {
                        "request_id" => exchange.request_id,
                        "s3_error_code" => code,
                    },
                );
            }
        }
        503 => {
            if let Some(retry_after) = response.header("retry-after").filter(|v| valid_retry_after(v)) {
                head.header("Retry-After", retry_after.to_string());
            }
        }
        _ => {}
    }
    if head.status == 502 || head.status == 503 {
        let msg = if is_setup_error {
            "S3 rejected the request because of the proxy's configuration (credentials, bucket, region or clock)"
        } else {
            "S3 returned an error"
        };
        log::event(
            Level::Error,
            msg,
            crate::fields! {
                "request_id" => exchange.request_id,
                "s3_status" => status,
                "s3_error_code" => code,
                "operation" => operation.as_str(),
            },
        );
    }
    (head, body)
}

fn valid_retry_after(value: &str) -> bool {
    let value = value.trim();
    (!value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
        || httpdate::parse_http_date(value).is_ok()
}

/// Validators and size of an object, from an unconditional HeadObject.
struct ObjectInfo {
    etag: Option<String>,
    last_modified: Option<SystemTime>,
    length: Option<u64>,
}

/// Returns the object's validators and size, or `None` when the HeadObject
/// fails or does not return 200.
fn object_info(context: &Context, key: &str) -> Option<ObjectInfo> {
    let mut response = match context.s3.call(Operation::HeadObject, key, &[]) {
        Ok(response) => response,
        Err(error) => {
            context.metrics.s3_call(
                Operation::HeadObject.as_str(),
                error.kind.as_str(),
                error.duration,
                error.retried,
            );
            return None;
        }
    };
    let outcome = s3::outcome(response.status, None);
    context.metrics.s3_call(
        Operation::HeadObject.as_str(),
        outcome,
        response.duration,
        response.retried,
    );
    response.discard();
    if response.status != 200 {
        return None;
    }
    Some(ObjectInfo {
        etag: response.header("etag").and_then(normalize_etag),
        last_modified: response
            .header("last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok()),
        length: response.header("content-length").and_then(|v| v.trim().parse().ok()),
    })
}

/// Makes a one-byte signed GET to learn the error code a HEAD could not
/// carry. Returns `None` if that call fails too or succeeds.
fn diagnose_denied_head(context: &Context, key: &str) -> Option<String> {
    let range = (http::header::RANGE, http::HeaderValue::from_static("bytes=0-0"));
    let mut response = match context.s3.call(Operation::GetObject, key, &[range]) {
        Ok(response) => response,
        Err(error) => {
            context.metrics.s3_call(
                Operation::GetObject.as_str(),
                error.kind.as_str(),
                error.duration,
                error.retried,
            );
            return None;
        }
    };
    let code = if response.status == 403 || response.status == 404 {
        response.take_error_code()
    } else {
        response.discard();
        None
    };
    let outcome = s3::outcome(response.status, code.as_deref());
    context.metrics.s3_call(
        Operation::GetObject.as_str(),
        outcome,
        response.duration,
        response.retried,
    );
    code
}

fn transport_failure(exchange: &mut Exchange, operation: Operation, error: &CallError) -> (Head, Body) {
    log::event(
        Level::Error,
        "S3 call failed",
        crate::fields! {
            "request_id" => exchange.request_id,
            "operation" => operation.as_str(),
            "error" => error.detail,
            "kind" => error.kind.as_str(),
            "retried" => error.retried,
        },
    );
    match error.kind {
        CallErrorKind::Timeout => plain(504, "Gateway Timeout"),
        CallErrorKind::Connect | CallErrorKind::Transport => plain(502, "Bad Gateway"),
    }
}

fn millis(duration: Duration) -> Value {
    json!((duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0)
}

fn write_access_log(exchange: Exchange, status: u16, bytes: u64, duration: Duration) {
    if !log::enabled(exchange.level) {
        return;
    }
    // The logged path is the raw target without its query.
    let path = exchange.target.split(['?', '#']).next().unwrap_or("");
    let mut fields = crate::fields! {
        "method" => loggable(&exchange.method, 32),
        "path" => loggable(path, 2048),
        "status" => status,
        "bytes" => bytes,
        "duration_ms" => millis(duration),
        "request_id" => exchange.request_id,
        "remote_addr" => exchange.remote.map(|a| a.to_string()),
        "user_agent" => exchange.user_agent.map(|ua| loggable(&ua, 512)),
    };
    for required in ["s3_status", "s3_duration_ms"] {
        fields.entry(required).or_insert(Value::Null);
    }
    fields.extend(exchange.log);
    log::event(exchange.level, "request", fields);
}

/// Caps client-supplied text at `max_chars` characters and replaces control
/// characters (DEL included, which JSON does not escape) with U+FFFD, so a
/// log line can neither grow without bound nor carry terminal escapes.
fn loggable(text: &str, max_chars: usize) -> String {
    text.chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_text_is_capped_and_clean() {
        assert_eq!(loggable("GET", 32), "GET");
        assert_eq!(loggable(&"A".repeat(100), 32).len(), 32);
        assert_eq!(loggable("a\u{7f}b\u{1b}[31m", 32), "a\u{fffd}b\u{fffd}[31m");
    }

    #[test]
    fn request_ids_are_unique_hex() {
        let first = new_request_id();
        let second = new_request_id();
        assert_ne!(first, second);
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn client_request_ids_are_checked() {
        assert!(valid_request_id("abc-123_X.y:z"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id("quote\"s"));
        assert!(!valid_request_id(&"a".repeat(129)));
    }

    #[test]
    fn retry_after_values() {
        assert!(valid_retry_after("5"));
        assert!(valid_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert!(!valid_retry_after("soon"));
        assert!(!valid_retry_after(""));
    }
}
