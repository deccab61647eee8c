//! How S3's errors and failures reach the client: status, short plain
//! bodies, and nothing of S3's error document or headers.
//!
//! Missing keys, wrong credentials and an unreachable S3 use s3s-fs. The
//! fake S3 covers what a real server cannot be made to do on demand: 503
//! SlowDown, 500, AccessDenied for a missing key, a response that never
//! comes, a body cut off halfway and a kept-alive connection that dies.

use std::time::{Duration, Instant};

use crate::common::proxy::{Proxy, ProxyProcess};
use crate::common::{
    CannedResponse, ConnectionScript, FaultS3, RawConnection, RawResponse, S3Server, Step, get, head, keys, request,
};
use crate::support::{CACHE_CONTROL_NOT_FOUND, PROBE_KEY, put, small_site, start_proxy};

/// Asserts that nothing of S3's error response reached the client.
fn assert_no_s3_detail(response: &RawResponse, name: &str, backend_host: &str) {
    let body = response.body_text();
    for fragment in [
        "<",
        "Error",
        "test-bucket",
        "HARNESSACCESSKEY",
        "127.0.0.1",
        backend_host,
        "FAULTS3REQUEST",
        "SlowDown",
        "Signature",
    ] {
        assert!(!body.contains(fragment), "{name}: body {body:?} contains {fragment:?}");
    }
    let amz: Vec<_> = response
        .headers
        .iter()
        .filter(|(header, _)| header.to_ascii_lowercase().starts_with("x-amz"))
        .collect();
    assert!(amz.is_empty(), "{name}: {amz:?}");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{name}"
    );
    assert!(body.len() < 64, "{name}: body of {} bytes", body.len());
}

/// Starts a fake S3 whose default response is 404 NoSuchKey, and a proxy
/// in front of it whose readiness probe runs only at start.
fn fault_proxy(extra_env: &[(&str, &str)]) -> (FaultS3, Proxy) {
    let not_found = CannedResponse::s3_error(404, "NoSuchKey", "The specified key does not exist.");
    let fault = FaultS3::start(ConnectionScript::steps(vec![Step::RespondAndClose(not_found)]));
    let mut env = vec![("PROXY_READY_INTERVAL", "1m")];
    env.extend_from_slice(extra_env);
    let proxy = start_proxy(&fault, &env);
    (fault, proxy)
}

/// Requests the fake received for targets containing `fragment`.
fn fault_requests_for(fault: &FaultS3, fragment: &str) -> usize {
    fault
        .requests()
        .iter()
        .filter(|request| request.target.contains(fragment) && !request.target.contains(PROBE_KEY))
        .count()
}

#[test]
fn missing_key_is_plain_404() {
    let site = small_site();
    let host = site.s3.addr().to_string();
    for method in ["GET", "HEAD"] {
        let response = request(site.addr(), method, "/prod/missing/Nothing.png", &[]);
        assert_eq!(response.status, 404, "{method}");
        assert_eq!(
            response.header("cache-control"),
            Some(CACHE_CONTROL_NOT_FOUND),
            "{method}"
        );
        assert_no_s3_detail(&response, method, &host);
        if method == "GET" {
            assert_eq!(response.body_text(), "Not Found\n");
        }
    }
}

#[test]
fn wrong_secret_is_502() {
    let s3 = S3Server::start();
    put(&s3, keys::PNG, b"png", "image/png");
    let proxy = ProxyProcess::spawn_for(
        &s3,
        &[("S3_SECRET_ACCESS_KEY", "wrong/secret/key/0123456789abcdefghij")],
    );
    let host = s3.addr().to_string();
    let target = format!("/{}", keys::PNG);
    let mut request_ids = Vec::new();
    for method in ["GET", "HEAD"] {
        let id = format!("wrong-secret-{method}");
        let response = request(proxy.addr(), method, &target, &[("X-Request-Id", id.as_str())]);
        assert_eq!(response.status, 502, "{method}: {}", response.body_text());
        assert_eq!(response.header("cache-control"), Some("no-store"), "{method}");
        assert_no_s3_detail(&response, method, &host);
        request_ids.push(id);
    }
    for id in request_ids {
        let line = proxy.wait_for_log(Duration::from_secs(5), |line| {
            line.contains(&format!("\"request_id\":\"{id}\"")) && line.contains("\"level\":\"error\"")
        });
        let line = line.unwrap_or_else(|| panic!("no error line for {id}:\n{}", proxy.log_lines().join("\n")));
        let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        assert_eq!(record["s3_error_code"], "SignatureDoesNotMatch", "{line}");
    }
}

