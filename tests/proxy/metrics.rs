//! Prometheus metrics and readiness on the admin listener.
//!
//! Each test starts its own proxy, so that counter deltas count only its
//! own requests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::proxy::ProxyProcess;
use crate::common::{RawResponse, S3Server, get, keys, request};
use crate::support::{HeaderList, Samples, delta, put, scrape, scrape_settled, small_site, start_proxy};

fn http_requests(method: &str, class: &str) -> String {
    format!("s3proxy_http_requests_total{{method=\"{method}\",status_class=\"{class}\"}}")
}

fn duration_count(method: &str) -> String {
    format!("s3proxy_http_request_duration_seconds_count{{method=\"{method}\"}}")
}

fn s3_requests(operation: &str, outcome: &str) -> String {
    format!("s3proxy_s3_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}")
}

fn conditional(result: &str) -> String {
    format!("s3proxy_conditional_requests_total{{result=\"{result}\"}}")
}

fn refused(reason: &str) -> String {
    format!("s3proxy_refused_requests_total{{reason=\"{reason}\"}}")
}

const BODY_BYTES: &str = "s3proxy_http_response_body_bytes_total";

/// Asserts the growth of each series between two scrapes.
fn assert_deltas(before: &Samples, after: &Samples, expected: &[(String, f64)]) {
    for (series, value) in expected {
        assert_eq!(delta(before, after, series), *value, "{series}");
    }
}

/// Polls `path` on the admin listener until it responds with `status`.
fn wait_for_status(admin: SocketAddr, path: &str, status: u16, timeout: Duration) -> RawResponse {
    let deadline = Instant::now() + timeout;
    loop {
        let response = get(admin, path, &[]);
        if response.status == status {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still {} after {timeout:?}: {}",
            response.status,
            response.body_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn request_counters_by_status_class() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[]);
    let png = site.fixture(keys::PNG).url_path();
    let before = scrape_settled(proxy.admin_addr());
    let requests = [
        ("GET", png.as_str(), 200),
        ("GET", png.as_str(), 200),
        ("HEAD", png.as_str(), 200),
        ("GET", "/prod/missing.png", 404),
        ("GET", "/prod/deleted/x.png", 403),
        ("GET", "/prod/%zz", 400),
        ("PUT", png.as_str(), 405),
        ("HEAD", "/prod/missing.png", 404),
    ];
    for (method, target, status) in requests {
        let response = request(proxy.addr(), method, target, &[("Content-Length", "0")]);
        assert_eq!(response.status, status, "{method} {target}");
    }
    let after = scrape_settled(proxy.admin_addr());
    assert_deltas(
        &before,
        &after,
        &[
            (http_requests("GET", "2xx"), 2.0),
            (http_requests("GET", "4xx"), 3.0),
            (http_requests("HEAD", "2xx"), 1.0),
            (http_requests("HEAD", "4xx"), 1.0),
            (http_requests("other", "4xx"), 1.0),
            (http_requests("GET", "5xx"), 0.0),
            (duration_count("GET"), 5.0),
            (duration_count("HEAD"), 2.0),
            (duration_count("other"), 1.0),
        ],
    );
    assert_eq!(after.get("s3proxy_http_requests_in_flight"), Some(&0.0));
    assert_eq!(after.get("s3proxy_workers"), Some(&8.0));
}

#[test]
fn s3_outcomes_counted() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[("PROXY_READY_INTERVAL", "1m")]);
    let png = site.fixture(keys::PNG).url_path();
    let before = scrape_settled(proxy.admin_addr());
    for (method, target, status) in [
        ("GET", png.as_str(), 200),
        ("GET", "/prod/missing.png", 404),
        ("GET", "/prod/missing2.png", 404),
        ("HEAD", png.as_str(), 200),
        ("HEAD", "/prod/missing.png", 404),
    ] {
        assert_eq!(
            request(proxy.addr(), method, target, &[]).status,
            status,
            "{method} {target}"
        );
    }
    let after = scrape_settled(proxy.admin_addr());
    assert_deltas(
        &before,
        &after,
        &[
            (s3_requests("GetObject", "ok"), 1.0),
            (s3_requests("GetObject", "not_found"), 2.0),
            (s3_requests("HeadObject", "ok"), 1.0),
            (s3_requests("HeadObject", "not_found"), 1.0),
            (
                "s3proxy_s3_request_duration_seconds_count{operation=\"GetObject\"}".to_owned(),
                3.0,
            ),
            (
                "s3proxy_s3_request_duration_seconds_count{operation=\"HeadObject\"}".to_owned(),
                2.0,
            ),
        ],
    );
}

