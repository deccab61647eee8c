//! S3 servers and proxies shared by the tests of this binary, and helpers
//! for requests, recorded S3 traffic and metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::common::fixtures::{self, Fixture, Fixtures, LARGE_SEED, LARGE_SIZE, keys};
use crate::common::proxy::Proxy;
use crate::common::raw_http::build_request;
use crate::common::{PutOptions, RawConnection, RawResponse, RecordedRequest, S3Backend, S3Server, object_path};

/// Key read by the proxy's readiness probe in the background.
pub const PROBE_KEY: &str = "s3-proxy-readiness-probe";

/// Default Cache-Control of 200, 206 and 304 responses.
pub const CACHE_CONTROL: &str = "public, max-age=300";
/// Default Cache-Control of 404 responses.
pub const CACHE_CONTROL_NOT_FOUND: &str = "public, max-age=10";
/// Content-Security-Policy of SVG images.
pub const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; sandbox";
/// Content-Security-Policy of downloads and of the proxy's own responses.
pub const LOCKED_CSP: &str = "default-src 'none'; sandbox";

/// Objects stored on [`small_site`] in addition to the harness fixtures.
pub mod extra_keys {
    /// `application/xml`.
    pub const XML: &str = "prod/6/67/Feed.xml";
    /// `application/xhtml+xml`.
    pub const XHTML: &str = "prod/6/68/Page.xhtml";
    /// `text/javascript`.
    pub const JAVASCRIPT: &str = "prod/6/69/Script.js";
    /// `text/html` stored with `Content-Disposition: inline; filename="Named.html"`.
    pub const NAMED_HTML: &str = "prod/6/6a/Named.html";
    /// `image/png` stored with `Content-Disposition: inline; filename="Named.png"`.
    pub const NAMED_PNG: &str = "prod/6/6b/Named.png";
    /// A media type the proxy does not know, `application/x-custom`.
    pub const UNKNOWN: &str = "prod/6/6c/Blob.custom";
    /// JPEG stored as `binary/octet-stream`, as some copy tools do.
    pub const GENERIC_JPEG: &str = "prod/7/78/Copied.jpg";
    /// SVG with a script, stored as `application/octet-stream`.
    pub const GENERIC_SVG: &str = "prod/7/79/Copied.svg";
}

/// Request headers as name and value pairs.
pub type HeaderList<'a> = Vec<(&'a str, &'a str)>;

/// Starts the proxy in-process with 8 workers and error-level logs, plus
/// `extra_env`, which may replace either setting.
///
/// The log level is a process-wide setting of the library, so every
/// in-process proxy of this binary uses the same one.
pub fn start_proxy(backend: &impl S3Backend, extra_env: &[(&str, &str)]) -> Proxy {
    let mut env = vec![("PROXY_WORKERS", "8"), ("PROXY_LOG_LEVEL", "error")];
    env.extend_from_slice(extra_env);
    Proxy::start(backend, &env)
}

/// An S3 server with seeded objects and a proxy in front of it, kept for the
/// whole test run. Tests on a site only read, so they may run in parallel.
pub struct Site {
    pub s3: S3Server,
    pub fixtures: Fixtures,
    // The proxy is not `Sync`, so the mutex lets the site live in a static.
    _proxy: Mutex<Proxy>,
    addr: SocketAddr,
}

impl Site {
    fn new(s3: S3Server, items: Vec<Fixture>) -> Site {
        let fixtures = fixtures::seed(&s3, items);
        let proxy = start_proxy(&s3, &[]);
        let addr = proxy.addr();
        Site {
            s3,
            fixtures,
            _proxy: Mutex::new(proxy),
            addr,
        }
    }

    /// Address of the proxy's public listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn fixture(&self, key: &str) -> &Fixture {
        self.fixtures.get(key)
    }
}

/// Builds a fixture that is not private and has no other stored headers.
pub fn fixture(key: &str, bytes: Vec<u8>, content_type: Option<&'static str>) -> Fixture {
    Fixture {
        key: key.to_owned(),
        bytes,
        content_type,
        content_encoding: None,
        content_disposition: None,
        metadata: Vec::new(),
        private: false,
    }
}

fn extra_fixtures() -> Vec<Fixture> {
    let mut named_html = fixture(
        extra_keys::NAMED_HTML,
        fixtures::html_with_script(),
        Some("text/html; charset=utf-8"),
    );
    named_html.content_disposition = Some("inline; filename=\"Named.html\"");
    let mut named_png = fixture(extra_keys::NAMED_PNG, fixtures::png(5, 5), Some("image/png"));
    named_png.content_disposition = Some("inline; filename=\"Named.png\"");
    vec![
        fixture(
            extra_keys::XML,
            b"<?xml version=\"1.0\"?><feed><script>alert(1)</script></feed>\n".to_vec(),
            Some("application/xml"),
        ),
        fixture(
            extra_keys::XHTML,
            b"<html xmlns=\"http://www.w3.org/1999/xhtml\"><body>x</body></html>\n".to_vec(),
            Some("application/xhtml+xml"),
        ),
        fixture(
            extra_keys::JAVASCRIPT,
            b"alert(document.cookie);\n".to_vec(),
            Some("text/javascript"),
        ),
        named_html,
        named_png,
        fixture(
            extra_keys::UNKNOWN,
            b"custom bytes".to_vec(),
            Some("application/x-custom"),
        ),
        fixture(extra_keys::GENERIC_JPEG, fixtures::jpeg(), Some("binary/octet-stream")),
        fixture(
            extra_keys::GENERIC_SVG,
            fixtures::svg_with_script(),
            Some("application/octet-stream"),
        ),
    ]
}

