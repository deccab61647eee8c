//! Tests of the test harness itself: the S3 servers, the fake S3, the raw
//! HTTP client and the fixtures. None of them starts the proxy.

#[path = "common/harness.rs"]
mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::Duration;

use common::fixtures::{self, LARGE_SEED, LARGE_SIZE, PNG_SIGNATURE, WEBP_PIXEL, WEBP_SIZE};
use common::raw_http::try_raw_request;
use common::signing::{SigningCredentials, send_signed};
use common::{CannedResponse, ConnectionScript, FaultS3, Framing, PutOptions, RawConnection, S3Server, Step, keys};

fn put_png_with_metadata(server: &S3Server) -> Vec<u8> {
    let bytes = fixtures::png(16, 12);
    let options = PutOptions {
        content_type: Some("image/png".to_owned()),
        content_encoding: Some("identity".to_owned()),
        content_disposition: Some("inline; filename=\"Name.png\"".to_owned()),
        metadata: vec![("Sha1base36".to_owned(), "abc123".to_owned())],
    };
    server.put(keys::PNG, &bytes, &options);
    bytes
}

#[test]
fn s3_server_serves_put_object_with_headers() {
    let server = S3Server::start();
    let bytes = put_png_with_metadata(&server);

    let response = server.signed_get(keys::PNG, &[]);
    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(response.body, bytes);
    assert_eq!(response.header("content-type"), Some("image/png"));
    assert_eq!(response.header("content-encoding"), Some("identity"));
    assert_eq!(
        response.header("content-disposition"),
        Some("inline; filename=\"Name.png\"")
    );
    assert_eq!(response.header("x-amz-meta-sha1base36"), Some("abc123"));
    let length = bytes.len().to_string();
    assert_eq!(response.header("content-length"), Some(length.as_str()));
    assert!(response.header("etag").is_some());
    assert!(response.header("last-modified").is_some());
}

#[test]
fn s3_server_serves_ranges() {
    let server = S3Server::start();
    let bytes = fixtures::webm(300 * 1024);
    server.put(keys::WEBM, &bytes, &PutOptions::content_type("video/webm"));

    let response = server.signed_get(keys::WEBM, &[("range", "bytes=1000-1999")]);
    assert_eq!(response.status, 206);
    assert_eq!(response.body, bytes[1000..2000]);
    let expected_range = format!("bytes 1000-1999/{}", bytes.len());
    assert_eq!(response.header("content-range"), Some(expected_range.as_str()));

    let suffix = server.signed_get(keys::WEBM, &[("range", "bytes=-500")]);
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, bytes[bytes.len() - 500..]);
}

#[test]
fn s3_server_records_requests() {
    let server = S3Server::start();
    let before = server.requests_seen();
    server.put(
        "prod/names/with space.txt",
        b"x",
        &PutOptions::content_type("text/plain"),
    );
    let response = server.signed_get("prod/names/with space.txt", &[]);
    assert_eq!(response.status, 200);

    assert_eq!(server.requests_seen(), before + 2);
    assert_eq!(
        server.last_path().as_deref(),
        Some("/test-bucket/prod/names/with%20space.txt")
    );
    assert_eq!(server.last_query(), None);
    let last = server.last_request().expect("a recorded request");
    assert_eq!(last.method, "GET");
    assert!(last.header("authorization").is_some());
    assert!(server.connections_accepted() >= 2);
}

#[test]
fn s3_server_rejects_wrong_secret() {
    let server = S3Server::start();
    server.put(keys::EMPTY, b"", &PutOptions::content_type("text/plain"));
    let before = server.requests_seen();

    let wrong = SigningCredentials {
        secret_key: "not-the-secret".to_owned(),
        ..server.credentials()
    };
    let path = common::object_path(server.bucket(), keys::EMPTY);
    let response = send_signed(&server.endpoint(), &wrong, "GET", &path, &[], &[]);

    assert_eq!(response.status, 403);
    assert!(
        response.body_text().contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        response.body_text()
    );
    assert_eq!(server.requests_seen(), before + 1);
}