#[test]
fn conditional_results_counted() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[]);
    let png = site.fixture(keys::PNG).url_path();
    let etag = get(proxy.addr(), &png, &[]).header("etag").unwrap().to_owned();
    let before = scrape_settled(proxy.admin_addr());
    let cases = [
        (("If-None-Match", etag.as_str()), 304),
        (("If-None-Match", etag.as_str()), 304),
        (("If-None-Match", "\"0123abcd\""), 200),
        (("If-Match", "\"0123abcd\""), 412),
    ];
    for (header, status) in cases {
        assert_eq!(get(proxy.addr(), &png, &[header]).status, status, "{header:?}");
    }
    let after = scrape_settled(proxy.admin_addr());
    assert_deltas(
        &before,
        &after,
        &[
            (conditional("not_modified"), 2.0),
            (conditional("full"), 1.0),
            (conditional("precondition_failed"), 1.0),
            (http_requests("GET", "3xx"), 2.0),
        ],
    );
}

#[test]
fn refusals_counted_by_reason() {
    let site = small_site();
    let proxy = start_proxy(
        &site.s3,
        &[
            ("PROXY_ALLOW_PREFIXES", "prod/"),
            ("PROXY_DENY_PREFIXES", "prod/archive/"),
        ],
    );
    let before = scrape_settled(proxy.admin_addr());
    let cases = [
        ("GET", "/prod/deleted/x.png", 403),
        ("GET", "/prod/temp/x.png", 403),
        ("GET", "/prod/%zz", 400),
        ("GET", "/prod/../x", 400),
        ("DELETE", "/prod/a.png", 405),
        ("GET", "/prod/a/", 404),
        ("GET", "/other/a.png", 403),
        ("GET", "/prod/archive/a.png", 403),
    ];
    for (method, target, status) in cases {
        assert_eq!(
            request(proxy.addr(), method, target, &[]).status,
            status,
            "{method} {target}"
        );
    }
    let after = scrape_settled(proxy.admin_addr());
    assert_deltas(
        &before,
        &after,
        &[
            (refused("private_zone"), 2.0),
            (refused("bad_path"), 2.0),
            (refused("bad_method"), 1.0),
            (refused("directory"), 1.0),
            (refused("not_allowed"), 1.0),
            (refused("denied"), 1.0),
            (s3_requests("GetObject", "ok"), 0.0),
        ],
    );
}

#[test]
fn body_bytes_match_received() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[]);
    let before = scrape_settled(proxy.admin_addr());
    let webm = site.fixture(keys::WEBM).url_path();
    let requests: [(&str, String, HeaderList); 6] = [
        ("GET", webm.clone(), vec![]),
        ("GET", webm.clone(), vec![("Range", "bytes=100-1099")]),
        ("HEAD", webm, vec![]),
        ("GET", site.fixture(keys::PNG).url_path(), vec![]),
        ("GET", "/prod/missing.png".to_owned(), vec![]),
        ("GET", "/health".to_owned(), vec![]),
    ];
    let mut received = 0u64;
    for (method, target, headers) in &requests {
        let response = request(proxy.addr(), method, target, headers);
        assert!(response.body_error.is_none(), "{method} {target}");
        received += response.body.len() as u64;
    }
    let after = scrape_settled(proxy.admin_addr());
    let webm_length = site.fixture(keys::WEBM).bytes.len() as u64;
    assert!(received > webm_length, "{received}");
    assert_eq!(delta(&before, &after, BODY_BYTES), received as f64);
}

