//! The proxy against a real Ceph RADOS Gateway, the S3 server of production.
//!
//! Every test is ignored in a plain `cargo test`, because it needs RGW:
//! `scripts/test-ceph` starts a throw-away cluster with `scripts/ceph-local`,
//! sets the `S3_PROXY_CEPH_*` variables and runs them with `--ignored`. Each
//! test creates its own bucket with signed S3 requests, starts the proxy
//! against it and talks to the proxy over HTTP.
//!
//! Where RGW (checked with Ceph 16.2) responds differently from AWS S3, a
//! comment at the request concerned describes the difference.

mod common;
#[path = "ceph/rgw.rs"]
mod rgw;

use std::time::{Duration, Instant, SystemTime};

use common::fixtures::{self, gzip, pattern_bytes, png, webm};
use common::proxy::{Proxy, ProxyProcess};
use common::{Framing, RawResponse, encode_key_path, get, head, keys, send_signed};
use rgw::RgwBucket;

const DEFAULT_CACHE_CONTROL: &str = "public, max-age=300";
const NOT_FOUND_CACHE_CONTROL: &str = "public, max-age=10";

/// Headers that differ between two responses to the same request.
const PER_RESPONSE_HEADERS: &[&str] = &["date", "x-request-id"];

/// Asserts the headers the proxy adds to every response, and that no header
/// of RGW's own reaches the client.
fn assert_common_headers(response: &RawResponse, context: &str) {
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{context}: X-Content-Type-Options"
    );
    assert!(
        response
            .header("server")
            .is_some_and(|server| server.starts_with("s3-proxy/")),
        "{context}: Server is {:?}",
        response.header("server")
    );
    let leaked: Vec<&(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            name.starts_with("x-amz-") || name.starts_with("x-rgw-")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "{context}: RGW headers reached the client: {leaked:?}"
    );
}

/// Asserts the headers of a served object that keep it from being framed,
/// sniffed or leaking the referrer.
fn assert_object_security_headers(response: &RawResponse, context: &str) {
    assert_common_headers(response, context);
    assert_eq!(
        response.header("referrer-policy"),
        Some("no-referrer"),
        "{context}: Referrer-Policy"
    );
    assert_eq!(
        response.header("cross-origin-resource-policy"),
        Some("cross-origin"),
        "{context}: Cross-Origin-Resource-Policy"
    );
}

/// Returns the headers of `response` that a GET and a HEAD of the same
/// object must share: lower-case names, sorted, without Date and
/// X-Request-Id.
fn comparable_headers(response: &RawResponse) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .filter(|(name, _)| !PER_RESPONSE_HEADERS.contains(&name.as_str()))
        .collect();
    headers.sort();
    headers
}

/// Returns RGW's ETag and Last-Modified of `key`, from a HeadObject sent
/// straight to RGW.
fn rgw_validators(bucket: &RgwBucket, key: &str) -> (String, String) {
    let response = bucket.head_object(key);
    assert_eq!(response.status, 200, "HeadObject {key:?} straight to RGW");
    let etag = response.header("etag").expect("RGW sends an ETag").to_owned();
    let last_modified = response
        .header("last-modified")
        .expect("RGW sends Last-Modified")
        .to_owned();
    (etag, last_modified)
}

fn parse_http_date(value: &str) -> SystemTime {
    httpdate::parse_http_date(value).unwrap_or_else(|err| panic!("invalid HTTP date {value:?}: {err}"))
}

/// Request target for `key`: `/` plus the key encoded as S3 does.
fn target(key: &str) -> String {
    format!("/{}", encode_key_path(key))
}