#[test]
fn s3_server_rejects_lowercase_escapes() {
    let server = S3Server::start();
    let key = "prod/names/Ümlaut äöü ß.txt";
    server.put(key, b"umlaut", &PutOptions::content_type("text/plain"));

    let upper = common::object_path(server.bucket(), key);
    assert!(upper.contains("%C3%9C"), "{upper}");
    let response = send_signed(&server.endpoint(), &server.credentials(), "GET", &upper, &[], &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"umlaut");

    // S3 canonicalises escapes to upper case, so a path signed with
    // lower-case escapes does not verify.
    let lower = upper.replace("%C3%9C", "%c3%9c");
    let response = send_signed(&server.endpoint(), &server.credentials(), "GET", &lower, &[], &[]);
    assert_eq!(response.status, 403, "{}", response.body_text());
}

#[test]
fn s3_server_round_trips_every_name() {
    let server = S3Server::start();
    for key in keys::NAMES {
        server.put(key, key.as_bytes(), &PutOptions::content_type("text/plain"));
    }
    for key in keys::NAMES {
        let response = server.signed_get(key, &[]);
        assert_eq!(response.status, 200, "GET {key:?}: {}", response.body_text());
        assert_eq!(response.body, key.as_bytes(), "GET {key:?}");
    }
}

#[test]
fn s3_server_returns_404_for_missing_key() {
    let server = S3Server::start();
    let response = server.signed_get("prod/missing/File.png", &[]);
    assert_eq!(response.status, 404);
    assert!(response.body_text().contains("<Code>NoSuchKey</Code>"));
}

#[test]
fn s3_server_pause_refuses_then_resume_serves() {
    let server = S3Server::start();
    server.put(keys::EMPTY, b"", &PutOptions::content_type("text/plain"));
    let addr = server.addr();

    // A kept-alive connection opened before the pause must die with it.
    let mut idle = TcpStream::connect(addr).expect("connect before pause");
    server.pause();
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert_eq!(
        refused.expect_err("connect while paused").kind(),
        ErrorKind::ConnectionRefused
    );
    idle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut byte = [0u8; 1];
    let read = idle.read(&mut byte);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "old connection still open: {read:?}"
    );

    server.resume();
    assert_eq!(server.addr(), addr);
    let response = server.signed_get(keys::EMPTY, &[]);
    assert_eq!(response.status, 200);
}

#[test]
fn plain_s3_server_ignores_conditionals() {
    let server = S3Server::start();
    let etag = server.put(keys::EMPTY, b"abc", &PutOptions::content_type("text/plain"));
    let response = server.signed_get(keys::EMPTY, &[("if-none-match", etag.as_str())]);
    assert_eq!(response.status, 200);
}

#[test]
fn conditional_s3_answers_if_none_match() {
    let server = S3Server::start_conditional();
    let bytes = put_png_with_metadata(&server);
    let etag = server.signed_get(keys::PNG, &[]).header("etag").unwrap().to_owned();

    let matching = server.signed_get(keys::PNG, &[("if-none-match", etag.as_str())]);
    assert_eq!(matching.status, 304);
    assert!(matching.body.is_empty());
    assert_eq!(matching.header("etag"), Some(etag.as_str()));
    assert!(matching.header("last-modified").is_some());

    let weak = format!("W/{etag}");
    let weak_match = server.signed_get(keys::PNG, &[("if-none-match", weak.as_str())]);
    assert_eq!(weak_match.status, 304);

    let any = server.signed_get(keys::PNG, &[("if-none-match", "*")]);
    assert_eq!(any.status, 304);

    let other = server.signed_get(keys::PNG, &[("if-none-match", "\"0123abcd\"")]);
    assert_eq!(other.status, 200);
    assert_eq!(other.body, bytes);

    let head = server.signed_request("HEAD", keys::PNG, &[("if-none-match", etag.as_str())], &[]);
    assert_eq!(head.status, 304);
}

