//! Response headers: security policy, caching, Server, request ids, and
//! what never passes from S3 to the client.

use std::time::Duration;

use crate::common::raw_http::try_raw_request;
use crate::common::{PutOptions, RawResponse, S3Server, get, keys, raw_request, request};
use crate::support::{
    CACHE_CONTROL, CACHE_CONTROL_NOT_FOUND, HeaderList, LOCKED_CSP, SVG_CSP, extra_keys, is_generated_request_id,
    small_site, start_proxy,
};

const SERVER: &str = concat!("s3-proxy/", env!("CARGO_PKG_VERSION"));

/// Returns one response of every kind the proxy sends, each with its
/// expected status.
fn sample_responses() -> Vec<(String, u16, RawResponse)> {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    let webm = site.fixture(keys::WEBM).url_path();
    let etag = get(site.addr(), &png, &[])
        .header("etag")
        .expect("ETag of the PNG")
        .to_owned();
    let long_key = format!("/prod/{}", "a".repeat(1100));
    let cases: Vec<(&str, String, HeaderList, u16)> = vec![
        ("GET", png.clone(), vec![], 200),
        ("HEAD", png.clone(), vec![], 200),
        ("GET", webm.clone(), vec![("Range", "bytes=0-9")], 206),
        ("GET", png.clone(), vec![("If-None-Match", etag.as_str())], 304),
        ("GET", site.fixture(keys::SVG).url_path(), vec![], 200),
        ("GET", site.fixture(keys::HTML).url_path(), vec![], 200),
        ("GET", "/prod/missing/File.png".to_owned(), vec![], 404),
        ("HEAD", "/prod/missing/File.png".to_owned(), vec![], 404),
        ("GET", site.fixture(keys::DELETED).url_path(), vec![], 403),
        ("GET", "/prod/%zz.png".to_owned(), vec![], 400),
        ("GET", long_key, vec![], 414),
        ("GET", "/prod/".to_owned(), vec![], 404),
        ("PUT", png.clone(), vec![("Content-Length", "0")], 405),
        ("GET", png.clone(), vec![("If-Match", "\"0123\"")], 412),
        ("GET", webm, vec![("Range", "bytes=999999999-")], 416),
        ("GET", "/health".to_owned(), vec![], 200),
    ];
    cases
        .into_iter()
        .map(|(method, target, headers, status)| {
            let response = request(site.addr(), method, &target, &headers);
            (format!("{method} {target:.80}"), status, response)
        })
        .collect()
}

#[test]
fn sample_statuses_as_expected() {
    for (name, status, response) in sample_responses() {
        assert_eq!(response.status, status, "{name}: {}", response.body_text());
    }
}

#[test]
fn nosniff_on_every_response() {
    for (name, _, response) in sample_responses() {
        assert_eq!(response.header_all("x-content-type-options"), ["nosniff"], "{name}");
    }
}

#[test]
fn referrer_and_corp_on_every_response() {
    for (name, _, response) in sample_responses() {
        assert_eq!(response.header("referrer-policy"), Some("no-referrer"), "{name}");
        assert_eq!(
            response.header("cross-origin-resource-policy"),
            Some("cross-origin"),
            "{name}"
        );
    }
}

#[test]
fn server_is_proxy_on_every_response() {
    for (name, _, response) in sample_responses() {
        assert_eq!(response.header_all("server"), [SERVER], "{name}");
    }
}

#[test]
fn no_amz_header_on_any_response() {
    for (name, _, response) in sample_responses() {
        let amz: Vec<_> = response
            .headers
            .iter()
            .filter(|(header, _)| header.to_ascii_lowercase().starts_with("x-amz"))
            .collect();
        assert!(amz.is_empty(), "{name} sent {amz:?}");
    }
}

#[test]
fn proxy_responses_are_locked_down() {
    for (name, status, response) in sample_responses() {
        if ![400, 403, 404, 405, 412, 414, 416].contains(&status) {
            continue;
        }
        assert_eq!(response.header("content-security-policy"), Some(LOCKED_CSP), "{name}");
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{name}"
        );
    }
}

