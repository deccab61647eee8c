//! The binary's JSON log lines: one access line per request with every
//! field, the level of `/health`, the start lines, and no secret anywhere.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::common::proxy::ProxyProcess;
use crate::common::raw_http::build_request;
use crate::common::{RawConnection, RawResponse, S3Server, keys, request};
use crate::support::{put, small_site};

const WRONG_SECRET: &str = "wrong/secret/key/for/the/log/test/0123";

/// Sends a request and returns the response with the client's own address.
fn request_from(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> (RawResponse, SocketAddr) {
    let mut connection = RawConnection::connect(addr, Duration::from_secs(10)).expect("connect");
    let local = connection.stream().local_addr().expect("the client address");
    connection
        .send(build_request(addr, method, target, headers).as_bytes())
        .expect("send");
    let response = connection.read_response(method == "HEAD").expect("a response");
    (response, local)
}

/// Returns the access lines whose `request_id` is `id`, after waiting for
/// the first one.
fn access_lines(proxy: &ProxyProcess, id: &str) -> Vec<Value> {
    let needle = format!("\"request_id\":\"{id}\"");
    proxy.wait_for_log(Duration::from_secs(5), |line| {
        line.contains(&needle) && line.contains("\"msg\":\"request\"")
    });
    proxy
        .log_json()
        .into_iter()
        .filter(|record| record["msg"] == "request" && record["request_id"] == id)
        .collect()
}

/// Reports whether `text` is an RFC 3339 UTC time with milliseconds, such
/// as `2024-05-01T12:00:00.123Z`.
fn is_rfc3339_millis(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    bytes.len() == 24
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && bytes[19] == b'.'
        && digits(20..23)
        && bytes[23] == b'Z'
}

#[test]
fn one_access_line_per_request() {
    let site = small_site();
    let proxy = ProxyProcess::spawn_for(&site.s3, &[]);
    let fixture = site.fixture(keys::PNG);
    let cases = [
        ("GET", fixture.url_path(), "log-get", 200, Some(200)),
        ("HEAD", fixture.url_path(), "log-head", 200, Some(200)),
        ("GET", "/prod/missing.png?x=1".to_owned(), "log-missing", 404, Some(404)),
        ("GET", site.fixture(keys::DELETED).url_path(), "log-private", 403, None),
        ("DELETE", fixture.url_path(), "log-delete", 405, None),
    ];
    for (method, target, id, status, s3_status) in cases {
        let user_agent = format!("log-test/{id}");
        let headers = [("X-Request-Id", id), ("User-Agent", user_agent.as_str())];
        let (response, client) = request_from(proxy.addr(), method, &target, &headers);
        assert_eq!(response.status, status, "{id}");
        assert_eq!(response.header("x-request-id"), Some(id), "{id}");

        let lines = access_lines(&proxy, id);
        assert_eq!(lines.len(), 1, "{id}: {lines:?}");
        let line = &lines[0];
        let time = line["time"].as_str().unwrap_or_default();
        assert!(is_rfc3339_millis(time), "{id}: time {time:?}");
        assert_eq!(line["level"], "info", "{id}");
        assert_eq!(line["method"], method, "{id}");
        let path = target.split('?').next().unwrap();
        assert_eq!(line["path"], path, "{id}");
        assert_eq!(line["status"], status, "{id}");
        assert_eq!(line["bytes"], response.body.len() as u64, "{id}");
        assert!(line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{id}: {line}");
        assert_eq!(line["remote_addr"], client.to_string(), "{id}");
        assert_eq!(line["user_agent"], user_agent.as_str(), "{id}");
        match s3_status {
            Some(s3_status) => {
                assert_eq!(line["s3_status"], s3_status, "{id}");
                assert!(line["s3_duration_ms"].as_f64().is_some(), "{id}: {line}");
            }
            None => {
                assert_eq!(line.get("s3_status"), Some(&Value::Null), "{id}");
                assert_eq!(line.get("s3_duration_ms"), Some(&Value::Null), "{id}");
            }
        }
    }
}

#[test]
fn refusal_reason_logged() {
    let site = small_site();
    let proxy = ProxyProcess::spawn_for(&site.s3, &[]);
    let cases = [
        (site.fixture(keys::DELETED).url_path(), "refused-zone", "private_zone"),
        ("/prod/%zz".to_owned(), "refused-path", "bad_path"),
        ("/prod/".to_owned(), "refused-directory", "directory"),
    ];
    for (target, id, reason) in cases {
        let response = request(proxy.addr(), "GET", &target, &[("X-Request-Id", id)]);
        assert!(response.status >= 400, "{id}");
        let lines = access_lines(&proxy, id);
        assert_eq!(lines.len(), 1, "{id}");
        assert_eq!(lines[0]["refused"], reason, "{id}");
    }
}

#[test]
fn generated_request_id_logged() {
    let site = small_site();
    let proxy = ProxyProcess::spawn_for(&site.s3, &[]);
    let response = request(proxy.addr(), "GET", &site.fixture(keys::PNG).url_path(), &[]);
    let id = response.header("x-request-id").expect("a request id").to_owned();
    let lines = access_lines(&proxy, &id);
    assert_eq!(lines.len(), 1, "{id}");
    let invalid = request(
        proxy.addr(),
        "GET",
        &site.fixture(keys::PNG).url_path(),
        &[("X-Request-Id", "has space")],
    );
    let replaced = invalid.header("x-request-id").expect("a request id").to_owned();
    assert_eq!(access_lines(&proxy, &replaced).len(), 1, "{replaced}");
}

#[test]
fn health_logged_at_debug_only() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    for (level, expected) in [("info", 0), ("debug", 1)] {
        // One worker handles requests in order, so the line of /health is
        // written before the line of the request that follows it.
        let proxy = ProxyProcess::spawn_for(&site.s3, &[("PROXY_LOG_LEVEL", level), ("PROXY_WORKERS", "1")]);
        let health = request(proxy.addr(), "GET", "/health", &[("X-Request-Id", "health-check")]);
        assert_eq!(health.status, 200, "{level}");
        request(proxy.addr(), "GET", &png, &[("X-Request-Id", "after-health")]);
        assert_eq!(access_lines(&proxy, "after-health").len(), 1, "{level}");
        let health_lines: Vec<Value> = proxy
            .log_json()
            .into_iter()
            .filter(|record| record["msg"] == "request" && record["path"] == "/health")
            .collect();
        assert_eq!(health_lines.len(), expected, "{level}: {health_lines:?}");
        if let Some(line) = health_lines.first() {
            assert_eq!(line["level"], "debug");
            assert_eq!(line["request_id"], "health-check");
        }
    }
}

#[test]
fn starting_line_masks_secrets() {
    let s3 = S3Server::start();
    let proxy = ProxyProcess::spawn_for(&s3, &[("S3_SESSION_TOKEN", "session-token-value-0123456789")]);
    let starting: Vec<Value> = proxy
        .log_json()
        .into_iter()
        .filter(|record| record["msg"] == "starting")
        .collect();
    assert_eq!(starting.len(), 1);
    let line = &starting[0];
    assert_eq!(line["s3_secret_access_key"], "***");
    assert_eq!(line["s3_session_token"], "***");
    assert_eq!(line["s3_access_key_id"], "HARN***");
    assert_eq!(line["s3_bucket"], s3.bucket());
    let text = line.to_string();
    assert!(!text.contains(s3.secret_key()), "{text}");
    assert!(!text.contains("session-token-value"), "{text}");

    let listening: Vec<Value> = proxy
        .log_json()
        .into_iter()
        .filter(|record| record["msg"] == "listening")
        .collect();
    assert_eq!(listening.len(), 1);
    assert_eq!(listening[0]["public_addr"], proxy.addr().to_string());
    assert_eq!(listening[0]["admin_addr"], proxy.admin_addr().to_string());
}

/// Runs successful and failing requests, then checks every line the
/// processes wrote, stderr included.
#[test]
fn no_secret_in_any_line() {
    let s3 = S3Server::start();
    put(&s3, keys::PNG, b"png bytes", "image/png");
    let good = ProxyProcess::spawn_for(&s3, &[("PROXY_LOG_LEVEL", "debug")]);
    let wrong = ProxyProcess::spawn_for(
        &s3,
        &[("S3_SECRET_ACCESS_KEY", WRONG_SECRET), ("PROXY_LOG_LEVEL", "debug")],
    );
    let target = format!("/{}", keys::PNG);
    for proxy in [&good, &wrong] {
        for method in ["GET", "HEAD"] {
            for path in [target.as_str(), "/prod/missing.png", "/health"] {
                request(proxy.addr(), method, path, &[("Authorization", "Bearer client-token")]);
            }
        }
    }
    assert_eq!(request(good.addr(), "GET", &target, &[]).status, 200);
    assert_eq!(request(wrong.addr(), "GET", &target, &[]).status, 502);
    wrong
        .wait_for_log(Duration::from_secs(5), |line| line.contains("SignatureDoesNotMatch"))
        .expect("an error line naming SignatureDoesNotMatch");

    for (name, proxy) in [("good", &good), ("wrong", &wrong)] {
        let lines: Vec<String> = proxy.log_lines().into_iter().chain(proxy.stderr_lines()).collect();
        assert!(lines.len() >= 10, "{name}: {} lines", lines.len());
        for line in &lines {
            for secret in [s3.secret_key(), WRONG_SECRET, "client-token"] {
                assert!(!line.contains(secret), "{name}: {line}");
            }
            let lower = line.to_ascii_lowercase();
            for fragment in [
                "authorization",
                "aws4-hmac-sha256",
                "signature=",
                "x-amz-date",
                "credential=",
            ] {
                assert!(!lower.contains(fragment), "{name}: {fragment} in {line}");
            }
        }
    }
}

#[test]
fn error_lines_carry_request_id() {
    let s3 = S3Server::start();
    let proxy = ProxyProcess::spawn_for(&s3, &[]);
    s3.pause();
    let response = request(proxy.addr(), "GET", "/prod/a.png", &[("X-Request-Id", "unreachable-1")]);
    assert_eq!(response.status, 502);
    let errors: Vec<Value> = {
        proxy.wait_for_log(Duration::from_secs(5), |line| {
            line.contains("unreachable-1") && line.contains("\"level\":\"error\"")
        });
        proxy
            .log_json()
            .into_iter()
            .filter(|record| record["level"] == "error" && record["request_id"] == "unreachable-1")
            .collect()
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let access = access_lines(&proxy, "unreachable-1");
    assert_eq!(access.len(), 1);
    assert_eq!(access[0]["s3_error"], "connection_error");
    assert_eq!(access[0]["s3_status"], Value::Null);
}