#[test]
fn conditional_s3_answers_if_match() {
    let server = S3Server::start_conditional();
    let bytes = put_png_with_metadata(&server);
    let etag = server.signed_get(keys::PNG, &[]).header("etag").unwrap().to_owned();

    let failing = server.signed_get(keys::PNG, &[("if-match", "\"0123abcd\"")]);
    assert_eq!(failing.status, 412);
    assert!(
        failing.body_text().contains("<Code>PreconditionFailed</Code>"),
        "{}",
        failing.body_text()
    );

    let passing = server.signed_get(keys::PNG, &[("if-match", etag.as_str())]);
    assert_eq!(passing.status, 200);
    assert_eq!(passing.body, bytes);

    let head = server.signed_request("HEAD", keys::PNG, &[("if-match", "\"0123abcd\"")], &[]);
    assert_eq!(head.status, 412);

    let missing = server.signed_get("prod/missing.png", &[("if-match", etag.as_str())]);
    assert_eq!(missing.status, 404);
}

#[test]
fn conditional_s3_answers_dates() {
    let server = S3Server::start_conditional();
    put_png_with_metadata(&server);
    let last_modified = server
        .signed_get(keys::PNG, &[])
        .header("last-modified")
        .unwrap()
        .to_owned();
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";

    let not_modified = server.signed_get(keys::PNG, &[("if-modified-since", last_modified.as_str())]);
    assert_eq!(not_modified.status, 304);
    let modified = server.signed_get(keys::PNG, &[("if-modified-since", past)]);
    assert_eq!(modified.status, 200);

    let unmodified = server.signed_get(keys::PNG, &[("if-unmodified-since", future)]);
    assert_eq!(unmodified.status, 200);
    let changed = server.signed_get(keys::PNG, &[("if-unmodified-since", past)]);
    assert_eq!(changed.status, 412);

    // If-None-Match decides alone when both it and If-Modified-Since are sent.
    let both = server.signed_get(
        keys::PNG,
        &[("if-none-match", "\"0123abcd\""), ("if-modified-since", future)],
    );
    assert_eq!(both.status, 200);
}

#[test]
fn conditional_s3_checks_before_range() {
    let server = S3Server::start_conditional();
    let etag = server.put(keys::EMPTY, b"0123456789", &PutOptions::content_type("text/plain"));
    let response = server.signed_get(
        keys::EMPTY,
        &[("if-none-match", etag.as_str()), ("range", "bytes=50-60")],
    );
    assert_eq!(response.status, 304);
}