/// Requests that tiny_http rejects before the proxy receives them.
#[test]
#[ignore = "known limit: tiny_http writes its own 400, 417 and 505 responses, with its Server header and no security headers"]
fn malformed_requests_get_proxy_headers() {
    let site = small_site();
    let cases: [(&str, &[u8]); 4] = [
        ("request line", b"GARBAGE\r\n\r\n"),
        (
            "header line",
            b"GET /prod/a.png HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        ),
        (
            "HTTP/2.0",
            b"GET /prod/a.png HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "Expect",
            b"GET /prod/a.png HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n",
        ),
    ];
    for (name, bytes) in cases {
        let response =
            try_raw_request(site.addr(), bytes, Duration::from_secs(5)).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(response.status >= 400, "{name}: {}", response.status);
        assert_eq!(response.header_all("server"), [SERVER], "{name}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"), "{name}");
    }
}

#[test]
fn svg_gets_script_blocking_csp() {
    let site = small_site();
    // The second SVG is stored as application/octet-stream and typed by its
    // extension, so it needs the same policy.
    for key in [keys::SVG, extra_keys::GENERIC_SVG] {
        for method in ["GET", "HEAD"] {
            let response = request(site.addr(), method, &site.fixture(key).url_path(), &[]);
            assert_eq!(response.status, 200, "{method} {key}");
            assert_eq!(response.header("content-type"), Some("image/svg+xml"), "{method} {key}");
            assert_eq!(
                response.header("content-security-policy"),
                Some(SVG_CSP),
                "{method} {key}"
            );
            assert_eq!(response.header("content-disposition"), None, "{method} {key}");
        }
    }
}

#[test]
fn executable_types_are_attachments() {
    let site = small_site();
    let cases = [
        (keys::HTML, "attachment"),
        (extra_keys::XML, "attachment"),
        (extra_keys::XHTML, "attachment"),
        (extra_keys::JAVASCRIPT, "attachment"),
        (extra_keys::UNKNOWN, "attachment"),
        (extra_keys::NAMED_HTML, "attachment; filename=\"Named.html\""),
    ];
    for (key, disposition) in cases {
        let response = get(site.addr(), &site.fixture(key).url_path(), &[]);
        assert_eq!(response.status, 200, "GET {key}");
        assert_eq!(response.header("content-disposition"), Some(disposition), "{key}");
        assert_eq!(response.header("content-security-policy"), Some(LOCKED_CSP), "{key}");
    }
}

#[test]
fn displayable_disposition_kept() {
    let site = small_site();
    let cases = [
        (extra_keys::NAMED_PNG, Some("inline; filename=\"Named.png\"")),
        (keys::PDF, Some("inline; filename=\"Document.pdf\"")),
        (keys::PNG, None),
        (keys::WEBM, None),
    ];
    for (key, disposition) in cases {
        let response = get(site.addr(), &site.fixture(key).url_path(), &[]);
        assert_eq!(response.status, 200, "GET {key}");
        assert_eq!(response.header("content-disposition"), disposition, "{key}");
        assert_eq!(response.header("content-security-policy"), None, "{key}");
    }
}

#[test]
fn metadata_not_exposed() {
    let site = small_site();
    let fixture = site.fixture(keys::PNG);
    let (_, secret_value) = fixture.metadata[0];
    for method in ["GET", "HEAD"] {
        let response = request(site.addr(), method, &fixture.url_path(), &[]);
        assert_eq!(response.status, 200, "{method}");
        let leaked: Vec<_> = response
            .headers
            .iter()
            .filter(|(name, value)| name.to_ascii_lowercase().contains("meta") || value.contains(secret_value))
            .collect();
        assert!(leaked.is_empty(), "{method} sent {leaked:?}");
    }
}

#[test]
fn cache_control_defaults() {
    for (name, status, response) in sample_responses() {
        let expected = match status {
            200 if name.contains("/health") => "no-store",
            200 | 206 | 304 => CACHE_CONTROL,
            404 => CACHE_CONTROL_NOT_FOUND,
            _ => "no-store",
        };
        assert_eq!(response.header_all("cache-control"), [expected], "{name}");
    }
}

