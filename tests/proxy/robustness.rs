//! Robustness cases: declared request bodies, requests on idle keep-alive
//! connections during shutdown, precondition order against S3's 304, the
//! retry's fresh connection, S3 call counting, and If-Range on HEAD.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::proxy::ProxyProcess;
use crate::common::raw_http::build_request;
use crate::common::{
    CannedResponse, ConnectionScript, FaultS3, RawConnection, S3Server, Step, get, head, keys, request,
};
use crate::support::{conditional_site, delta, put, scrape_settled, small_site, start_proxy};

#[test]
fn huge_content_length_keeps_process() {
    let site = small_site();
    let mut proxy = ProxyProcess::spawn_for(&site.s3, &[]);
    let addr = proxy.addr();
    let admin = proxy.admin_addr();
    // The public port first, then the admin port, which has its own loop.
    for (target, path) in [(addr, "/health"), (admin, "/metrics")] {
        let mut stream = TcpStream::connect(target).unwrap();
        let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4611686018427387904\r\n\r\n");
        stream.write_all(text.as_bytes()).unwrap();
        let exited = proxy.wait_exit(Duration::from_secs(2));
        assert!(
            exited.is_none(),
            "proxy exited after a body declared to {path}: {exited:?}; stderr: {:?}",
            proxy.stderr_lines()
        );
    }
    assert_eq!(request(addr, "GET", "/health", &[]).status, 200);
    assert_eq!(request(admin, "GET", "/metrics", &[]).status, 200);
}

#[test]
fn max_content_length_keeps_worker() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[("PROXY_WORKERS", "1")]);
    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut connection = RawConnection::connect(proxy.addr(), Duration::from_secs(5)).unwrap();
    connection
        .send(build_request(proxy.addr(), "GET", "/health", &[]).as_bytes())
        .unwrap();
    let answer = connection.read_response(false);
    assert!(answer.is_ok(), "the only worker is gone: {answer:?}");
}

#[test]
fn trickled_request_body_holds_worker() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[("PROXY_WORKERS", "1"), ("PROXY_CLIENT_READ_TIMEOUT", "1s")]);
    let mut slow = TcpStream::connect(proxy.addr()).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..12 {
            std::thread::sleep(Duration::from_millis(500));
            let _ = slow.write_all(b"a");
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let health = request(proxy.addr(), "GET", "/health", &[]);
    let waited = started.elapsed();
    trickle.join().unwrap();
    assert_eq!(health.status, 200);
    assert!(waited < Duration::from_secs(2), "answered after {waited:?}");
}

#[test]
fn failed_if_match_beats_s3_304() {
    let site = conditional_site();
    let target = site.fixture(keys::PNG).url_path();
    let etag = get(site.addr(), &target, &[]).header("etag").unwrap().to_owned();
    let weak = format!("W/{etag}");
    for if_match in [weak.as_str(), "\"other1\", \"other2\""] {
        let response = get(
            site.addr(),
            &target,
            &[("If-Match", if_match), ("If-None-Match", etag.as_str())],
        );
        assert_eq!(response.status, 412, "If-Match: {if_match}");
    }
}

