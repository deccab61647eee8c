//! Request targets the proxy rejects without asking S3 (bad paths,
//! directories, private zones, other methods), the access settings, and
//! `/health` on the public port.
//!
//! Each test runs its own S3 server, so that it can check that a rejected
//! request sent nothing to S3.

use std::time::Duration;

use crate::common::fixtures::{self, Fixtures};
use crate::common::proxy::Proxy;
use crate::common::{RawResponse, S3Server, keys, raw_request, request};
use crate::support::{object_requests, small_site, start_proxy};

/// A private S3 server that contains every private fixture and a few public
/// ones, with a proxy in front of it.
struct Guarded {
    s3: S3Server,
    proxy: Proxy,
    fixtures: Fixtures,
}

impl Guarded {
    fn start(extra_env: &[(&str, &str)]) -> Guarded {
        let s3 = S3Server::start();
        let items = fixtures::small_fixtures()
            .into_iter()
            .filter(|item| item.private || [keys::PNG, keys::PNG_ARCHIVE].contains(&item.key.as_str()))
            .collect();
        let fixtures = fixtures::seed(&s3, items);
        let proxy = start_proxy(&s3, extra_env);
        Guarded { s3, proxy, fixtures }
    }

    /// Sends a request and asserts its status and that S3 received nothing
    /// meanwhile, apart from the readiness probe.
    fn assert_rejected(&self, method: &str, target: &str, headers: &[(&str, &str)], status: u16) -> RawResponse {
        let before = object_requests(&self.s3).len();
        let response = request(self.proxy.addr(), method, target, headers);
        assert_eq!(
            response.status,
            status,
            "{method} {target:.120}: {}",
            response.body_text()
        );
        let after = object_requests(&self.s3);
        assert_eq!(
            after.len(),
            before,
            "{method} {target:.120} reached S3: {:?}",
            &after[before.min(after.len())..]
        );
        response
    }

    fn url_path(&self, key: &str) -> String {
        self.fixtures.get(key).url_path()
    }
}