#[test]
fn cache_control_configured() {
    let site = small_site();
    let proxy = start_proxy(
        &site.s3,
        &[
            ("PROXY_CACHE_CONTROL", "public, max-age=60, stale-while-revalidate=30"),
            ("PROXY_CACHE_CONTROL_NOT_FOUND", "no-cache"),
        ],
    );
    let png = site.fixture(keys::PNG).url_path();
    let etag = get(proxy.addr(), &png, &[]).header("etag").unwrap().to_owned();
    let configured = "public, max-age=60, stale-while-revalidate=30";
    let cases: [(&str, HeaderList, u16, &str); 5] = [
        (png.as_str(), vec![], 200, configured),
        (png.as_str(), vec![("Range", "bytes=0-3")], 206, configured),
        (png.as_str(), vec![("If-None-Match", etag.as_str())], 304, configured),
        ("/prod/missing/File.png", vec![], 404, "no-cache"),
        ("/prod/deleted/a/File.png", vec![], 403, "no-store"),
    ];
    for (target, headers, status, cache_control) in cases {
        let response = get(proxy.addr(), target, &headers);
        assert_eq!(response.status, status, "GET {target} {headers:?}");
        assert_eq!(
            response.header_all("cache-control"),
            [cache_control],
            "GET {target} {headers:?}"
        );
    }
}

#[test]
fn request_id_echoed_when_valid() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    let longest = "a".repeat(128);
    let ids = [
        "abc-123",
        "A.Z:0/9+y=_x",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        longest.as_str(),
        "x",
    ];
    for id in ids {
        for target in [png.as_str(), "/prod/missing.png", "/health"] {
            let response = get(site.addr(), target, &[("X-Request-Id", id)]);
            assert_eq!(response.header_all("x-request-id"), [id], "{target}");
        }
    }
}

#[test]
fn request_id_generated_when_missing() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    let first = get(site.addr(), &png, &[]);
    let second = get(site.addr(), &png, &[]);
    let first_id = first.header("x-request-id").expect("a generated id");
    let second_id = second.header("x-request-id").expect("a generated id");
    assert!(is_generated_request_id(first_id), "{first_id}");
    assert!(is_generated_request_id(second_id), "{second_id}");
    assert_ne!(first_id, second_id);
}

#[test]
fn request_id_replaced_when_invalid() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    let too_long = "a".repeat(129);
    let invalid = [
        "has space",
        "quote\"d",
        "semi;colon",
        "<script>",
        too_long.as_str(),
        "tab\there",
    ];
    for id in invalid {
        let response = get(site.addr(), &png, &[("X-Request-Id", id)]);
        assert_eq!(response.status, 200, "{id:?}");
        let sent = response.header_all("x-request-id");
        assert_eq!(sent.len(), 1, "{id:?}: {sent:?}");
        assert!(is_generated_request_id(sent[0]), "{id:?} gave {sent:?}");
    }
}

#[test]
fn request_id_with_line_break_replaced() {
    let site = small_site();
    let png = site.fixture(keys::PNG).url_path();
    // A bare CR inside the value: echoing it would let the client inject a
    // header line into the response.
    let text = format!("GET {png} HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\rInjected: 1\r\nConnection: close\r\n\r\n");
    let response = raw_request(site.addr(), &text);
    assert!(!response.has_header("injected"), "{:?}", response.headers);
    let sent = response.header_all("x-request-id");
    assert!(
        sent.iter().all(|id| is_generated_request_id(id)),
        "X-Request-Id {sent:?}"
    );
}

#[test]
fn content_type_list_not_trusted() {
    let s3 = S3Server::start();
    let key = "prod/e/e1/Listed.html";
    s3.put(
        key,
        b"<script>alert(1)</script>",
        &PutOptions::content_type("image/png, text/html"),
    );
    let proxy = start_proxy(&s3, &[]);
    let response = get(proxy.addr(), &format!("/{key}"), &[]);
    assert_eq!(response.status, 200);
    // The list is ignored; the extension decides, and HTML is a download.
    assert_eq!(response.header("content-type"), Some("text/html"));
    assert_eq!(response.header("content-disposition"), Some("attachment"));
    assert_eq!(response.header("content-security-policy"), Some(LOCKED_CSP));
}