/// Request target for `key` with the characters a URI path may carry
/// literally (RFC 3986 `pchar`: unreserved, sub-delims, `:` and `@`) left as
/// they are, and every other byte percent-encoded.
fn literal_target(key: &str) -> String {
    let mut path = String::from("/");
    for &byte in key.as_bytes() {
        let literal = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte);
        if literal {
            path.push(byte as char);
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

/// Starts the proxy in this process against `bucket`. It logs warnings and
/// errors only, because the lines of every test share the test binary's
/// output.
fn start_proxy(bucket: &RgwBucket) -> Proxy {
    Proxy::start(bucket, &[("PROXY_LOG_LEVEL", "warn")])
}

/// Finds the JSON log lines of `process` with `request_id`.
fn log_lines_for(process: &ProxyProcess, request_id: &str) -> Vec<serde_json::Value> {
    process
        .log_json()
        .into_iter()
        .filter(|line| line["request_id"] == request_id)
        .collect()
}

/// Waits until the access-log line of `request_id` appears and returns it.
fn access_line(process: &ProxyProcess, request_id: &str) -> serde_json::Value {
    let id_field = format!("\"request_id\":\"{request_id}\"");
    let line = process
        .wait_for_log(Duration::from_secs(5), |line| {
            line.contains("\"msg\":\"request\"") && line.contains(&id_field)
        })
        .unwrap_or_else(|| panic!("no access log line for request {request_id}"));
    serde_json::from_str(&line).expect("access log line is JSON")
}

/// Polls `/ready` on the admin port until `accept(status, body)` holds, and
/// returns the last status and body.
fn poll_ready(admin: std::net::SocketAddr, timeout: Duration, accept: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let response = get(admin, "/ready", &[]);
        let body = response.body_text();
        if accept(response.status, &body) || Instant::now() >= deadline {
            return (response.status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn png_get_and_head_headers() {
    let bucket = RgwBucket::create("png");
    let bytes = png(16, 12);
    let etag = bucket.put(
        keys::PNG,
        &bytes,
        &[
            ("content-type", "image/png"),
            ("x-amz-meta-sha1base36", "0h9kx2mbq4r7t1vz8w3y6n5p0c2d4fa"),
        ],
    );
    let (rgw_etag, rgw_last_modified) = rgw_validators(&bucket, keys::PNG);
    assert_eq!(etag, rgw_etag);
    let proxy = start_proxy(&bucket);

    let response = get(proxy.addr(), &target(keys::PNG), &[]);
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.body, bytes);
    assert_eq!(response.framing, Framing::ContentLength(bytes.len() as u64));
    assert_eq!(response.header("content-type"), Some("image/png"));
    assert_eq!(response.header("etag"), Some(etag.as_str()));
    let last_modified = response.header("last-modified").expect("Last-Modified");
    assert_eq!(parse_http_date(last_modified), parse_http_date(&rgw_last_modified));
    assert!(
        last_modified.ends_with(" GMT"),
        "Last-Modified is not IMF-fixdate: {last_modified}"
    );
    assert_eq!(response.header("cache-control"), Some(DEFAULT_CACHE_CONTROL));
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    assert!(!response.has_header("content-disposition"), "an image is shown inline");
    assert_object_security_headers(&response, "GET");

    let head_response = head(proxy.addr(), &target(keys::PNG), &[]);
    assert_eq!(head_response.status, 200);
    assert!(head_response.body.is_empty());
    assert_eq!(comparable_headers(&head_response), comparable_headers(&response));

    // A query such as ?acl must not select another S3 operation: the proxy
    // drops it, so the response is still the object.
    for query in ["?acl", "?list-type=2", "?versionId=null", "?uploads"] {
        let with_query = get(proxy.addr(), &format!("{}{query}", target(keys::PNG)), &[]);
        assert_eq!(with_query.status, 200, "{query}");
        assert_eq!(with_query.body, bytes, "{query}");
        assert_eq!(with_query.header("content-type"), Some("image/png"), "{query}");
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn keys_with_every_character_class() {
    let bucket = RgwBucket::create("names");
    let mut names: Vec<String> = keys::NAMES.iter().map(|key| (*key).to_owned()).collect();
    names.push("prod/names/plus+and space+.txt".to_owned());
    names.push("prod/names/semi;colon=equals&amp@at.txt".to_owned());
    for key in &names {
        bucket.put_typed(key, key.as_bytes(), "text/plain; charset=utf-8");
    }
    let proxy = start_proxy(&bucket);

    for key in &names {
        // Percent-encoded, then with every character that a path may carry
        // literally sent literally.
        let mut targets = vec![target(key), literal_target(key)];
        targets.dedup();
        for path in targets {
            let response = get(proxy.addr(), &path, &[]);
            assert_eq!(
                response.status,
                200,
                "GET {path} (key {key:?}): {}",
                response.body_text()
            );
            assert_eq!(response.body_text(), *key, "GET {path}");
            assert_eq!(
                response.header("content-type"),
                Some("text/plain; charset=utf-8"),
                "GET {path}"
            );
            let head_response = head(proxy.addr(), &path, &[]);
            assert_eq!(head_response.status, 200, "HEAD {path} (key {key:?})");
            assert_eq!(head_response.content_length(), Some(key.len() as u64), "HEAD {path}");
        }
    }

    // `+` is a literal plus, never a space: the key with spaces in place of
    // the plus signs does not exist.
    let spaced = get(proxy.addr(), &target("prod/names/plus sign.txt"), &[]);
    assert_eq!(spaced.status, 404);
    // `//` is part of the key, so the single-slash form names another key.
    let single_slash = get(proxy.addr(), &target("prod/names/double/slash.txt"), &[]);
    assert_eq!(single_slash.status, 404);
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn octet_stream_types_from_extension() {
    let bucket = RgwBucket::create("types");
    let cases = [
        ("prod/t/t1/Binary.png", Some("binary/octet-stream"), "image/png"),
        (
            "prod/t/t2/Application.jpg",
            Some("application/octet-stream"),
            "image/jpeg",
        ),
        ("prod/t/t3/Untyped.webp", None, "image/webp"),
        ("prod/t/t4/Binary.pdf", Some("binary/octet-stream"), "application/pdf"),
        ("prod/t/t5/Binary.svg", Some("binary/octet-stream"), "image/svg+xml"),
        // A specific type from S3 wins over the extension.
        ("prod/t/t6/Typed.png", Some("image/webp"), "image/webp"),
    ];
    for (key, stored_type, _) in cases {
        let headers: Vec<(&str, &str)> = stored_type.map(|value| ("content-type", value)).into_iter().collect();
        bucket.put(key, &png(2, 2), &headers);
    }
    // RGW 16 stores an object put without Content-Type as
    // binary/octet-stream.
    let untyped = bucket.get_object("prod/t/t3/Untyped.webp", &[]);
    eprintln!(
        "RGW's Content-Type for an object put without one: {:?}",
        untyped.header("content-type")
    );
    let proxy = start_proxy(&bucket);

    for (key, stored_type, expected) in cases {
        let response = get(proxy.addr(), &target(key), &[]);
        assert_eq!(response.status, 200, "{key}");
        assert_eq!(
            response.header("content-type"),
            Some(expected),
            "{key} stored as {stored_type:?}"
        );
        let head_response = head(proxy.addr(), &target(key), &[]);
        assert_eq!(head_response.header("content-type"), Some(expected), "HEAD {key}");
    }

    let svg = get(proxy.addr(), &target("prod/t/t5/Binary.svg"), &[]);
    let policy = svg.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("sandbox"), "SVG CSP is {policy:?}");
    assert!(policy.starts_with("default-src 'none'"), "SVG CSP is {policy:?}");
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn content_disposition_by_type() {
    let bucket = RgwBucket::create("disposition");
    bucket.put_typed(keys::HTML, &fixtures::html_with_script(), "text/html; charset=utf-8");
    bucket.put(
        keys::PDF,
        &fixtures::pdf(),
        &[
            ("content-type", "application/pdf"),
            ("content-disposition", "inline; filename=\"Document.pdf\""),
        ],
    );
    bucket.put(
        "prod/1/13/Page.xhtml",
        b"<html xmlns=\"http://www.w3.org/1999/xhtml\"/>",
        &[
            ("content-type", "application/xhtml+xml"),
            ("content-disposition", "inline; filename=\"Page.xhtml\""),
        ],
    );
    let proxy = start_proxy(&bucket);

    // HTML is downloaded, never rendered on the image domain.
    let html = get(proxy.addr(), &target(keys::HTML), &[]);
    assert_eq!(html.status, 200);
    let disposition = html.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment"), "HTML: {disposition:?}");
    assert_eq!(
        html.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );

    // A PDF keeps the disposition stored in RGW.
    let pdf = get(proxy.addr(), &target(keys::PDF), &[]);
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert_eq!(
        pdf.header("content-disposition"),
        Some("inline; filename=\"Document.pdf\"")
    );

    // An inline disposition stored with XHTML becomes an attachment that
    // keeps the file name.
    let xhtml = get(proxy.addr(), &target("prod/1/13/Page.xhtml"), &[]);
    let disposition = xhtml.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("attachment"), "XHTML: {disposition:?}");
    assert!(disposition.contains("Page.xhtml"), "XHTML: {disposition:?}");
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn empty_object_has_zero_length() {
    let bucket = RgwBucket::create("empty");
    bucket.put_typed(keys::EMPTY, b"", "text/plain");
    let proxy = start_proxy(&bucket);

    let response = get(proxy.addr(), &target(keys::EMPTY), &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.framing, Framing::ContentLength(0));
    assert!(response.body.is_empty());
    assert!(response.has_header("etag"));
    let head_response = head(proxy.addr(), &target(keys::EMPTY), &[]);
    assert_eq!(head_response.status, 200);
    assert_eq!(head_response.content_length(), Some(0));
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn gzip_object_passes_through() {
    let bucket = RgwBucket::create("gzip");
    let json = br#"{"title":"Data","values":[1,2,3],"note":"stored gzip-encoded"}"#.repeat(50);
    let compressed = gzip(&json);
    bucket.put(
        keys::GZIP_JSON,
        &compressed,
        &[("content-type", "application/json"), ("content-encoding", "gzip")],
    );
    let proxy = start_proxy(&bucket);

    for accept_encoding in [None, Some("gzip"), Some("identity")] {
        let headers: Vec<(&str, &str)> = accept_encoding
            .map(|value| ("Accept-Encoding", value))
            .into_iter()
            .collect();
        let response = get(proxy.addr(), &target(keys::GZIP_JSON), &headers);
        let context = format!("Accept-Encoding {accept_encoding:?}");
        assert_eq!(response.status, 200, "{context}");
        assert_eq!(response.body, compressed, "{context}: body changed on the way");
        assert_eq!(response.header("content-encoding"), Some("gzip"), "{context}");
        assert_eq!(response.header("content-type"), Some("application/json"), "{context}");
        assert_eq!(response.content_length(), Some(compressed.len() as u64), "{context}");
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn not_modified_on_get_and_head() {
    let bucket = RgwBucket::create("notmodified");
    let etag = bucket.put_typed(keys::PNG, &png(8, 8), "image/png");
    let (_, last_modified) = rgw_validators(&bucket, keys::PNG);
    let later = httpdate::fmt_http_date(parse_http_date(&last_modified) + Duration::from_secs(60));
    let weak = format!("W/{etag}");
    let list = format!("\"other\", {etag}");
    let list_weak = format!("\"other\", W/{etag}");
    // RGW 16 returns 304 to the exact tag and to If-Modified-Since, without
    // ETag and Last-Modified. It returns 200 to a weak tag, a list and `*`,
    // and the proxy then evaluates the condition itself.
    let cases: Vec<(&str, &str)> = vec![
        ("If-None-Match", &etag),
        ("If-None-Match", &weak),
        ("If-None-Match", &list),
        ("If-None-Match", &list_weak),
        ("If-None-Match", "*"),
        ("If-Modified-Since", &last_modified),
        ("If-Modified-Since", &later),
    ];
    let proxy = start_proxy(&bucket);

    for (name, value) in &cases {
        for method in ["GET", "HEAD"] {
            let context = format!("{method} with {name}: {value}");
            let response = common::request(proxy.addr(), method, &target(keys::PNG), &[(name, value)]);
            assert_eq!(response.status, 304, "{context}");
            assert_eq!(response.header("etag"), Some(etag.as_str()), "{context}: ETag");
            let sent_last_modified = response
                .header("last-modified")
                .unwrap_or_else(|| panic!("{context}: no Last-Modified"));
            assert_eq!(
                parse_http_date(sent_last_modified),
                parse_http_date(&last_modified),
                "{context}: Last-Modified"
            );
            assert_eq!(
                response.header("cache-control"),
                Some(DEFAULT_CACHE_CONTROL),
                "{context}: Cache-Control"
            );
            assert!(response.body.is_empty(), "{context}: body");
            assert!(!response.has_header("content-length"), "{context}: Content-Length");
            assert_common_headers(&response, &context);
        }
    }

    // If-None-Match takes precedence over If-Modified-Since: a tag that does
    // not match gives the object even when the date would give 304.
    let earlier = httpdate::fmt_http_date(parse_http_date(&last_modified) - Duration::from_secs(3600));
    let full_cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("If-None-Match", "\"other\"")],
        vec![("If-None-Match", "\"other\""), ("If-Modified-Since", &last_modified)],
        vec![("If-Modified-Since", &earlier)],
    ];
    for headers in &full_cases {
        for method in ["GET", "HEAD"] {
            let response = common::request(proxy.addr(), method, &target(keys::PNG), headers);
            assert_eq!(response.status, 200, "{method} with {headers:?}");
            assert_eq!(
                response.header("etag"),
                Some(etag.as_str()),
                "{method} with {headers:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn precondition_failed_on_get_and_head() {
    let bucket = RgwBucket::create("preconditions");
    let bytes = png(8, 8);
    let etag = bucket.put_typed(keys::PNG, &bytes, "image/png");
    let (_, last_modified) = rgw_validators(&bucket, keys::PNG);
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let weak = format!("W/{etag}");
    let list = format!("\"other\", {etag}");
    let proxy = start_proxy(&bucket);

    let failing: Vec<(&str, &str)> = vec![
        ("If-Match", "\"00000000000000000000000000000000\""),
        ("If-Match", "\"a\", \"b\""),
        // If-Match compares strongly, so a weak tag never matches.
        ("If-Match", &weak),
        ("If-Unmodified-Since", past),
    ];
    for (name, value) in &failing {
        for method in ["GET", "HEAD"] {
            let context = format!("{method} with {name}: {value}");
            let response = common::request(proxy.addr(), method, &target(keys::PNG), &[(name, value)]);
            assert_eq!(response.status, 412, "{context}");
            assert_eq!(response.header("cache-control"), Some("no-store"), "{context}");
            assert_common_headers(&response, &context);
            if method == "GET" {
                assert_ne!(response.body, bytes, "{context}: the object was sent");
            }
        }
    }

    // If-Match takes precedence over If-Unmodified-Since.
    let passing: Vec<Vec<(&str, &str)>> = vec![
        vec![("If-Match", &etag)],
        vec![("If-Match", &list)],
        vec![("If-Unmodified-Since", &last_modified)],
        vec![("If-Match", &etag), ("If-Unmodified-Since", past)],
    ];
    for headers in &passing {
        for method in ["GET", "HEAD"] {
            let response = common::request(proxy.addr(), method, &target(keys::PNG), headers);
            assert_eq!(response.status, 200, "{method} with {headers:?}");
            assert_eq!(
                response.header("etag"),
                Some(etag.as_str()),
                "{method} with {headers:?}"
            );
            if method == "GET" {
                assert_eq!(response.body, bytes, "{method} with {headers:?}");
            }
        }
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn if_match_star_on_existing_object() {
    let bucket = RgwBucket::create("ifmatchstar");
    let bytes = png(8, 8);
    bucket.put_typed(keys::PNG, &bytes, "image/png");
    // RFC 9110 section 13.1.1: `If-Match: *` is true when the object
    // exists. RGW 16 compares `*` with the ETag as if it were a tag and
    // returns 412.
    let direct = bucket.get_object(keys::PNG, &[("if-match", "*")]);
    eprintln!(
        "RGW's own status for If-Match: * on an existing object: {}",
        direct.status
    );
    let proxy = start_proxy(&bucket);

    for method in ["GET", "HEAD"] {
        let response = common::request(proxy.addr(), method, &target(keys::PNG), &[("If-Match", "*")]);
        assert_eq!(response.status, 200, "{method} with If-Match: *");
        if method == "GET" {
            assert_eq!(response.body, bytes, "{method} with If-Match: *");
        }
    }
    let missing = get(proxy.addr(), &target("prod/a/ab/Missing.png"), &[("If-Match", "*")]);
    assert!(
        missing.status == 404 || missing.status == 412,
        "GET of a missing key with If-Match: * gave {}",
        missing.status
    );
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn ranges_on_get_and_head() {
    let bucket = RgwBucket::create("ranges");
    let bytes = webm(300 * 1024);
    let total = bytes.len();
    bucket.put_typed(keys::WEBM, &bytes, "video/webm");
    let proxy = start_proxy(&bucket);

    let cases: Vec<(String, usize, usize)> = vec![
        ("bytes=1000-1999".to_owned(), 1000, 1999),
        ("bytes=0-0".to_owned(), 0, 0),
        ("bytes=0-".to_owned(), 0, total - 1),
        (format!("bytes=0-{}", total - 1), 0, total - 1),
        (format!("bytes=0-{}", total + 1000), 0, total - 1),
        ("bytes=-500".to_owned(), total - 500, total - 1),
        (format!("bytes=-{}", total + 10), 0, total - 1),
        (format!("bytes={}-", total - 10), total - 10, total - 1),
    ];
    for (range, first, last) in &cases {
        let response = get(proxy.addr(), &target(keys::WEBM), &[("Range", range)]);
        assert_eq!(response.status, 206, "GET {range}");
        let expected_range = format!("bytes {first}-{last}/{total}");
        assert_eq!(
            response.header("content-range"),
            Some(expected_range.as_str()),
            "GET {range}"
        );
        assert_eq!(
            response.content_length(),
            Some((last - first + 1) as u64),
            "GET {range}"
        );
        assert!(response.body == bytes[*first..=*last], "GET {range}: wrong bytes");
        assert_eq!(response.header("content-type"), Some("video/webm"), "GET {range}");
        assert_eq!(
            response.header("cache-control"),
            Some(DEFAULT_CACHE_CONTROL),
            "GET {range}"
        );
        assert_object_security_headers(&response, range);

        let head_response = head(proxy.addr(), &target(keys::WEBM), &[("Range", range)]);
        assert_eq!(head_response.status, 206, "HEAD {range}");
        assert_eq!(
            comparable_headers(&head_response),
            comparable_headers(&response),
            "HEAD and GET with {range}"
        );
    }

    // If-Range is checked by the proxy: the ETag or the Last-Modified date
    // of the object keeps the range, any other validator gives the whole
    // object.
    let (etag, last_modified) = rgw_validators(&bucket, keys::WEBM);
    let if_range_cases = [
        (etag.as_str(), 206),
        ("\"00000000000000000000000000000000\"", 200),
        (last_modified.as_str(), 206),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
    ];
    for (if_range, expected_status) in if_range_cases {
        let headers = [("Range", "bytes=0-99"), ("If-Range", if_range)];
        let response = get(proxy.addr(), &target(keys::WEBM), &headers);
        assert_eq!(response.status, expected_status, "GET with If-Range: {if_range}");
        if expected_status == 206 {
            assert!(
                response.body == bytes[..100],
                "GET with If-Range: {if_range}: wrong bytes"
            );
        } else {
            assert!(
                response.body == bytes,
                "GET with If-Range: {if_range}: not the whole object"
            );
        }
    }

    // Several ranges and malformed values are ignored: the whole object.
    for range in ["bytes=0-1,5-6", "bytes=x-y", "items=0-10", "bytes=10-5"] {
        let response = get(proxy.addr(), &target(keys::WEBM), &[("Range", range)]);
        assert_eq!(response.status, 200, "GET {range}");
        assert!(response.body == bytes, "GET {range}: not the whole object");
        assert!(!response.has_header("content-range"), "GET {range}");
        let head_response = head(proxy.addr(), &target(keys::WEBM), &[("Range", range)]);
        assert_eq!(head_response.status, 200, "HEAD {range}");
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn unsatisfiable_range_gives_416() {
    let bucket = RgwBucket::create("range416");
    let bytes = pattern_bytes(10_000, 7);
    bucket.put_typed(keys::WEBM, &bytes, "video/webm");
    let proxy = start_proxy(&bucket);

    for range in ["bytes=10000-", "bytes=20000-30000"] {
        let response = get(proxy.addr(), &target(keys::WEBM), &[("Range", range)]);
        assert_eq!(response.status, 416, "GET {range}");
        assert_eq!(response.header("cache-control"), Some("no-store"), "GET {range}");
        assert_common_headers(&response, range);
        let head_response = head(proxy.addr(), &target(keys::WEBM), &[("Range", range)]);
        assert_eq!(head_response.status, 416, "HEAD {range}");
        assert_eq!(
            comparable_headers(&head_response)
                .into_iter()
                .filter(|(name, _)| name != "content-length")
                .collect::<Vec<_>>(),
            comparable_headers(&response)
                .into_iter()
                .filter(|(name, _)| name != "content-length")
                .collect::<Vec<_>>(),
            "HEAD and GET with {range}"
        );
        // RFC 9110 section 15.5.17: a 416 to a byte range carries
        // `Content-Range: bytes */<length>`, as the README promises. RGW 16
        // sends no Content-Range with its 416.
        assert_eq!(
            response.header("content-range"),
            Some("bytes */10000"),
            "GET {range}: Content-Range of the 416"
        );
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn large_object_byte_for_byte() {
    let bucket = RgwBucket::create("large");
    let bytes = pattern_bytes(fixtures::LARGE_SIZE, fixtures::LARGE_SEED);
    bucket.put_typed(keys::LARGE, &bytes, "application/octet-stream");
    let proxy = start_proxy(&bucket);

    let started = Instant::now();
    let response = get(proxy.addr(), &target(keys::LARGE), &[]);
    let elapsed = started.elapsed();
    assert_eq!(response.status, 200);
    assert_eq!(response.body_error, None);
    assert_eq!(response.framing, Framing::ContentLength(bytes.len() as u64));
    assert_eq!(response.body.len(), bytes.len());
    assert!(response.body == bytes, "the 20 MiB body differs from what was stored");
    eprintln!("20 MiB through the proxy from RGW in {elapsed:?}");

    let head_response = head(proxy.addr(), &target(keys::LARGE), &[]);
    assert_eq!(head_response.content_length(), Some(bytes.len() as u64));
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn idle_connection_closed_by_rgw() {
    // The proxy keeps idle S3 connections for up to 4 seconds, so RGW must
    // close them sooner for a pooled connection to go stale.
    let bucket = RgwBucket::create("idle");
    let Some(timeout_ms) = bucket.settings().request_timeout_ms.filter(|ms| *ms <= 2500) else {
        eprintln!(
            "SKIPPED: S3_PROXY_CEPH_REQUEST_TIMEOUT_MS is unset or above 2500, so RGW does not close \
             idle connections before the proxy drops them itself"
        );
        return;
    };
    let bytes = png(4, 4);
    bucket.put_typed(keys::PNG, &bytes, "image/png");
    // A long probe interval keeps the readiness probe off the pooled
    // connections during the test.
    let proxy = ProxyProcess::spawn_for(&bucket, &[("PROXY_READY_INTERVAL", "10m")]);

    let first = get(proxy.addr(), &target(keys::PNG), &[("X-Request-Id", "idle-first")]);
    assert_eq!(first.status, 200);
    std::thread::sleep(Duration::from_millis(timeout_ms + 1500));

    let second = get(proxy.addr(), &target(keys::PNG), &[("X-Request-Id", "idle-second")]);
    assert_eq!(second.status, 200, "{}", second.body_text());
    assert_eq!(second.body, bytes);
    // ureq 3.5 reads a pooled connection without blocking before reusing it
    // and drops it when RGW has closed it, so this request needs no retry.
    // A close that races with the request would be retried by the proxy.
    let access = access_line(&proxy, "idle-second");
    assert_eq!(access["s3_status"], 200, "{access}");
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn missing_key_for_owner_is_404() {
    let bucket = RgwBucket::create("missing");
    bucket.put_typed(keys::PNG, &png(2, 2), "image/png");
    // The owner may list the bucket, so RGW returns NoSuchKey.
    let direct = bucket.get_object("prod/a/ab/Missing.png", &[]);
    assert_eq!(direct.status, 404);
    assert!(direct.body_text().contains("NoSuchKey"), "{}", direct.body_text());
    let proxy = start_proxy(&bucket);

    for method in ["GET", "HEAD"] {
        let response = common::request(proxy.addr(), method, &target("prod/a/ab/Missing.png"), &[]);
        assert_eq!(response.status, 404, "{method}");
        assert_eq!(
            response.header("cache-control"),
            Some(NOT_FOUND_CACHE_CONTROL),
            "{method}"
        );
        assert_common_headers(&response, method);
        if method == "GET" {
            assert_eq!(response.body_text(), "Not Found\n");
        }
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn missing_key_denied_to_reader_is_404() {
    let bucket = RgwBucket::create("reader");
    let Some((reader_access_key, reader_secret_key)) = bucket.settings().reader.clone() else {
        eprintln!(
            "SKIPPED: S3_PROXY_CEPH_READER_ACCESS_KEY and S3_PROXY_CEPH_READER_SECRET_KEY are not set, \
             so the case of credentials without ListBucket is not checked"
        );
        return;
    };
    let bytes = png(4, 4);
    bucket.put_typed(keys::PNG, &bytes, "image/png");
    // The reader may get objects but not list the bucket.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam:::user/reader"]},
            "Action": ["s3:GetObject"],
            "Resource": [format!("arn:aws:s3:::{}/*", bucket.name())],
        }],
    });
    bucket.put_policy(&policy.to_string());

    // Without ListBucket, RGW hides whether a key exists: 403 AccessDenied.
    let reader = common::SigningCredentials {
        access_key: reader_access_key.clone(),
        secret_key: reader_secret_key.clone(),
        region: bucket.settings().region.clone(),
    };
    let endpoint = &bucket.settings().endpoint;
    let existing = send_signed(endpoint, &reader, "GET", &bucket.object_path(keys::PNG), &[], b"");
    assert_eq!(existing.status, 200, "the policy does not let the reader get objects");
    let missing_key = "prod/a/ab/Missing.png";
    let denied = send_signed(endpoint, &reader, "GET", &bucket.object_path(missing_key), &[], b"");
    assert_eq!(denied.status, 403, "{}", denied.body_text());
    assert!(denied.body_text().contains("AccessDenied"), "{}", denied.body_text());

    let backend = bucket.with_proxy_credentials(&reader_access_key, &reader_secret_key);
    let proxy = ProxyProcess::spawn_for(&backend, &[]);

    let served = get(proxy.addr(), &target(keys::PNG), &[]);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, bytes);
    for method in ["GET", "HEAD"] {
        let request_id = format!("reader-missing-{}", method.to_ascii_lowercase());
        let response = common::request(
            proxy.addr(),
            method,
            &target(missing_key),
            &[("X-Request-Id", &request_id)],
        );
        assert_eq!(response.status, 404, "{method}");
        assert_eq!(
            response.header("cache-control"),
            Some(NOT_FOUND_CACHE_CONTROL),
            "{method}"
        );
        let access = access_line(&proxy, &request_id);
        assert_eq!(access["s3_status"], 403, "{method}: {access}");
        assert_eq!(access["s3_error_code"], "AccessDenied", "{method}: {access}");
        let warned = log_lines_for(&proxy, &request_id)
            .iter()
            .any(|line| line["level"] == "warn" && line["s3_error_code"] == "AccessDenied");
        assert!(warned, "{method}: no warn line naming AccessDenied");
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn wrong_secret_gives_502() {
    let bucket = RgwBucket::create("badsecret");
    let bytes = png(4, 4);
    bucket.put_typed(keys::PNG, &bytes, "image/png");
    let wrong_secret = format!("{}-wrong", bucket.settings().secret_key);
    let backend = bucket.with_proxy_credentials(&bucket.settings().access_key, &wrong_secret);
    let proxy = ProxyProcess::spawn_for(&backend, &[]);

    for method in ["GET", "HEAD"] {
        let request_id = format!("wrong-secret-{}", method.to_ascii_lowercase());
        let response = common::request(
            proxy.addr(),
            method,
            &target(keys::PNG),
            &[("X-Request-Id", &request_id)],
        );
        assert_eq!(response.status, 502, "{method}");
        assert_eq!(response.header("cache-control"), Some("no-store"), "{method}");
        assert_common_headers(&response, method);
        if method == "GET" {
            let body = response.body_text();
            assert_eq!(body, "Bad Gateway\n");
        }

        let access = access_line(&proxy, &request_id);
        assert_eq!(access["s3_status"], 403, "{method}: {access}");
        assert_eq!(access["s3_error_code"], "SignatureDoesNotMatch", "{method}: {access}");
        let error_logged = log_lines_for(&proxy, &request_id)
            .iter()
            .any(|line| line["level"] == "error" && line["s3_error_code"] == "SignatureDoesNotMatch");
        assert!(error_logged, "{method}: no error line naming SignatureDoesNotMatch");
    }
    let secret_logged = proxy.log_lines().iter().any(|line| line.contains(&wrong_secret));
    assert!(!secret_logged, "the secret key appears in the log");
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn wrong_bucket_gives_502_and_unready() {
    let bucket = RgwBucket::create("badbucket");
    bucket.put_typed(keys::PNG, &png(4, 4), "image/png");
    let missing_bucket = format!("{}-missing", bucket.name());
    let backend = bucket.with_proxy_bucket(&missing_bucket);
    let interval = [("PROXY_READY_INTERVAL", "200ms")];
    let proxy = ProxyProcess::spawn_for(&backend, &interval);
    let control = ProxyProcess::spawn_for(&bucket, &interval);

    let response = get(
        proxy.addr(),
        &target(keys::PNG),
        &[("X-Request-Id", "wrong-bucket-get")],
    );
    assert_eq!(response.status, 502);
    assert_eq!(response.body_text(), "Bad Gateway\n");
    assert!(!response.body_text().contains(&missing_bucket));
    let access = access_line(&proxy, "wrong-bucket-get");
    assert_eq!(access["s3_status"], 404, "{access}");
    assert_eq!(access["s3_error_code"], "NoSuchBucket", "{access}");
    let error_logged = log_lines_for(&proxy, "wrong-bucket-get")
        .iter()
        .any(|line| line["level"] == "error" && line["s3_error_code"] == "NoSuchBucket");
    assert!(error_logged, "no error line naming NoSuchBucket");

    // A HEAD response has no error document, and RGW sends 404 for a
    // missing bucket as for a missing key, so HEAD gives 404, as the README
    // states.
    let head_response = head(proxy.addr(), &target(keys::PNG), &[]);
    assert_eq!(head_response.status, 404);

    let (status, body) = poll_ready(proxy.admin_addr(), Duration::from_secs(5), |status, body| {
        status == 503 && body.contains("NoSuchBucket")
    });
    assert_eq!(status, 503, "/ready with a missing bucket: {body}");
    assert!(body.contains("NoSuchBucket"), "/ready gives no reason: {body}");
    let (control_status, control_body) =
        poll_ready(control.admin_addr(), Duration::from_secs(5), |status, _| status == 200);
    assert_eq!(control_status, 200, "/ready with the right bucket: {control_body}");
    // Several probe intervals later the proxy with the wrong bucket is still
    // unready.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(get(proxy.admin_addr(), "/ready", &[]).status, 503);
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn private_paths_never_reach_rgw() {
    let bucket = RgwBucket::create("private");
    let private_keys = [
        keys::DELETED,
        keys::TEMP,
        keys::THUMB_TEMP,
        keys::TRANSCODED_TEMP,
        keys::HTSECURE,
        keys::HTSECURE_NESTED,
        "deleted/0/h/9/toplevel.png",
        "temp/3/36/toplevel.png",
    ];
    let secret = b"private bytes that must not leave RGW";
    for key in private_keys {
        bucket.put_typed(key, secret, "image/png");
        // The object is there, so a request that reached RGW would get 200.
        let direct = bucket.get_object(key, &[]);
        assert_eq!(direct.status, 200, "{key} is not stored in RGW");
    }
    let proxy = ProxyProcess::spawn_for(&bucket, &[]);

    let mut request_count = 0;
    for key in private_keys {
        let mut targets = vec![target(key), literal_target(key)];
        // A percent-encoded letter decodes to the same key.
        targets.push(
            target(key)
                .replacen("temp/", "%74emp/", 1)
                .replacen("deleted/", "%64eleted/", 1),
        );
        targets.push(target(key).replacen(".htsecure", "%2Ehtsecure", 1));
        targets.sort();
        targets.dedup();
        for path in targets {
            for method in ["GET", "HEAD"] {
                request_count += 1;
                let request_id = format!("private-{request_count}");
                let response = common::request(proxy.addr(), method, &path, &[("X-Request-Id", &request_id)]);
                assert_eq!(response.status, 403, "{method} {path}");
                assert!(
                    !response.body.windows(secret.len()).any(|window| window == secret),
                    "{method} {path} leaked the object"
                );
                assert_common_headers(&response, &path);
                let access = access_line(&proxy, &request_id);
                assert_eq!(
                    access["s3_status"],
                    serde_json::Value::Null,
                    "{method} {path}: S3 was asked"
                );
                assert_eq!(access["refused"], "private_zone", "{method} {path}: {access}");
            }
        }
    }
}

#[test]
#[ignore = "needs Ceph RGW: run scripts/test-ceph"]
fn root_and_directories_never_list() {
    let bucket = RgwBucket::create("listing");
    bucket.put_typed(keys::PNG, &png(2, 2), "image/png");
    bucket.put_typed(keys::JPEG, &fixtures::jpeg(), "image/jpeg");
    // The owner may list the bucket: a ListObjects request would succeed.
    let listing = bucket.owner_request("GET", &format!("/{}/", bucket.name()), &[], b"");
    assert_eq!(listing.status, 200);
    assert!(listing.body_text().contains(keys::PNG));
    let proxy = start_proxy(&bucket);

    for path in [
        "/",
        "/prod/",
        "/prod/a/",
        "/prod/a/ab/",
        "/?list-type=2",
        "/prod/?prefix=prod",
    ] {
        let response = get(proxy.addr(), path, &[]);
        assert_eq!(response.status, 404, "GET {path}");
        let body = response.body_text();
        assert!(!body.contains("Name.png"), "GET {path} listed the bucket: {body}");
        assert!(
            !body.contains("ListBucketResult"),
            "GET {path} listed the bucket: {body}"
        );
    }
}