#[test]
fn if_range_retry_counts_every_s3_call() {
    let s3 = S3Server::start();
    let key = "prod/r/re/Review.webm";
    put(&s3, key, &[7u8; 1000], "video/webm");
    let proxy = start_proxy(&s3, &[("PROXY_READY_INTERVAL", "1m")]);
    let before = scrape_settled(proxy.admin_addr());
    let response = get(
        proxy.addr(),
        &format!("/{key}"),
        &[("Range", "bytes=5000-"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(response.status, 200);
    let after = scrape_settled(proxy.admin_addr());
    let sent: Vec<String> = s3
        .recent_requests()
        .into_iter()
        .filter(|r| r.path.ends_with("Review.webm") && r.method != "PUT")
        .map(|r| format!("{} {:?}", r.method, r.header("range")))
        .collect();
    let counted: f64 = after
        .keys()
        .filter(|series| {
            series.starts_with("s3proxy_s3_requests_total{operation=\"GetObject\"")
                || series.starts_with("s3proxy_s3_requests_total{operation=\"HeadObject\"")
        })
        .map(|series| delta(&before, &after, series))
        .sum();
    assert_eq!(counted, sent.len() as f64, "S3 received {sent:?}");
}

#[test]
fn head_if_range_mismatch_matches_get() {
    let site = small_site();
    let target = site.fixture(keys::WEBM).url_path();
    let headers = [("Range", "bytes=0-9"), ("If-Range", "\"stale\"")];
    let full = get(site.addr(), &target, &headers);
    let headers_only = head(site.addr(), &target, &headers);
    assert_eq!(full.status, 200);
    assert_eq!(headers_only.status, full.status);
}

#[test]
fn idle_keep_alive_answered_during_drain() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[("PROXY_GRACE_PERIOD", "5s")]);
    let mut connection = RawConnection::connect(proxy.addr(), Duration::from_secs(3)).unwrap();
    connection.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let first = connection.read_response(false).unwrap();
    assert_eq!(first.status, 200);
    assert!(!first.closes_connection());
    let stopper = std::thread::spawn(move || proxy.shutdown());
    std::thread::sleep(Duration::from_millis(500));
    let sent = connection.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(sent.is_ok(), "{sent:?}");
    match connection.read_response(false) {
        Ok(response) => assert_eq!(response.status, 200),
        Err(error) => assert!(
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "request accepted but never answered: {error}"
        ),
    }
    assert!(stopper.join().unwrap());
}

#[test]
fn retry_skips_second_stale_connection() {
    let not_found = CannedResponse::s3_error(404, "NoSuchKey", "missing");
    let fault = FaultS3::start(ConnectionScript::steps(vec![Step::RespondAndClose(not_found)]));
    let proxy = start_proxy(&fault, &[("PROXY_READY_INTERVAL", "1m")]);
    let big = vec![b'x'; 16 * 1024 * 1024];
    let first = CannedResponse::new(200)
        .header("Content-Type", "text/plain")
        .body(big.clone());
    for _ in 0..2 {
        fault.enqueue_for("pool", ConnectionScript::stale_keep_alive(first.clone()));
    }
    fault.enqueue_for(
        "pool",
        ConnectionScript::respond(200, &[("Content-Type", "text/plain")], b"fresh"),
    );
    let addr = proxy.addr();
    let mut a = RawConnection::connect(addr, Duration::from_secs(20)).unwrap();
    let mut b = RawConnection::connect(addr, Duration::from_secs(20)).unwrap();
    a.send(build_request(addr, "GET", "/prod/pool/a.txt", &[]).as_bytes())
        .unwrap();
    // The first download stalls on its unread client, holding S3 connection 1.
    std::thread::sleep(Duration::from_millis(300));
    b.send(build_request(addr, "GET", "/prod/pool/b.txt", &[]).as_bytes())
        .unwrap();
    let ra = a.read_response(false).unwrap();
    let rb = b.read_response(false).unwrap();
    assert_eq!(ra.body.len(), big.len());
    assert_eq!(rb.body.len(), big.len());
    std::thread::sleep(Duration::from_millis(200));
    let third = get(addr, "/prod/pool/c.txt", &[]);
    let connections: Vec<u64> = fault
        .requests()
        .iter()
        .filter(|r| r.target.contains("pool"))
        .map(|r| r.connection)
        .collect();
    assert_eq!(third.status, 200, "S3 connections used: {connections:?}");
}

#[test]
fn endpoint_error_hides_userinfo() {
    let error = s3_proxy::config::Config::from_lookup(|name| {
        (name == "S3_ENDPOINT").then(|| "https://AKIDREVIEW:TopSecretValue@s3.example.org".to_owned())
    })
    .unwrap_err();
    assert!(!error.to_string().contains("TopSecretValue"), "{error}");
}

#[test]
fn expect_continue_body_frees_worker() {
    let site = small_site();
    let proxy = start_proxy(&site.s3, &[("PROXY_WORKERS", "1")]);
    // The body is announced but never sent.
    let mut stalled = TcpStream::connect(proxy.addr()).unwrap();
    stalled
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let health = request(proxy.addr(), "GET", "/health", &[]);
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
}

#[test]
fn no_response_after_connection_close() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    let mut connection = RawConnection::connect(site.addr(), Duration::from_secs(3)).unwrap();
    // A one-byte body gets 400 with Connection: close, and the pipelined
    // request behind it must get no response.
    let text =
        format!("GET {png} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\naGET {png} HTTP/1.1\r\nHost: x\r\n\r\n");
    connection.send(text.as_bytes()).unwrap();
    let first = connection.read_response(false).unwrap();
    assert_eq!(first.status, 400);
    assert!(first.closes_connection());
    assert!(connection.read_response(false).is_err(), "a second response arrived");
}