#[test]
fn access_log_agrees_with_metrics() {
    let site = small_site();
    let proxy = ProxyProcess::spawn_for(&site.s3, &[]);
    let png = site.fixture(keys::PNG).url_path();
    let before = scrape_settled(proxy.admin_addr());
    let targets = [
        png.as_str(),
        png.as_str(),
        "/prod/missing.png",
        "/prod/deleted/x.png",
        "/prod/%zz",
        "/prod/",
    ];
    for (index, target) in targets.iter().enumerate() {
        let id = format!("agree-{index}");
        request(proxy.addr(), "GET", target, &[("X-Request-Id", id.as_str())]);
    }
    let last = format!("agree-{}", targets.len() - 1);
    proxy
        .wait_for_log(Duration::from_secs(5), |line| line.contains(&last))
        .expect("the last access line");
    let after = scrape_settled(proxy.admin_addr());

    let lines: Vec<serde_json::Value> = proxy
        .log_json()
        .into_iter()
        .filter(|record| {
            record["msg"] == "request" && record["request_id"].as_str().is_some_and(|id| id.starts_with("agree-"))
        })
        .collect();
    assert_eq!(lines.len(), targets.len());
    for class in ["2xx", "4xx", "5xx"] {
        let logged = lines
            .iter()
            .filter(|line| {
                line["status"]
                    .as_u64()
                    .is_some_and(|status| format!("{}xx", status / 100) == class)
            })
            .count();
        assert_eq!(
            delta(&before, &after, &http_requests("GET", class)),
            logged as f64,
            "{class}"
        );
    }
    assert_eq!(delta(&before, &after, &duration_count("GET")), lines.len() as f64);
    let logged_seconds: f64 = lines
        .iter()
        .map(|line| line["duration_ms"].as_f64().expect("a duration") / 1000.0)
        .sum();
    let measured_seconds = delta(
        &before,
        &after,
        "s3proxy_http_request_duration_seconds_sum{method=\"GET\"}",
    );
    // Both come from one measurement; the log rounds to microseconds.
    assert!(
        (logged_seconds - measured_seconds).abs() < 0.001,
        "log {logged_seconds} s, metrics {measured_seconds} s"
    );
}

#[test]
fn ready_follows_s3() {
    let s3 = S3Server::start();
    put(&s3, keys::PNG, b"png", "image/png");
    let proxy = start_proxy(&s3, &[("PROXY_READY_INTERVAL", "200ms")]);
    let admin = proxy.admin_addr();
    let ready = wait_for_status(admin, "/ready", 200, Duration::from_secs(10));
    assert_eq!(ready.body_text(), "{\"status\":\"ready\"}\n");
    assert_eq!(scrape(admin).get("s3proxy_ready"), Some(&1.0));

    s3.pause();
    let unready = wait_for_status(admin, "/ready", 503, Duration::from_secs(10));
    let body: serde_json::Value = serde_json::from_slice(&unready.body).expect("a JSON body");
    assert_eq!(body["status"], "not ready");
    let health = get(admin, "/health", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.body_text(), "{\"status\":\"ok\"}\n");
    assert_eq!(scrape(admin).get("s3proxy_ready"), Some(&0.0));

    s3.resume();
    wait_for_status(admin, "/ready", 200, Duration::from_secs(10));
}

#[test]
fn admin_answers_only_its_paths() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[]);
    let admin = proxy.admin_addr();
    let png = site.fixture(keys::PNG).url_path();
    let object = get(admin, &png, &[]);
    assert_eq!(object.status, 404);
    let put = request(admin, "PUT", "/metrics", &[("Content-Length", "0")]);
    assert_eq!(put.status, 405);
    let metrics = get(admin, "/metrics", &[]);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // The public port does not serve the admin paths.
    let public = get(proxy.addr(), "/metrics", &[]);
    assert_eq!(public.status, 404);
}