#[test]
fn paused_s3_is_502() {
    let s3 = S3Server::start();
    put(&s3, keys::PNG, b"png", "image/png");
    let proxy = start_proxy(&s3, &[]);
    let target = format!("/{}", keys::PNG);
    assert_eq!(get(proxy.addr(), &target, &[]).status, 200);
    s3.pause();
    let host = s3.addr().to_string();
    for method in ["GET", "HEAD"] {
        let response = request(proxy.addr(), method, &target, &[]);
        assert_eq!(response.status, 502, "{method}");
        assert_no_s3_detail(&response, method, &host);
    }
}

#[test]
fn slow_down_is_503_with_retry_after() {
    let (fault, proxy) = fault_proxy(&[]);
    fault.enqueue_for("busy", ConnectionScript::service_unavailable("7"));
    let response = get(proxy.addr(), "/prod/busy/File.png", &[]);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_no_s3_detail(&response, "503", &fault.addr().to_string());
}

#[test]
fn throttling_without_retry_after() {
    let (fault, proxy) = fault_proxy(&[]);
    let throttled = CannedResponse::s3_error(429, "TooManyRequests", "Slow down");
    fault.enqueue_for("many", ConnectionScript::steps(vec![Step::RespondAndClose(throttled)]));
    let response = get(proxy.addr(), "/prod/many/File.png", &[]);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), None);
}

#[test]
fn server_error_is_502() {
    let (fault, proxy) = fault_proxy(&[]);
    let cases = [
        (
            "internal",
            CannedResponse::s3_error(500, "InternalError", "We encountered an internal error."),
        ),
        ("gateway", CannedResponse::s3_error(502, "BadGateway", "upstream")),
        ("denied-put", CannedResponse::s3_error(400, "InvalidRequest", "bad")),
    ];
    for (fragment, answer) in cases {
        fault.enqueue_for(fragment, ConnectionScript::steps(vec![Step::RespondAndClose(answer)]));
        let response = get(proxy.addr(), &format!("/prod/{fragment}/File.png"), &[]);
        assert_eq!(response.status, 502, "{fragment}");
        assert_no_s3_detail(&response, fragment, &fault.addr().to_string());
    }
}

#[test]
fn access_denied_is_404() {
    let (fault, proxy) = fault_proxy(&[]);
    fault.enqueue_for("hidden", ConnectionScript::access_denied());
    let response = get(proxy.addr(), "/prod/hidden/File.png", &[]);
    assert_eq!(response.status, 404);
    assert_eq!(response.header("cache-control"), Some(CACHE_CONTROL_NOT_FOUND));
    assert_no_s3_detail(&response, "GET", &fault.addr().to_string());

    // Responses to HEAD carry no error document, so the proxy sends a
    // one-byte GET to learn the code.
    fault.enqueue_for("hidden", ConnectionScript::access_denied());
    fault.enqueue_for("hidden", ConnectionScript::access_denied());
    let response = head(proxy.addr(), "/prod/hidden/File.png", &[]);
    assert_eq!(response.status, 404);
    assert_eq!(fault_requests_for(&fault, "hidden"), 3);
}

#[test]
fn signature_mismatch_from_fake_is_502() {
    let (fault, proxy) = fault_proxy(&[]);
    fault.enqueue_for("signed", ConnectionScript::signature_mismatch());
    let response = get(proxy.addr(), "/prod/signed/File.png", &[]);
    assert_eq!(response.status, 502);
    assert_no_s3_detail(&response, "GET", &fault.addr().to_string());
}