#[test]
fn fault_s3_responds_and_records() {
    let fault = FaultS3::start(ConnectionScript::respond(
        200,
        &[("Content-Type", "text/plain")],
        b"hello",
    ));
    let response = common::get(fault.addr(), "/test-bucket/a%20b.txt?x=1", &[("X-Test", "1")]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(response.framing, Framing::ContentLength(5));
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert!(response.closes_connection());

    let requests = fault.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/test-bucket/a%20b.txt?x=1");
    assert_eq!(requests[0].version, "HTTP/1.1");
    assert_eq!(requests[0].header("x-test"), Some("1"));
    assert_eq!(requests[0].connection, 1);
}

#[test]
fn fault_s3_truncates_body() {
    let fault = FaultS3::start(ConnectionScript::truncated_body(
        &[("Content-Type", "application/octet-stream")],
        &[7u8; 10_000],
        4_000,
    ));
    let response = common::get(fault.addr(), "/test-bucket/big.bin", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length(), Some(10_000));
    assert_eq!(response.body.len(), 4_000);
    let error = response.body_error.expect("a truncated body is reported");
    assert!(error.contains("4000 of 10000"), "{error}");
}

#[test]
fn fault_s3_hangs_without_answer() {
    let fault = FaultS3::start(ConnectionScript::hang());
    let request = b"GET /test-bucket/slow HTTP/1.1\r\nHost: s3\r\n\r\n";
    let result = try_raw_request(fault.addr(), request, Duration::from_millis(300));
    let error = result.expect_err("the fake must not answer");
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
    assert_eq!(fault.requests_seen(), 1);
}

#[test]
fn fault_s3_stalls_mid_body() {
    let fault = FaultS3::start(ConnectionScript::stalled_body(&[], &[1u8; 100], 10));
    let request = b"GET /test-bucket/stall HTTP/1.1\r\nHost: s3\r\n\r\n";
    let response = try_raw_request(fault.addr(), request, Duration::from_millis(300)).expect("headers arrive");
    assert_eq!(response.body.len(), 10);
    let error = response.body_error.expect("the stall is reported");
    assert!(error.contains("read failed"), "{error}");
}

#[test]
fn fault_s3_sends_s3_errors() {
    let fault = FaultS3::start(ConnectionScript::service_unavailable("3"));
    fault.enqueue_for("signature", ConnectionScript::signature_mismatch());
    fault.enqueue_for("missing", ConnectionScript::access_denied());

    let denied = common::get(fault.addr(), "/test-bucket/missing.png", &[]);
    assert_eq!(denied.status, 403);
    assert!(denied.body_text().contains("<Code>AccessDenied</Code>"));
    assert_eq!(denied.header("content-type"), Some("application/xml"));

    let mismatch = common::get(fault.addr(), "/test-bucket/signature.png", &[]);
    assert_eq!(mismatch.status, 403);
    assert!(mismatch.body_text().contains("<Code>SignatureDoesNotMatch</Code>"));

    let busy = common::get(fault.addr(), "/test-bucket/other.png", &[]);
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), Some("3"));
    assert!(busy.body_text().contains("<Code>SlowDown</Code>"));
    assert_eq!(fault.queued(), 0);
}

#[test]
fn fault_s3_drops_stale_keep_alive() {
    let fault = FaultS3::start(ConnectionScript::respond(200, &[], b"fresh"));
    fault.enqueue(ConnectionScript::stale_keep_alive(
        CannedResponse::new(200).body("first"),
    ));

    let mut connection = RawConnection::connect(fault.addr(), Duration::from_secs(5)).expect("connect");
    connection
        .send(b"GET /test-bucket/a HTTP/1.1\r\nHost: s3\r\n\r\n")
        .unwrap();
    let first = connection.read_response(false).expect("first response");
    assert_eq!(first.body, b"first");
    assert!(!first.closes_connection());

    connection
        .send(b"GET /test-bucket/b HTTP/1.1\r\nHost: s3\r\n\r\n")
        .unwrap();
    let second = connection.read_response(false);
    assert_eq!(
        second.expect_err("no response on the stale connection").kind(),
        ErrorKind::UnexpectedEof
    );

    let retried = common::get(fault.addr(), "/test-bucket/b", &[]);
    assert_eq!(retried.body, b"fresh");

    let requests = fault.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].connection, requests[0].connection);
    assert_ne!(requests[2].connection, requests[1].connection);
}

#[test]
fn fault_s3_keeps_connection_between_steps() {
    let fault = FaultS3::start(ConnectionScript::steps(vec![
        Step::Respond(CannedResponse::new(200).body("one")),
        Step::RespondAndClose(CannedResponse::new(404).body("two")),
    ]));
    let mut connection = RawConnection::connect(fault.addr(), Duration::from_secs(5)).expect("connect");
    connection
        .send(b"HEAD /test-bucket/x HTTP/1.1\r\nHost: s3\r\n\r\n")
        .unwrap();
    let first = connection.read_response(true).expect("first response");
    assert_eq!(first.status, 200);
    assert_eq!(first.framing, Framing::NoBody);
    assert_eq!(first.content_length(), Some(3));
    assert!(first.body.is_empty());

    connection
        .send(b"GET /test-bucket/x HTTP/1.1\r\nHost: s3\r\n\r\n")
        .unwrap();
    let second = connection.read_response(false).expect("second response");
    assert_eq!(second.status, 404);
    assert_eq!(second.body, b"two");
    assert!(connection.is_closed_by_peer(Duration::from_secs(2)));
}

