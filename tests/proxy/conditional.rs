//! Conditional requests (RFC 9110 section 13) against plain s3s-fs, which
//! ignores the conditional headers so the proxy decides, and against the
//! wrapped s3s-fs that returns 304 and 412 itself as S3 does.

use std::time::{Duration, SystemTime};

use crate::common::{RawResponse, keys, request};
use crate::support::{CACHE_CONTROL, Site, conditional_site, exchange_then_closed, small_site};

/// Both backends, named for assertion messages.
fn sites() -> [(&'static str, &'static Site); 2] {
    [
        ("plain s3s-fs", small_site()),
        ("conditional s3s-fs", conditional_site()),
    ]
}

/// Returns the PNG's ETag and Last-Modified as the proxy sends them.
fn validators(site: &Site) -> (String, String) {
    let response = request(site.addr(), "GET", &site.fixture(keys::PNG).url_path(), &[]);
    assert_eq!(response.status, 200);
    let etag = response.header("etag").expect("an ETag").to_owned();
    let last_modified = response.header("last-modified").expect("a Last-Modified").to_owned();
    (etag, last_modified)
}

/// Formats `last_modified` moved by `seconds` as an HTTP date.
fn shifted(last_modified: &str, seconds: i64) -> String {
    let time = httpdate::parse_http_date(last_modified).expect("an HTTP date");
    let moved = if seconds >= 0 {
        time + Duration::from_secs(seconds.unsigned_abs())
    } else {
        time - Duration::from_secs(seconds.unsigned_abs())
    };
    httpdate::fmt_http_date(moved)
}

fn png_request(site: &Site, method: &str, headers: &[(&str, &str)]) -> RawResponse {
    request(site.addr(), method, &site.fixture(keys::PNG).url_path(), headers)
}

/// Sends each case as GET to both backends and checks the status, and the
/// whole body on 200.
fn check_cases(cases: &[(Vec<(&str, &str)>, u16)], site_name: &str, site: &Site) {
    let bytes = &site.fixture(keys::PNG).bytes;
    for (headers, status) in cases {
        let response = png_request(site, "GET", headers);
        assert_eq!(
            response.status,
            *status,
            "{site_name}: GET with {headers:?}: {}",
            response.body_text()
        );
        if *status == 200 {
            assert!(response.body == *bytes, "{site_name}: body with {headers:?}");
        }
    }
}

#[test]
fn if_none_match_forms() {
    for (name, site) in sites() {
        let (etag, _) = validators(site);
        let weak = format!("W/{etag}");
        let list = format!("\"0123abcd\", {etag}");
        let weak_list = format!("\"0123abcd\",{weak}");
        let cases = vec![
            (vec![("If-None-Match", etag.as_str())], 304),
            (vec![("If-None-Match", weak.as_str())], 304),
            (vec![("If-None-Match", list.as_str())], 304),
            (vec![("If-None-Match", weak_list.as_str())], 304),
            (vec![("If-None-Match", "*")], 304),
            (vec![("If-None-Match", "\"0123abcd\"")], 200),
            (vec![("If-None-Match", "\"0123abcd\", W/\"4567\"")], 200),
        ];
        check_cases(&cases, name, site);
    }
}

#[test]
fn if_modified_since_dates() {
    for (name, site) in sites() {
        let (_, last_modified) = validators(site);
        let later = shifted(&last_modified, 3600);
        let earlier = shifted(&last_modified, -3600);
        let cases = vec![
            (vec![("If-Modified-Since", last_modified.as_str())], 304),
            (vec![("If-Modified-Since", later.as_str())], 304),
            (vec![("If-Modified-Since", earlier.as_str())], 200),
            (vec![("If-Modified-Since", "yesterday")], 200),
        ];
        check_cases(&cases, name, site);
    }
}

#[test]
fn if_match_forms() {
    for (name, site) in sites() {
        let (etag, _) = validators(site);
        let weak = format!("W/{etag}");
        let list = format!("\"0123abcd\", {etag}");
        let cases = vec![
            (vec![("If-Match", etag.as_str())], 200),
            (vec![("If-Match", list.as_str())], 200),
            (vec![("If-Match", "*")], 200),
            (vec![("If-Match", "\"0123abcd\"")], 412),
            // If-Match compares strongly, so a weak tag never matches.
            (vec![("If-Match", weak.as_str())], 412),
        ];
        check_cases(&cases, name, site);
    }
}

#[test]
fn if_unmodified_since_dates() {
    for (name, site) in sites() {
        let (_, last_modified) = validators(site);
        let later = shifted(&last_modified, 3600);
        let earlier = shifted(&last_modified, -3600);
        let cases = vec![
            (vec![("If-Unmodified-Since", last_modified.as_str())], 200),
            (vec![("If-Unmodified-Since", later.as_str())], 200),
            (vec![("If-Unmodified-Since", earlier.as_str())], 412),
            (vec![("If-Unmodified-Since", "not a date")], 200),
        ];
        check_cases(&cases, name, site);
    }
}

