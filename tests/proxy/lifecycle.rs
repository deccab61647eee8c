//! The process lifecycle: shutdown on SIGTERM with a delay and a drain,
//! configuration errors at start, client timeouts and keep-alive.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::proxy::{ProxyProcess, base_env};
use crate::common::raw_http::build_request;
use crate::common::{RawConnection, S3Server, keys, request};
use crate::support::{large_site, small_site};

/// Bytes read per step by the slow client, and the pause between steps.
const SLOW_CHUNK: usize = 64 * 1024;
const SLOW_PAUSE: Duration = Duration::from_millis(20);

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Reads a response head from `stream` and returns the Content-Length and
/// the body bytes read along with the head.
fn read_head(stream: &mut TcpStream) -> (u64, Vec<u8>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        let read = stream.read(&mut chunk).expect("read the response head");
        assert!(read > 0, "connection closed inside the head");
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    (length, buffer[end + 4..].to_vec())
}

fn connection_refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(_) => false,
        Err(err) => err.kind() == ErrorKind::ConnectionRefused,
    }
}

/// Polls `/ready` on the admin listener until it returns 200.
fn wait_until_ready(admin: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(admin, "GET", "/ready", &[]).status != 200 {
        assert!(Instant::now() < deadline, "the proxy never turned ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_slow_download() {
    let site = large_site();
    let fixture = site.fixture(keys::LARGE);
    let mut proxy = ProxyProcess::spawn_for(&site.s3, &[("PROXY_GRACE_PERIOD", "60s")]);
    let addr = proxy.addr();

    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
        .write_all(build_request(addr, "GET", &fixture.url_path(), &[]).as_bytes())
        .unwrap();
    let (length, mut body) = read_head(&mut stream);
    assert_eq!(length, fixture.bytes.len() as u64);

    let mut signalled = false;
    let mut refused_while_draining = None;
    let mut chunk = vec![0u8; SLOW_CHUNK];
    while (body.len() as u64) < length {
        std::thread::sleep(SLOW_PAUSE);
        let read = stream.read(&mut chunk).expect("read the body");
        assert!(read > 0, "connection closed after {} of {length} bytes", body.len());
        body.extend_from_slice(&chunk[..read]);
        if !signalled && body.len() >= 2 * 1024 * 1024 {
            proxy.sigterm();
            signalled = true;
            proxy
                .wait_for_log(Duration::from_secs(5), |line| line.contains("listener closed"))
                .expect("a listener closed line");
            refused_while_draining = Some(connection_refused(addr));
        }
    }
    assert!(signalled, "the download ended before the signal");
    assert_eq!(
        refused_while_draining,
        Some(true),
        "new connection accepted while draining"
    );
    assert!(body == fixture.bytes, "body differs");

    let status = proxy.wait_exit(Duration::from_secs(30)).expect("the proxy exits");
    assert_eq!(status.code(), Some(0));
    let complete = proxy.log_lines().iter().any(|line| line.contains("shutdown complete"));
    assert!(complete, "{}", proxy.log_lines().join("\n"));
}

#[test]
fn shutdown_delay_keeps_serving() {
    let site = small_site();
    let png = site.fixture(keys::PNG);
    let mut proxy = ProxyProcess::spawn_for(&site.s3, &[("PROXY_SHUTDOWN_DELAY", "2s")]);
    wait_until_ready(proxy.admin_addr());

    let signalled = Instant::now();
    proxy.sigterm();
    proxy
        .wait_for_log(Duration::from_secs(5), |line| line.contains("shutdown delay"))
        .expect("a shutdown delay line");
    let response = request(proxy.addr(), "GET", &png.url_path(), &[]);
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "too slow to test the delay"
    );
    assert_eq!(response.status, 200);
    assert!(response.body == png.bytes);
    let ready = request(proxy.admin_addr(), "GET", "/ready", &[]);
    assert_eq!(ready.status, 503, "{}", ready.body_text());

    let status = proxy.wait_exit(Duration::from_secs(10)).expect("the proxy exits");
    assert_eq!(status.code(), Some(0));
    let waited = signalled.elapsed();
    assert!(waited >= Duration::from_millis(1900), "exited after {waited:?}");
    assert!(connection_refused(proxy.addr()));
}

#[test]
fn second_signal_ends_delay() {
    let site = small_site();
    let mut proxy = ProxyProcess::spawn_for(&site.s3, &[("PROXY_SHUTDOWN_DELAY", "60s")]);
    let signalled = Instant::now();
    proxy.sigterm();
    proxy
        .wait_for_log(Duration::from_secs(5), |line| line.contains("shutdown delay"))
        .expect("a shutdown delay line");
    proxy.sigint();
    let status = proxy.wait_exit(Duration::from_secs(10)).expect("the proxy exits");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[test]
fn invalid_configuration_exits_2() {
    let s3 = S3Server::start();
    let cases: [(&str, Option<&str>); 7] = [
        ("S3_ENDPOINT", None),
        ("S3_ENDPOINT", Some("ftp://127.0.0.1:9000")),
        ("S3_BUCKET_NAME", None),
        ("PROXY_WORKERS", Some("abc")),
        ("PROXY_WORKERS", Some("0")),
        ("PROXY_S3_RESPONSE_TIMEOUT", Some("soon")),
        ("PROXY_MEDIAWIKI_PRIVATE", Some("maybe")),
    ];
    for (variable, value) in cases {
        let mut env = base_env(&s3);
        match value {
            Some(value) => env.insert(variable.to_owned(), value.to_owned()),
            None => env.remove(variable),
        };
        let pairs: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let mut proxy = ProxyProcess::spawn_unready(&pairs);
        let status = proxy
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{variable}={value:?}: still running"));
        assert_eq!(status.code(), Some(2), "{variable}={value:?}");
        let lines = proxy.log_lines();
        assert_eq!(lines.len(), 1, "{variable}={value:?}: {lines:?}");
        let record: serde_json::Value =
            serde_json::from_str(&lines[0]).unwrap_or_else(|err| panic!("{variable}={value:?}: {err}: {}", lines[0]));
        assert_eq!(record["variable"], variable, "{}", lines[0]);
        assert_eq!(record["level"], "error", "{}", lines[0]);
        assert!(!lines[0].contains(s3.secret_key()), "{}", lines[0]);
    }
}

/// The client read timeout applies to client connections, not to the wait
/// for the next connection: an idle proxy keeps accepting.
#[test]
fn idle_listeners_keep_accepting() {
    let site = small_site();
    let mut proxy = ProxyProcess::spawn_for(&site.s3, &[("PROXY_CLIENT_READ_TIMEOUT", "1s")]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        proxy.wait_exit(Duration::ZERO),
        None,
        "{}",
        proxy.log_lines().join("\n")
    );
    let public = crate::common::raw_http::try_raw_request(
        proxy.addr(),
        build_request(proxy.addr(), "GET", "/health", &[]).as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(
        public.map(|response| response.status).ok(),
        Some(200),
        "public listener"
    );
    let admin = crate::common::raw_http::try_raw_request(
        proxy.admin_addr(),
        build_request(proxy.admin_addr(), "GET", "/health", &[]).as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(admin.map(|response| response.status).ok(), Some(200), "admin listener");
}

#[test]
fn stalled_client_closed() {
    let site = small_site();
    let proxy = ProxyProcess::spawn_for(&site.s3, &[("PROXY_CLIENT_READ_TIMEOUT", "1s")]);
    let partial_request: [&[u8]; 2] = [b"GET /prod/a/ab/Name.png HTTP/1.1\r\nHost: x\r\n", b""];
    for sent in partial_request {
        let mut stream = TcpStream::connect(proxy.addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(sent).unwrap();
        let started = Instant::now();
        let mut received = Vec::new();
        let result = stream.read_to_end(&mut received);
        let elapsed = started.elapsed();
        let name = String::from_utf8_lossy(sent).into_owned();
        let closed = match &result {
            Ok(_) => true,
            Err(err) => err.kind() == ErrorKind::ConnectionReset,
        };
        assert!(closed, "{name:?}: {result:?}");
        assert!(
            elapsed >= Duration::from_millis(800),
            "{name:?}: closed after {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(4), "{name:?}: closed after {elapsed:?}");
    }
}

#[test]
fn keep_alive_answers_in_order() {
    let site = small_site();
    let keys_in_order = [keys::PNG, keys::JPEG, keys::EMPTY, keys::SVG, keys::PNG_THUMB];
    let mut connection = RawConnection::connect(site.addr(), Duration::from_secs(10)).expect("connect");
    for key in keys_in_order {
        let fixture = site.fixture(key);
        let text = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", fixture.url_path());
        connection.send(text.as_bytes()).unwrap();
        let response = connection.read_response(false).expect("a response");
        assert_eq!(response.status, 200, "{key}");
        assert!(response.body == fixture.bytes, "{key}");
        assert!(!response.closes_connection(), "{key}");
    }
    assert!(!connection.is_closed_by_peer(Duration::from_millis(200)));
}

#[test]
fn pipelined_requests_answered_in_order() {
    let site = small_site();
    let keys_in_order = [keys::WEBM, keys::PNG, keys::EMPTY, keys::JPEG];
    let mut text = String::new();
    for key in keys_in_order {
        text.push_str(&format!(
            "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
            site.fixture(key).url_path()
        ));
    }
    text.push_str("HEAD /prod/missing.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut connection = RawConnection::connect(site.addr(), Duration::from_secs(10)).expect("connect");
    connection.send(text.as_bytes()).unwrap();
    for key in keys_in_order {
        let response = connection.read_response(false).expect("a response");
        assert_eq!(response.status, 200, "{key}");
        assert!(response.body == site.fixture(key).bytes, "{key}");
    }
    let last = connection.read_response(true).expect("the HEAD response");
    assert_eq!(last.status, 404);
    assert!(last.closes_connection());
    assert!(connection.is_closed_by_peer(Duration::from_secs(2)));
}