#[test]
fn fault_s3_delays_response() {
    let fault = FaultS3::start(ConnectionScript::slow_response(Duration::from_millis(600), b"late"));
    let request = b"GET /test-bucket/late HTTP/1.1\r\nHost: s3\r\n\r\n";
    let early = try_raw_request(fault.addr(), request, Duration::from_millis(200));
    assert!(early.is_err());
    let late = try_raw_request(fault.addr(), request, Duration::from_secs(5)).expect("answer");
    assert_eq!(late.body, b"late");
}

#[test]
fn raw_client_reads_chunked_and_duplicates() {
    let mut chunked = CannedResponse::new(200)
        .header("Transfer-Encoding", "chunked")
        .header("Set-Cookie", "a=1")
        .header("set-cookie", "b=2")
        .body("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n");
    chunked.add_content_length = false;
    let fault = FaultS3::start(ConnectionScript::steps(vec![Step::RespondAndClose(chunked)]));

    let response = common::get(fault.addr(), "/x", &[]);
    assert_eq!(response.framing, Framing::Chunked);
    assert_eq!(response.body, b"hello, world");
    assert_eq!(response.body_error, None);
    assert!(!response.has_header("content-length"));
    assert_eq!(response.header_all("SET-COOKIE"), vec!["a=1", "b=2"]);
}

#[test]
fn raw_client_reads_until_close() {
    let mut unframed = CannedResponse::new(200).body("no length");
    unframed.add_content_length = false;
    let fault = FaultS3::start(ConnectionScript::steps(vec![Step::RespondAndClose(unframed)]));
    let response = common::get(fault.addr(), "/x", &[]);
    assert_eq!(response.framing, Framing::UntilClose);
    assert_eq!(response.body, b"no length");
}

fn png_chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>, u32)> {
    let mut chunks = Vec::new();
    let mut offset = PNG_SIGNATURE.len();
    while offset < png.len() {
        let length = u32::from_be_bytes(png[offset..offset + 4].try_into().unwrap()) as usize;
        let chunk_type: [u8; 4] = png[offset + 4..offset + 8].try_into().unwrap();
        let data = png[offset + 8..offset + 8 + length].to_vec();
        let crc_offset = offset + 8 + length;
        let crc = u32::from_be_bytes(png[crc_offset..crc_offset + 4].try_into().unwrap());
        chunks.push((chunk_type, data, crc));
        offset = crc_offset + 4;
    }
    chunks
}

#[test]
fn png_fixture_is_valid() {
    let png = fixtures::png(16, 12);
    assert_eq!(png[..8], PNG_SIGNATURE);

    let chunks = png_chunks(&png);
    let types: Vec<&[u8]> = chunks.iter().map(|(kind, _, _)| kind.as_slice()).collect();
    assert_eq!(types, vec![b"IHDR".as_slice(), b"IDAT", b"IEND"]);
    for (kind, data, crc) in &chunks {
        let mut covered = kind.to_vec();
        covered.extend_from_slice(data);
        // Compare with flate2's CRC-32, an implementation independent of the fixture code.
        let mut expected = flate2::Crc::new();
        expected.update(&covered);
        assert_eq!(*crc, expected.sum(), "CRC of {}", String::from_utf8_lossy(kind));
    }

    let header = &chunks[0].1;
    assert_eq!(u32::from_be_bytes(header[0..4].try_into().unwrap()), 16);
    assert_eq!(u32::from_be_bytes(header[4..8].try_into().unwrap()), 12);
    assert_eq!(header[8..], [8, 2, 0, 0, 0]);

    let mut pixels = Vec::new();
    flate2::read::ZlibDecoder::new(chunks[1].1.as_slice())
        .read_to_end(&mut pixels)
        .expect("IDAT is a valid zlib stream with a correct Adler-32");
    assert_eq!(pixels.len(), 12 * (1 + 16 * 3));
}

