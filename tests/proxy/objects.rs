//! Objects served whole: bodies, Content-Type, framing, key mapping and HEAD.

use std::io::Read;

use crate::common::fixtures::{self, Fixture, LARGE_SIZE, keys};
use crate::common::{Framing, S3Server, get, head};
use crate::support::{
    encode_path_minimally, exchange_then_closed, extra_keys, fixture, headers_except, large_site, object_requests,
    requests_for_key, small_site, start_proxy,
};

/// Content-Type the proxy must send for a fixture: the stored one, or the
/// one its extension implies when none or a generic one is stored.
fn expected_content_type(fixture: &Fixture) -> &'static str {
    match (fixture.key.as_str(), fixture.content_type) {
        (keys::UNTYPED, None) => "image/png",
        (extra_keys::GENERIC_JPEG, _) => "image/jpeg",
        (extra_keys::GENERIC_SVG, _) => "image/svg+xml",
        (key, content_type) => content_type.unwrap_or_else(|| panic!("{key} has no Content-Type")),
    }
}

#[test]
fn public_fixtures_served_whole() {
    let site = small_site();
    let mut served = 0;
    for fixture in site.fixtures.public() {
        let key = &fixture.key;
        let response = get(site.addr(), &fixture.url_path(), &[]);
        assert_eq!(response.status, 200, "GET {key}: {}", response.body_text());
        assert!(response.body == fixture.bytes, "body of {key}");
        assert_eq!(
            response.header("content-type"),
            Some(expected_content_type(fixture)),
            "Content-Type of {key}"
        );
        let length = fixture.bytes.len() as u64;
        assert_eq!(response.content_length(), Some(length), "Content-Length of {key}");
        assert_eq!(response.framing, Framing::ContentLength(length), "framing of {key}");
        assert!(!response.has_header("transfer-encoding"), "Transfer-Encoding on {key}");
        served += 1;
    }
    assert!(served >= 30, "only {served} public fixtures");
}

#[test]
fn media_types_match_fixtures() {
    let site = small_site();
    let cases = [
        (keys::PNG, "image/png"),
        (keys::JPEG, "image/jpeg"),
        (keys::WEBP, "image/webp"),
        (keys::SVG, "image/svg+xml"),
        (keys::HTML, "text/html; charset=utf-8"),
        (keys::PDF, "application/pdf"),
        (keys::WEBM, "video/webm"),
        (keys::EMPTY, "text/plain"),
        (keys::UNTYPED, "image/png"),
        (extra_keys::GENERIC_JPEG, "image/jpeg"),
        (extra_keys::GENERIC_SVG, "image/svg+xml"),
        (extra_keys::UNKNOWN, "application/x-custom"),
    ];
    for (key, content_type) in cases {
        let response = get(site.addr(), &site.fixture(key).url_path(), &[]);
        assert_eq!(response.status, 200, "GET {key}");
        assert_eq!(response.header("content-type"), Some(content_type), "{key}");
    }
}

#[test]
fn empty_object_has_zero_length() {
    let site = small_site();
    let response = get(site.addr(), &site.fixture(keys::EMPTY).url_path(), &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("0"));
    assert!(response.body.is_empty());
    assert!(!response.has_header("transfer-encoding"));
}

#[test]
fn gzip_objects_stay_encoded() {
    let site = small_site();
    for key in [keys::GZIP_JSON, keys::GZIP_TEXT] {
        let fixture = site.fixture(key);
        let response = get(site.addr(), &fixture.url_path(), &[("Accept-Encoding", "gzip")]);
        assert_eq!(response.status, 200, "GET {key}");
        assert_eq!(response.header("content-encoding"), Some("gzip"), "{key}");
        assert!(response.body == fixture.bytes, "body of {key}");
        assert_eq!(response.body[..2], [0x1F, 0x8B], "gzip magic of {key}");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(response.body.as_slice())
            .read_to_end(&mut decoded)
            .unwrap_or_else(|err| panic!("{key} does not decode: {err}"));
        assert!(!decoded.is_empty(), "{key} decodes to nothing");
    }
}

#[test]
fn large_object_has_exact_length() {
    let site = large_site();
    let fixture = site.fixture(keys::LARGE);
    // tiny_http switches to chunked encoding for large bodies and for
    // clients that send TE; the proxy must keep Content-Length in both cases.
    let header_sets: [&[(&str, &str)]; 2] = [&[], &[("TE", "chunked")]];
    for headers in header_sets {
        let response = get(site.addr(), &fixture.url_path(), headers);
        assert_eq!(response.status, 200, "with {headers:?}");
        assert_eq!(response.content_length(), Some(LARGE_SIZE as u64), "with {headers:?}");
        assert!(!response.has_header("transfer-encoding"), "with {headers:?}");
        assert_eq!(response.body_error, None, "with {headers:?}");
        assert!(response.body == fixture.bytes, "body with {headers:?}");
    }
}

#[test]
fn names_reachable_encoded() {
    let site = small_site();
    for key in keys::NAMES {
        let target = site.fixture(key).url_path();
        let response = get(site.addr(), &target, &[]);
        assert_eq!(response.status, 200, "GET {target}: {}", response.body_text());
        assert_eq!(response.body, key.as_bytes(), "GET {target}");
    }
}