#[test]
fn private_fixtures_forbidden() {
    let guarded = Guarded::start(&[]);
    let mut checked = 0;
    for fixture in guarded.fixtures.private() {
        for method in ["GET", "HEAD"] {
            let response = guarded.assert_rejected(method, &fixture.url_path(), &[], 403);
            if method == "GET" {
                assert_eq!(response.body_text(), "Forbidden\n", "{}", fixture.key);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn private_zones_through_encodings() {
    let guarded = Guarded::start(&[]);
    let deleted = keys::DELETED.strip_prefix("prod/deleted/").unwrap();
    let temp = keys::TEMP.strip_prefix("prod/temp/").unwrap();
    let thumb_temp = keys::THUMB_TEMP.strip_prefix("prod/thumb/temp/").unwrap();
    let transcoded_temp = keys::TRANSCODED_TEMP.strip_prefix("prod/transcoded/temp/").unwrap();
    let targets = [
        format!("/prod/%64eleted/{deleted}"),
        format!("/prod/%64%65%6C%65%74%65%64/{deleted}"),
        format!("/prod%2Fdeleted%2F{}", deleted.replace('/', "%2F")),
        format!("/prod/deleted%2F{deleted}"),
        format!("/prod/%74emp/{}", temp.replace('!', "%21")),
        format!("/prod/thumb%2Ftemp/{thumb_temp}"),
        format!("/prod/thumb/%74%65%6D%70/{thumb_temp}"),
        format!("/prod/transcoded%2F%74emp/{transcoded_temp}"),
        "/prod/%2Ehtsecure".to_owned(),
        "/prod/thumb/a/%2Ehtsecure".to_owned(),
        "/prod/.htsecure?download=1".to_owned(),
        format!("/prod/deleted//{deleted}"),
        format!("/prod/deleted/{deleted}?acl"),
        format!("http://images.example.org/prod/deleted/{deleted}"),
        format!("/deleted/{deleted}"),
        format!("/temp/{temp}"),
    ];
    for target in targets {
        guarded.assert_rejected("GET", &target, &[], 403);
    }
}

/// Empty path segments: a backend that stores keys as files (s3s-fs here,
/// and any server that normalises slashes) maps `prod//deleted/x` to the
/// same object as `prod/deleted/x`.
#[test]
fn private_zones_through_empty_segments() {
    let guarded = Guarded::start(&[]);
    let deleted = keys::DELETED.strip_prefix("prod/deleted/").unwrap();
    let thumb_temp = keys::THUMB_TEMP.strip_prefix("prod/thumb/temp/").unwrap();
    let targets = [
        format!("//prod/deleted/{deleted}"),
        format!("/prod//deleted/{deleted}"),
        format!("/prod/%2Fdeleted/{deleted}"),
        format!("/prod/thumb//temp/{thumb_temp}"),
    ];
    // Every target is tried, so that a failure lists all that got through.
    let mut leaks = Vec::new();
    for target in &targets {
        let before = object_requests(&guarded.s3).len();
        let response = request(guarded.proxy.addr(), "GET", target, &[]);
        let reached_s3 = object_requests(&guarded.s3).len() - before;
        if response.status != 403 || reached_s3 != 0 {
            leaks.push(format!(
                "{target}: status {}, {} bytes, {reached_s3} S3 requests",
                response.status,
                response.body.len()
            ));
        }
    }
    assert!(leaks.is_empty(), "not rejected without S3:\n{}", leaks.join("\n"));
}

#[test]
fn bad_paths_rejected() {
    let guarded = Guarded::start(&[]);
    let targets = [
        "/prod/%zz.png",
        "/prod/%4",
        "/prod/%",
        "/prod/a%G0.png",
        "/prod/%C3%28.png",
        "/prod/%FF.png",
        "/prod/%ED%A0%80.png",
        "/prod/a%00b.png",
        "/prod/a%0Ab.png",
        "/prod/a%0D%0ASet-Cookie:%20x=1",
        "/prod/a%09b.png",
        "/prod/a%1Bb.png",
        "/prod/a%7Fb.png",
        "/prod/a%C2%85b.png",
        "/prod/../prod/a/ab/Name.png",
        "/prod/./a/ab/Name.png",
        "/prod/a/ab/..",
        "/prod/%2E%2E/prod/a/ab/Name.png",
        "/prod/%2e%2e/prod/a/ab/Name.png",
        "/prod/.%2E/deleted/x.png",
        "/prod/%2E/a/ab/Name.png",
        "/..",
        "/.",
    ];
    for target in targets {
        let response = guarded.assert_rejected("GET", target, &[], 400);
        assert!(
            response.body_text().starts_with("Bad Request"),
            "{target}: {}",
            response.body_text()
        );
    }
}

#[test]
fn long_keys_rejected() {
    let guarded = Guarded::start(&[]);
    let ascii = format!("/prod/{}", "a".repeat(1100));
    let exact_limit_plus_one = format!("/{}", "b".repeat(1025));
    // 513 two-byte characters: 1026 bytes of UTF-8 in 513 characters.
    let multibyte = format!("/{}", "%C3%BC".repeat(513));
    for target in [ascii, exact_limit_plus_one, multibyte] {
        guarded.assert_rejected("GET", &target, &[], 414);
    }
}

#[test]
fn longest_key_reaches_s3() {
    let guarded = Guarded::start(&[]);
    // 1024 bytes in segments short enough for a file system.
    let mut key = String::from("prod");
    while key.len() < 1024 {
        let segment_length = (1024 - key.len() - 1).min(100);
        key.push('/');
        key.push_str(&"c".repeat(segment_length));
    }
    assert_eq!(key.len(), 1024);
    let before = object_requests(&guarded.s3).len();
    let response = request(guarded.proxy.addr(), "GET", &format!("/{key}"), &[]);
    assert_eq!(response.status, 404, "{}", response.body_text());
    assert_eq!(object_requests(&guarded.s3).len(), before + 1);
}

#[test]
fn directories_not_listed() {
    let guarded = Guarded::start(&[]);
    let targets = [
        "/",
        "/prod/",
        "/prod%2F",
        "/prod/a/ab/",
        "/prod/deleted/",
        "/?list-type=2",
        "/prod/?list-type=2&prefix=deleted",
        "/?uploads",
        "http://images.example.org",
    ];
    for target in targets {
        let response = guarded.assert_rejected("GET", target, &[], 404);
        assert_eq!(response.body_text(), "Not Found\n", "{target}");
    }
}

#[test]
fn other_methods_not_allowed() {
    let guarded = Guarded::start(&[]);
    let png = guarded.url_path(keys::PNG);
    let methods = ["PUT", "DELETE", "POST", "OPTIONS", "PATCH", "TRACE", "PROPFIND"];
    for method in methods {
        for target in [png.as_str(), "/health", "/prod/deleted/x.png"] {
            let response = guarded.assert_rejected(method, target, &[("Content-Length", "0")], 405);
            assert_eq!(response.header("allow"), Some("GET, HEAD"), "{method} {target}");
        }
    }
    let text = format!(
        "POST {png} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 7\r\nConnection: close\r\n\r\nkey=val"
    );
    let before = object_requests(&guarded.s3).len();
    let response = crate::common::raw_request(guarded.proxy.addr(), &text);
    assert_eq!(response.status, 405);
    assert_eq!(object_requests(&guarded.s3).len(), before);
}

#[test]
fn allow_prefixes_limit_keys() {
    let guarded = Guarded::start(&[("PROXY_ALLOW_PREFIXES", "prod")]);
    for target in [
        "/staging/a/ab/Name.png",
        "/production/a/ab/Name.png",
        "/favicon.ico",
        "/prod",
    ] {
        guarded.assert_rejected("GET", target, &[], 403);
    }
    guarded.assert_rejected("GET", &guarded.url_path(keys::DELETED), &[], 403);
    let response = request(guarded.proxy.addr(), "GET", &guarded.url_path(keys::PNG), &[]);
    assert_eq!(response.status, 200);
    assert!(response.body == guarded.fixtures.get(keys::PNG).bytes);
}

#[test]
fn deny_prefixes_refuse_keys() {
    let guarded = Guarded::start(&[("PROXY_DENY_PREFIXES", "prod/archive/, /other")]);
    guarded.assert_rejected("GET", &guarded.url_path(keys::PNG_ARCHIVE), &[], 403);
    guarded.assert_rejected("GET", "/prod/%61rchive/a/ab/x.png", &[], 403);
    guarded.assert_rejected("GET", "/other/file.png", &[], 403);
    let response = request(guarded.proxy.addr(), "GET", &guarded.url_path(keys::PNG), &[]);
    assert_eq!(response.status, 200);
}

#[test]
fn mediawiki_zones_switched_off() {
    let guarded = Guarded::start(&[("PROXY_MEDIAWIKI_PRIVATE", "false")]);
    for key in [keys::DELETED, keys::TEMP, keys::HTSECURE] {
        let response = request(guarded.proxy.addr(), "GET", &guarded.url_path(key), &[]);
        assert_eq!(response.status, 200, "{key}");
        assert!(response.body == guarded.fixtures.get(key).bytes, "{key}");
    }
}

#[test]
fn health_answers_without_s3() {
    let guarded = Guarded::start(&[]);
    for (method, target) in [("GET", "/health"), ("HEAD", "/health"), ("GET", "/health?full=1")] {
        let response = guarded.assert_rejected(method, target, &[], 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{method} {target}"
        );
        if method == "GET" {
            let body: serde_json::Value =
                serde_json::from_slice(&response.body).unwrap_or_else(|err| panic!("{target}: {err}"));
            assert_eq!(body, serde_json::json!({"status": "ok"}), "{target}");
        }
    }
}

#[test]
fn health_answers_while_s3_paused() {
    let guarded = Guarded::start(&[]);
    guarded.s3.pause();
    let response = request(guarded.proxy.addr(), "GET", "/health", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"{\"status\":\"ok\"}\n");
    let object = request(guarded.proxy.addr(), "GET", &guarded.url_path(keys::PNG), &[]);
    assert_eq!(object.status, 502);
    guarded.s3.resume();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let object = request(guarded.proxy.addr(), "GET", &guarded.url_path(keys::PNG), &[]);
        if object.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", object.status);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn host_header_required_once() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    let cases = [
        (format!("GET {png} HTTP/1.1\r\nConnection: close\r\n\r\n"), 400),
        (
            format!("GET {png} HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            format!("GET {png} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
            200,
        ),
        (format!("GET {png} HTTP/1.0\r\n\r\n"), 200),
        (
            format!("GET {png} HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (
            format!("GET {png} HTTP/1.1\r\nHost: a/b@c\r\nConnection: close\r\n\r\n"),
            400,
        ),
        (format!("GET {png} HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400),
        (
            format!("GET {png} HTTP/1.1\r\nHost: [::1]:8000\r\nConnection: close\r\n\r\n"),
            200,
        ),
    ];
    for (text, expected) in cases {
        let response = raw_request(site.addr(), &text);
        assert_eq!(response.status, expected, "{text:?}");
    }
}