#[test]
fn jpeg_fixture_decodes() {
    let jpeg = fixtures::jpeg();
    assert_eq!(jpeg[..4], [0xFF, 0xD8, 0xFF, 0xE0]);
    assert_eq!(jpeg[6..11], *b"JFIF\0");
    assert_eq!(jpeg[jpeg.len() - 2..], [0xFF, 0xD9]);

    let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
    let pixels = decoder.decode().expect("a decodable JPEG");
    let info = decoder.info().expect("image info after decoding");
    assert_eq!((info.width, info.height), (8, 8));
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::L8);
    assert_eq!(pixels, vec![128u8; 64]);
}

#[test]
fn webp_fixture_decodes() {
    let webp = fixtures::webp();
    assert_eq!(webp[..4], *b"RIFF");
    assert_eq!(webp[8..16], *b"WEBPVP8L");
    let riff_len = u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff_len + 8, webp.len());

    let mut decoder = image_webp::WebPDecoder::new(std::io::Cursor::new(webp)).expect("a parsable WebP");
    assert_eq!(decoder.dimensions(), (WEBP_SIZE, WEBP_SIZE));
    assert!(decoder.has_alpha());
    let mut pixels = vec![0u8; decoder.output_buffer_size().expect("buffer size")];
    decoder.read_image(&mut pixels).expect("a decodable WebP");
    for pixel in pixels.chunks(4) {
        assert_eq!(pixel, WEBP_PIXEL);
    }
}

#[test]
fn gzip_fixture_decodes() {
    let text = "stored gzip ".repeat(10_000);
    let compressed = fixtures::gzip(text.as_bytes());
    assert_eq!(compressed[..3], [0x1F, 0x8B, 0x08]);
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_string(&mut decoded)
        .expect("a valid gzip member with a correct CRC-32");
    assert_eq!(decoded, text);

    let mut empty = Vec::new();
    flate2::read::GzDecoder::new(fixtures::gzip(b"").as_slice())
        .read_to_end(&mut empty)
        .expect("an empty gzip member");
    assert!(empty.is_empty());
}

#[test]
fn pdf_fixture_has_valid_xref() {
    let pdf = fixtures::pdf();
    let text = String::from_utf8_lossy(&pdf).into_owned();
    assert!(pdf.starts_with(b"%PDF-1.4\n"));
    assert!(text.ends_with("%%EOF\n"));

    let startxref: usize = text
        .rsplit("startxref\n")
        .next()
        .and_then(|tail| tail.lines().next())
        .and_then(|line| line.parse().ok())
        .expect("a startxref offset");
    assert!(pdf[startxref..].starts_with(b"xref\n0 6\n"));
    // Offsets count bytes of the file, so index the bytes, not the lossy text.
    let entries = &pdf[startxref + "xref\n0 6\n".len()..];
    for object in 1..=5 {
        let entry = std::str::from_utf8(&entries[object * 20..object * 20 + 20]).unwrap();
        let offset: usize = entry[..10].parse().expect("a 10-digit offset");
        let expected = format!("{object} 0 obj\n");
        assert!(pdf[offset..].starts_with(expected.as_bytes()), "object {object}");
    }
}