#[test]
fn names_reachable_raw() {
    let site = small_site();
    let mut differing = 0;
    for key in keys::NAMES {
        let target = encode_path_minimally(key);
        if target != site.fixture(key).url_path() {
            differing += 1;
        }
        let response = get(site.addr(), &target, &[]);
        assert_eq!(response.status, 200, "GET {target}: {}", response.body_text());
        assert_eq!(response.body, key.as_bytes(), "GET {target}");
    }
    assert!(differing >= 12, "only {differing} keys have a raw form");
}

#[test]
fn plus_is_literal() {
    let site = small_site();
    let response = get(site.addr(), "/prod/names/plus+sign.txt", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"prod/names/plus+sign.txt");
    // A plus decoded as a space would name another key, which does not exist.
    let space = get(site.addr(), "/prod/names/plus%20sign.txt", &[]);
    assert_eq!(space.status, 404);
}

#[test]
fn mediawiki_layout_served() {
    let site = small_site();
    let cases = [
        (keys::PNG, "/prod/a/ab/Name.png"),
        (keys::PNG_ARCHIVE, "/prod/archive/a/ab/20240101000000!Name.png"),
        (keys::PNG_ARCHIVE, "/prod/archive/a/ab/20240101000000%21Name.png"),
        (keys::PNG_THUMB, "/prod/thumb/a/ab/Name.png/120px-Name.png"),
        (
            keys::WEBM_TRANSCODED,
            "/prod/transcoded/f/f7/Clip.webm/Clip.webm.360p.vp9.webm",
        ),
    ];
    for (key, target) in cases {
        let response = get(site.addr(), target, &[]);
        assert_eq!(response.status, 200, "GET {target}");
        assert!(response.body == site.fixture(key).bytes, "body of {target}");
    }
}

#[test]
fn query_string_not_forwarded() {
    let site = small_site();
    let fixture = site.fixture(keys::PNG_THUMB);
    let before = requests_for_key(&site.s3, keys::PNG_THUMB).len();
    let queries = [
        "?1700000000",
        "?acl",
        "?versionId=1",
        "?list-type=2",
        "?uploads",
        "?x-id=DeleteObject",
    ];
    for query in queries {
        let target = format!("{}{query}", fixture.url_path());
        let response = get(site.addr(), &target, &[]);
        assert_eq!(response.status, 200, "GET {target}");
        assert!(response.body == fixture.bytes, "body of {target}");
    }
    let requests = requests_for_key(&site.s3, keys::PNG_THUMB);
    assert!(
        requests.len() >= before + queries.len(),
        "S3 saw {} requests for the key",
        requests.len() - before
    );
    for request in &requests {
        assert_eq!(request.query, None, "query sent to S3 for {}", request.path);
    }
}

#[test]
fn bucket_query_not_forwarded() {
    let site = small_site();
    let before = object_requests(&site.s3).len();
    let response = get(site.addr(), "/?list-type=2", &[]);
    assert_eq!(response.status, 404);
    assert!(!response.body_text().contains("<"), "{}", response.body_text());
    let after = object_requests(&site.s3);
    let listings: Vec<_> = after[before.min(after.len())..]
        .iter()
        .filter(|request| request.query.is_some())
        .collect();
    assert!(listings.is_empty(), "S3 received {listings:?}");
}

#[test]
fn head_matches_get() {
    let site = small_site();
    let ignored = ["date", "x-request-id"];
    let mut targets: Vec<String> = site.fixtures.public().map(Fixture::url_path).collect();
    for target in ["/prod/missing.png", "/prod/deleted/x.png", "/prod/%zz", "/prod/"] {
        targets.push(target.to_owned());
    }
    for target in targets {
        let full = get(site.addr(), &target, &[]);
        let (headers_only, closed_without_body) = exchange_then_closed(site.addr(), "HEAD", &target, &[]);
        assert_eq!(headers_only.status, full.status, "status of HEAD {target}");
        assert_eq!(
            headers_except(&headers_only, &ignored),
            headers_except(&full, &ignored),
            "headers of HEAD {target}"
        );
        assert!(closed_without_body, "HEAD {target} sent bytes after the headers");
    }
}

#[test]
fn head_of_large_object() {
    let site = large_site();
    let response = head(site.addr(), &site.fixture(keys::LARGE).url_path(), &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), Some(LARGE_SIZE as u64));
    assert!(!response.has_header("transfer-encoding"));
}

/// The S3 client keeps connections alive, so a run of requests does not
/// open a TCP connection to S3 for each object.
#[test]
fn s3_connections_reused() {
    let s3 = S3Server::start();
    let fixture = fixtures::seed(&s3, vec![fixture(keys::PNG, fixtures::png(6, 6), Some("image/png"))]);
    let proxy = start_proxy(&s3, &[("PROXY_READY_INTERVAL", "1m")]);
    let target = fixture.get(keys::PNG).url_path();
    // The first request may open the connection the others reuse.
    assert_eq!(get(proxy.addr(), &target, &[]).status, 200);
    let opened_before = s3.connections_accepted();
    for method in ["GET", "GET", "HEAD", "GET", "HEAD", "GET"] {
        // The pause lets the worker return the connection to the pool after
        // the client has its response.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let response = crate::common::request(proxy.addr(), method, &target, &[]);
        assert_eq!(response.status, 200, "{method}");
    }
    let opened = s3.connections_accepted() - opened_before;
    assert!(opened <= 1, "{opened} new S3 connections for 6 requests");
}