/// Plain s3s-fs (it ignores conditional headers) with every fixture except
/// the 20 MiB object, plus the objects of [`extra_keys`].
pub fn small_site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let mut items = fixtures::small_fixtures();
        items.extend(extra_fixtures());
        Site::new(S3Server::start(), items)
    })
}

/// s3s-fs that responds to conditional requests with 304 and 412 as S3 does,
/// with the PNG, WebM and empty fixtures.
pub fn conditional_site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let items = fixtures::small_fixtures()
            .into_iter()
            .filter(|item| [keys::PNG, keys::WEBM, keys::EMPTY].contains(&item.key.as_str()))
            .collect();
        Site::new(S3Server::start_conditional(), items)
    })
}

/// Plain s3s-fs with only the 20 MiB object.
pub fn large_site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let large = fixture(
            keys::LARGE,
            fixtures::pattern_bytes(LARGE_SIZE, LARGE_SEED),
            Some("application/octet-stream"),
        );
        Site::new(S3Server::start(), vec![large])
    })
}

/// Stores `bytes` under `key` with only a Content-Type.
pub fn put(s3: &S3Server, key: &str, bytes: &[u8], content_type: &str) -> String {
    s3.put(key, bytes, &PutOptions::content_type(content_type))
}

/// Returns every request S3 received except those of the readiness probe.
pub fn object_requests(s3: &S3Server) -> Vec<RecordedRequest> {
    s3.recent_requests()
        .into_iter()
        .filter(|request| !request.path.contains(PROBE_KEY))
        .collect()
}

/// Returns the requests S3 received for `key`.
pub fn requests_for_key(s3: &S3Server, key: &str) -> Vec<RecordedRequest> {
    let path = object_path(s3.bucket(), key);
    s3.recent_requests()
        .into_iter()
        .filter(|request| request.path == path)
        .collect()
}

/// Percent-encodes `key` as little as a URL path allows: unreserved
/// characters, sub-delimiters, `:`, `@` and `/` stay literal.
pub fn encode_path_minimally(key: &str) -> String {
    let mut encoded = String::from("/");
    for &byte in key.as_bytes() {
        let literal = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if literal {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Sends one request with `Connection: close` and reads its response.
/// Returns the response and whether the server then closed the connection
/// without sending another byte.
pub fn exchange_then_closed(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (RawResponse, bool) {
    let mut connection = RawConnection::connect(addr, Duration::from_secs(10)).expect("connect to the proxy");
    connection
        .send(build_request(addr, method, target, headers).as_bytes())
        .expect("send the request");
    let response = connection
        .read_response(method == "HEAD")
        .unwrap_or_else(|err| panic!("{method} {target}: {err}"));
    let closed = connection.is_closed_by_peer(Duration::from_secs(2));
    (response, closed)
}

/// Returns the response headers with lower-case names, sorted, without
/// the names in `skipped`.
pub fn headers_except(response: &RawResponse, skipped: &[&str]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .filter(|(name, _)| !skipped.contains(&name.as_str()))
        .collect();
    headers.sort();
    headers
}

/// Reports whether `value` is a 32-digit lower-case hex request id.
pub fn is_generated_request_id(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Samples of a Prometheus text exposition, keyed by the series name with
/// its labels, such as `s3proxy_http_requests_total{method="GET",status_class="2xx"}`.
pub type Samples = BTreeMap<String, f64>;

/// Reads `/metrics` from the admin listener at `admin`.
pub fn scrape(admin: SocketAddr) -> Samples {
    let response = crate::common::get(admin, "/metrics", &[]);
    assert_eq!(response.status, 200, "GET /metrics: {}", response.body_text());
    response
        .body_text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Reads `/metrics` once no request is in flight. The proxy records a
/// request after its last byte is written, so a client can see the response
/// shortly before the counters move.
pub fn scrape_settled(admin: SocketAddr) -> Samples {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut previous: Option<Samples> = None;
    loop {
        let samples = scrape(admin);
        let in_flight = samples.get("s3proxy_http_requests_in_flight").copied();
        // Settled: nothing in flight, and the request counters equal those
        // of the scrape before, so a request whose response the client
        // already has is counted.
        let counters = |s: &Samples| -> Vec<(String, f64)> {
            s.iter()
                .filter(|(name, _)| name.starts_with("s3proxy_http_requests_total"))
                .map(|(name, value)| (name.clone(), *value))
                .collect()
        };
        let stable = previous.as_ref().is_some_and(|p| counters(p) == counters(&samples));
        if in_flight == Some(0.0) && stable {
            return samples;
        }
        previous = Some(samples);
        assert!(
            std::time::Instant::now() < deadline,
            "requests still in flight: {in_flight:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Returns how much `series` grew from `before` to `after`. A missing
/// series counts as 0.
pub fn delta(before: &Samples, after: &Samples, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}