#[test]
fn precedence_follows_rfc() {
    for (name, site) in sites() {
        let (etag, last_modified) = validators(site);
        let later = shifted(&last_modified, 3600);
        let earlier = shifted(&last_modified, -3600);
        let cases = vec![
            // If-None-Match decides alone when both it and If-Modified-Since are sent.
            (
                vec![("If-None-Match", "\"0123abcd\""), ("If-Modified-Since", later.as_str())],
                200,
            ),
            (
                vec![
                    ("If-None-Match", etag.as_str()),
                    ("If-Modified-Since", earlier.as_str()),
                ],
                304,
            ),
            // If-Match decides alone when both it and If-Unmodified-Since are sent.
            (
                vec![("If-Match", etag.as_str()), ("If-Unmodified-Since", earlier.as_str())],
                200,
            ),
            // A failed If-Match or If-Unmodified-Since is checked before If-None-Match.
            (
                vec![("If-Match", "\"0123abcd\""), ("If-None-Match", etag.as_str())],
                412,
            ),
            (
                vec![
                    ("If-Unmodified-Since", earlier.as_str()),
                    ("If-None-Match", etag.as_str()),
                ],
                412,
            ),
            (
                vec![
                    ("If-Unmodified-Since", later.as_str()),
                    ("If-Modified-Since", later.as_str()),
                ],
                304,
            ),
            // Preconditions are evaluated before Range.
            (vec![("If-None-Match", etag.as_str()), ("Range", "bytes=0-9")], 304),
            (vec![("If-Match", "\"0123abcd\""), ("Range", "bytes=0-9")], 412),
        ];
        check_cases(&cases, name, site);
    }
}

/// A server that ignores the conditions returns 416 for an unsatisfiable
/// range, but RFC 9110 evaluates the conditions first.
#[test]
fn preconditions_before_unsatisfiable_range() {
    for (name, site) in sites() {
        let (etag, _) = validators(site);
        let cases = vec![
            (vec![("If-None-Match", etag.as_str()), ("Range", "bytes=999999-")], 304),
            (vec![("If-Match", "\"0123abcd\""), ("Range", "bytes=999999-")], 412),
        ];
        check_cases(&cases, name, site);
    }
}

#[test]
fn not_modified_headers() {
    for (name, site) in sites() {
        let (etag, last_modified) = validators(site);
        let target = site.fixture(keys::PNG).url_path();
        let header_sets = [
            ("If-None-Match", etag.as_str()),
            ("If-Modified-Since", last_modified.as_str()),
        ];
        for header in header_sets {
            let (response, closed_without_body) = exchange_then_closed(site.addr(), "GET", &target, &[header]);
            assert_eq!(response.status, 304, "{name}: {header:?}");
            assert_eq!(response.header("etag"), Some(etag.as_str()), "{name}: {header:?}");
            assert_eq!(
                response.header("last-modified"),
                Some(last_modified.as_str()),
                "{name}: {header:?}"
            );
            assert_eq!(
                response.header("cache-control"),
                Some(CACHE_CONTROL),
                "{name}: {header:?}"
            );
            assert!(!response.has_header("content-length"), "{name}: {header:?}");
            assert!(!response.has_header("transfer-encoding"), "{name}: {header:?}");
            assert!(closed_without_body, "{name}: {header:?}: bytes after the 304 head");
        }
    }
}

#[test]
fn precondition_failed_body_is_plain() {
    for (name, site) in sites() {
        let response = png_request(site, "GET", &[("If-Match", "\"0123abcd\"")]);
        assert_eq!(response.status, 412, "{name}");
        assert_eq!(response.body_text(), "Precondition Failed\n", "{name}");
        assert!(!response.has_header("etag"), "{name}");
    }
}

#[test]
fn head_conditionals() {
    for (name, site) in sites() {
        let (etag, last_modified) = validators(site);
        let earlier = shifted(&last_modified, -3600);
        let cases = [
            (("If-None-Match", etag.as_str()), 304),
            (("If-None-Match", "\"0123abcd\""), 200),
            (("If-Modified-Since", last_modified.as_str()), 304),
            (("If-Modified-Since", earlier.as_str()), 200),
            (("If-Match", "\"0123abcd\""), 412),
            (("If-Match", etag.as_str()), 200),
            (("If-Unmodified-Since", earlier.as_str()), 412),
        ];
        for (header, status) in cases {
            let response = png_request(site, "HEAD", &[header]);
            assert_eq!(response.status, status, "{name}: HEAD with {header:?}");
            assert!(response.body.is_empty(), "{name}: HEAD with {header:?}");
        }
    }
}

#[test]
fn modified_object_served_again() {
    // A date from before the object existed makes every date condition
    // pass or fail the same way on both backends.
    let epoch = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    for (name, site) in sites() {
        let response = png_request(site, "GET", &[("If-Modified-Since", epoch.as_str())]);
        assert_eq!(response.status, 200, "{name}");
        assert!(response.body == site.fixture(keys::PNG).bytes, "{name}");
    }
}