#[test]
fn hanging_s3_is_504() {
    let (fault, proxy) = fault_proxy(&[("PROXY_S3_RESPONSE_TIMEOUT", "1s")]);
    fault.enqueue_for("silent", ConnectionScript::hang());
    let started = Instant::now();
    let response = get(proxy.addr(), "/prod/silent/File.png", &[]);
    let elapsed = started.elapsed();
    assert_eq!(response.status, 504);
    assert!(elapsed >= Duration::from_millis(900), "answered after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "answered after {elapsed:?}");
    assert_no_s3_detail(&response, "504", &fault.addr().to_string());
    // A timeout is not repeated, because that would double the wait.
    assert_eq!(fault_requests_for(&fault, "silent"), 1);
}

#[test]
fn truncated_body_closes_connection() {
    let (fault, proxy) = fault_proxy(&[]);
    let total = crate::common::fixtures::pattern_bytes(200_000, 11);
    fault.enqueue_for(
        "cut",
        ConnectionScript::truncated_body(&[("Content-Type", "video/webm")], &total, 70_000),
    );
    let mut connection = RawConnection::connect(proxy.addr(), Duration::from_secs(10)).expect("connect");
    // No Connection: close, so only the failure can end the connection.
    connection
        .send(b"GET /prod/cut/Clip.webm HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let response = connection.read_response(false).expect("the response head");
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), Some(200_000));
    assert!(response.body_error.is_some(), "the body arrived whole");
    assert!(response.body.len() <= 70_000, "{} bytes", response.body.len());
    assert!(response.body == total[..response.body.len()], "body prefix differs");
    let reused = connection.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let answered = reused.is_ok() && connection.read_response(false).is_ok();
    assert!(!answered, "the connection was reused after a short body");
}

#[test]
fn stale_keep_alive_retried_once() {
    let (fault, proxy) = fault_proxy(&[]);
    fault.enqueue_for(
        "stale",
        ConnectionScript::stale_keep_alive(
            CannedResponse::new(200)
                .header("Content-Type", "text/plain")
                .body("first"),
        ),
    );
    fault.enqueue_for(
        "stale",
        ConnectionScript::respond(200, &[("Content-Type", "text/plain")], b"fresh"),
    );
    let first = get(proxy.addr(), "/prod/stale/a.txt", &[]);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"first");
    // The pause lets the worker return the connection to the pool after the
    // client has its response.
    std::thread::sleep(Duration::from_millis(400));
    let second = get(proxy.addr(), "/prod/stale/b.txt", &[]);
    assert_eq!(second.status, 200, "{}", second.body_text());
    assert_eq!(second.body, b"fresh");

    let requests: Vec<_> = fault
        .requests()
        .into_iter()
        .filter(|request| request.target.contains("stale"))
        .collect();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(
        requests[1].connection, requests[0].connection,
        "second request not on the kept-alive connection"
    );
    assert_ne!(
        requests[2].connection, requests[1].connection,
        "retry not on a fresh connection"
    );
    assert_eq!(requests[2].target, requests[1].target);

    let metrics = crate::support::scrape(proxy.admin_addr());
    assert_eq!(
        metrics.get("s3proxy_s3_retries_total{operation=\"GetObject\"}"),
        Some(&1.0)
    );
}

#[test]
fn no_s3_length_closes_connection() {
    let (fault, proxy) = fault_proxy(&[]);
    let mut unframed = CannedResponse::new(200)
        .header("Content-Type", "text/plain")
        .body("no length given");
    unframed.add_content_length = false;
    fault.enqueue_for(
        "unframed",
        ConnectionScript::steps(vec![Step::RespondAndClose(unframed)]),
    );
    let response = get(proxy.addr(), "/prod/unframed/a.txt", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"no length given");
    assert!(response.closes_connection());
    assert!(!response.has_header("transfer-encoding"));
}