#[test]
fn webm_fixture_has_ebml_structure() {
    let webm = fixtures::webm(300 * 1024);
    assert_eq!(webm[..4], [0x1A, 0x45, 0xDF, 0xA3]);
    assert!(webm.windows(4).any(|window| window == b"webm"));
    assert!(webm.len() > 280 * 1024, "{}", webm.len());
    assert!(webm.len() < 310 * 1024, "{}", webm.len());

    // The header's size field is one byte; the Segment follows it and its
    // size field covers exactly the rest of the file.
    let header_len = 4 + 1 + usize::from(webm[4] & 0x7F);
    assert_eq!(webm[header_len..header_len + 4], [0x18, 0x53, 0x80, 0x67]);
    let size_start = header_len + 4;
    let marker = webm[size_start];
    let size_len = marker.leading_zeros() as usize + 1;
    let mut size = u64::from(marker) & ((1 << (8 - size_len)) - 1);
    for &byte in &webm[size_start + 1..size_start + size_len] {
        size = (size << 8) | u64::from(byte);
    }
    assert_eq!(size_start + size_len + size as usize, webm.len());
}

#[test]
fn pattern_bytes_are_deterministic() {
    let first = fixtures::pattern_bytes(4096, 7);
    let second = fixtures::pattern_bytes(4096, 7);
    assert_eq!(first, second);
    assert_ne!(first, fixtures::pattern_bytes(4096, 8));
    let blocks: std::collections::HashSet<&[u8]> = first.chunks(8).collect();
    assert_eq!(blocks.len(), 4096 / 8, "every 8-byte block differs");
    assert_eq!(fixtures::pattern_bytes(13, 7), first[..13]);
}

#[test]
fn fixture_table_is_complete() {
    let items = fixtures::Fixtures {
        items: fixtures::all_fixtures(),
    };
    assert_eq!(items.get(keys::LARGE).bytes.len(), LARGE_SIZE);
    assert_eq!(
        items.get(keys::LARGE).bytes[..64],
        fixtures::pattern_bytes(64, LARGE_SEED)
    );
    assert!(items.get(keys::EMPTY).bytes.is_empty());
    assert!(items.get(keys::WEBM).bytes.len() > 256 * 1024);
    assert_eq!(items.get(keys::GZIP_JSON).content_encoding, Some("gzip"));
    assert_eq!(items.get(keys::UNTYPED).content_type, None);
    assert!(String::from_utf8_lossy(&items.get(keys::SVG).bytes).contains("<script"));
    assert!(String::from_utf8_lossy(&items.get(keys::HTML).bytes).contains("<script>"));

    let private: Vec<&str> = items.private().map(|fixture| fixture.key.as_str()).collect();
    for key in [
        keys::DELETED,
        keys::TEMP,
        keys::THUMB_TEMP,
        keys::TRANSCODED_TEMP,
        keys::HTSECURE,
        keys::HTSECURE_NESTED,
    ] {
        assert!(private.contains(&key), "{key} is private");
    }
    assert!(items.public().all(|fixture| !fixture.key.contains("/temp/")));

    let mut keys_seen = std::collections::HashSet::new();
    for fixture in items.iter() {
        assert!(keys_seen.insert(fixture.key.as_str()), "duplicate {}", fixture.key);
    }
    assert_eq!(
        items.get("prod/names/with space.txt").url_path(),
        "/prod/names/with%20space.txt"
    );
}

#[test]
fn seed_all_stores_every_fixture() {
    let server = S3Server::start();
    let seeded = common::seed_all(&server);
    for fixture in seeded.iter() {
        let response = server.signed_get(&fixture.key, &[]);
        assert_eq!(response.status, 200, "GET {}: {}", fixture.key, response.body_text());
        assert!(response.body == fixture.bytes, "body of {}", fixture.key);
        if let Some(content_type) = fixture.content_type {
            assert_eq!(response.header("content-type"), Some(content_type), "{}", fixture.key);
        }
        assert_eq!(
            response.header("content-encoding"),
            fixture.content_encoding,
            "{}",
            fixture.key
        );
        assert_eq!(
            response.header("content-disposition"),
            fixture.content_disposition,
            "{}",
            fixture.key
        );
    }

    let large = server.signed_get(keys::LARGE, &[("range", "bytes=10485757-10485780")]);
    assert_eq!(large.status, 206);
    assert_eq!(large.body, seeded.get(keys::LARGE).bytes[10_485_757..=10_485_780]);
}
