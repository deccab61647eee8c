//! Real files built in memory, and a MediaWiki-style object tree to seed
//! into an [`S3Server`].
//!
//! Every image is a complete, decodable file written byte by byte here: PNG
//! with zlib stored blocks, baseline JPEG, lossless WebP. The WebM file has a
//! valid EBML structure around pseudo-random frame data.

use super::s3_server::{PutOptions, S3Server};
use super::signing::encode_key_path;

/// Keys of the seeded objects.
pub mod keys {
    /// Current version of a MediaWiki file (PNG, with user metadata).
    pub const PNG: &str = "prod/a/ab/Name.png";
    /// Older version of the same file.
    pub const PNG_ARCHIVE: &str = "prod/archive/a/ab/20240101000000!Name.png";
    /// Thumbnail of the same file.
    pub const PNG_THUMB: &str = "prod/thumb/a/ab/Name.png/120px-Name.png";
    pub const JPEG: &str = "prod/b/b3/Photo.jpg";
    pub const WEBP: &str = "prod/c/c4/Image.webp";
    /// SVG that contains a `<script>` element.
    pub const SVG: &str = "prod/d/d5/Diagram.svg";
    /// PDF stored with a Content-Disposition.
    pub const PDF: &str = "prod/e/e6/Document.pdf";
    /// About 300 KiB of WebM, large enough for range requests.
    pub const WEBM: &str = "prod/f/f7/Clip.webm";
    pub const WEBM_TRANSCODED: &str = "prod/transcoded/f/f7/Clip.webm/Clip.webm.360p.vp9.webm";
    /// HTML page that contains a `<script>` element.
    pub const HTML: &str = "prod/1/12/Page.html";
    /// Zero-byte object.
    pub const EMPTY: &str = "prod/0/01/Empty.txt";
    /// 20 MiB of [`super::pattern_bytes`] with seed [`super::LARGE_SEED`].
    pub const LARGE: &str = "prod/9/9a/Large.bin";
    /// JSON stored gzip-compressed with `Content-Encoding: gzip`.
    pub const GZIP_JSON: &str = "prod/2/23/Data.json";
    /// Text stored gzip-compressed with `Content-Encoding: gzip`.
    pub const GZIP_TEXT: &str = "prod/3/34/Notes.txt";
    /// PNG stored without a Content-Type.
    pub const UNTYPED: &str = "prod/4/45/Untyped.png";

    /// MediaWiki's deleted-file archive, named `<sha1 base 36>.<ext>`.
    pub const DELETED: &str = "prod/deleted/0/h/9/0h9kx2mbq4r7t1vz8w3y6n5p0c2d4fa.png";
    /// Upload stash.
    pub const TEMP: &str = "prod/temp/3/36/20240101120000!phpA1b2C3.png";
    pub const THUMB_TEMP: &str = "prod/thumb/temp/3/36/20240101120000!phpA1b2C3.png/120px-20240101120000!phpA1b2C3.png";
    pub const TRANSCODED_TEMP: &str =
        "prod/transcoded/temp/3/36/20240101120000!phpA1b2C3.webm/20240101120000!phpA1b2C3.webm.360p.webm";
    pub const HTSECURE: &str = "prod/.htsecure";
    pub const HTSECURE_NESTED: &str = "prod/thumb/a/.htsecure";

    /// Keys that exercise percent-encoding: every reserved character S3 keys
    /// may contain, `//`, and non-ASCII text. Each object's body is its key.
    pub const NAMES: &[&str] = &[
        "prod/names/with space.txt",
        "prod/names/plus+sign.txt",
        "prod/names/percent%20literal.txt",
        "prod/names/100%.txt",
        "prod/names/amp&ersand.txt",
        "prod/names/apostrophe's.txt",
        "prod/names/(parens).txt",
        "prod/names/bang!.txt",
        "prod/names/question?mark.txt",
        "prod/names/equals=sign.txt",
        "prod/names/at@sign.txt",
        "prod/names/dollar$sign.txt",
        "prod/names/star*.txt",
        "prod/names/comma,and;semicolon.txt",
        "prod/names/tilde~colon:.txt",
        "prod/names/hash#tag.txt",
        "prod/names/double//slash.txt",
        "prod/names/Ümlaut äöü ß.txt",
        "prod/names/日本語の名前.txt",
        "prod/names/emoji 🎉.txt",
        "prod/names/all +%&'()!?=@$*,;~: chars.txt",
    ];
}

/// Seed of the 20 MiB object's byte pattern.
pub const LARGE_SEED: u64 = 0x5EED_F1A6;
/// Size of the large object.
pub const LARGE_SIZE: usize = 20 * 1024 * 1024;

/// One object: key, bytes and the headers stored with it.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub key: String,
    pub bytes: Vec<u8>,
    /// Content-Type stored with the object, `None` when stored without one.
    pub content_type: Option<&'static str>,
    pub content_encoding: Option<&'static str>,
    pub content_disposition: Option<&'static str>,
    /// User metadata names without the `x-amz-meta-` prefix.
    pub metadata: Vec<(&'static str, &'static str)>,
    /// True for objects in MediaWiki's private areas, which the proxy must
    /// reject without asking S3.
    pub private: bool,
}

impl Fixture {
    fn new(key: &str, bytes: Vec<u8>, content_type: Option<&'static str>) -> Self {
        Fixture {
            key: key.to_owned(),
            bytes,
            content_type,
            content_encoding: None,
            content_disposition: None,
            metadata: Vec::new(),
            private: false,
        }
    }

    /// Request target for the proxy: `/` plus the key encoded like S3 does.
    pub fn url_path(&self) -> String {
        format!("/{}", encode_key_path(&self.key))
    }

    pub fn put_options(&self) -> PutOptions {
        PutOptions {
            content_type: self.content_type.map(str::to_owned),
            content_encoding: self.content_encoding.map(str::to_owned),
            content_disposition: self.content_disposition.map(str::to_owned),
            metadata: self
                .metadata
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }
}

/// The seeded objects.
#[derive(Clone, Debug)]
pub struct Fixtures {
    pub items: Vec<Fixture>,
}

impl Fixtures {
    /// Returns the fixture with `key`. Panics when there is none.
    pub fn get(&self, key: &str) -> &Fixture {
        self.items
            .iter()
            .find(|fixture| fixture.key == key)
            .unwrap_or_else(|| panic!("no fixture with key {key:?}"))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Fixture> {
        self.items.iter()
    }

    /// Objects the proxy should serve.
    pub fn public(&self) -> impl Iterator<Item = &Fixture> {
        self.items.iter().filter(|fixture| !fixture.private)
    }

    /// Objects in MediaWiki's private areas.
    pub fn private(&self) -> impl Iterator<Item = &Fixture> {
        self.items.iter().filter(|fixture| fixture.private)
    }
}

/// Builds every fixture, the 20 MiB object included.
pub fn all_fixtures() -> Vec<Fixture> {
    let mut items = small_fixtures();
    items.push(Fixture::new(
        keys::LARGE,
        pattern_bytes(LARGE_SIZE, LARGE_SEED),
        Some("application/octet-stream"),
    ));
    items
}

/// Builds every fixture except the 20 MiB object.
pub fn small_fixtures() -> Vec<Fixture> {
    let png_bytes = png(16, 12);
    let webm_bytes = webm(300 * 1024);

    let mut png_fixture = Fixture::new(keys::PNG, png_bytes.clone(), Some("image/png"));
    png_fixture.metadata = vec![("sha1base36", "0h9kx2mbq4r7t1vz8w3y6n5p0c2d4fa")];

    let mut pdf_fixture = Fixture::new(keys::PDF, pdf(), Some("application/pdf"));
    pdf_fixture.content_disposition = Some("inline; filename=\"Document.pdf\"");

    let mut gzip_json = Fixture::new(
        keys::GZIP_JSON,
        gzip(br#"{"title":"Data","values":[1,2,3],"note":"stored gzip-encoded"}"#),
        Some("application/json"),
    );
    gzip_json.content_encoding = Some("gzip");

    let mut gzip_text = Fixture::new(
        keys::GZIP_TEXT,
        gzip("Plain text stored with Content-Encoding: gzip.\n".repeat(40).as_bytes()),
        Some("text/plain; charset=utf-8"),
    );
    gzip_text.content_encoding = Some("gzip");

    let mut items = vec![
        png_fixture,
        Fixture::new(keys::PNG_ARCHIVE, png(8, 8), Some("image/png")),
        Fixture::new(keys::PNG_THUMB, png(4, 3), Some("image/png")),
        Fixture::new(keys::JPEG, jpeg(), Some("image/jpeg")),
        Fixture::new(keys::WEBP, webp(), Some("image/webp")),
        Fixture::new(keys::SVG, svg_with_script(), Some("image/svg+xml")),
        pdf_fixture,
        Fixture::new(keys::WEBM, webm_bytes.clone(), Some("video/webm")),
        Fixture::new(keys::WEBM_TRANSCODED, webm(64 * 1024), Some("video/webm")),
        Fixture::new(keys::HTML, html_with_script(), Some("text/html; charset=utf-8")),
        Fixture::new(keys::EMPTY, Vec::new(), Some("text/plain")),
        gzip_json,
        gzip_text,
        Fixture::new(keys::UNTYPED, png(2, 2), None),
    ];

    for key in [keys::DELETED, keys::TEMP, keys::THUMB_TEMP, keys::TRANSCODED_TEMP] {
        let mut fixture = Fixture::new(key, png(3, 3), Some("image/png"));
        if key == keys::TRANSCODED_TEMP {
            fixture.bytes = webm(16 * 1024);
            fixture.content_type = Some("video/webm");
        }
        fixture.private = true;
        items.push(fixture);
    }
    for key in [keys::HTSECURE, keys::HTSECURE_NESTED] {
        let mut fixture = Fixture::new(key, b"secure\n".to_vec(), Some("text/plain"));
        fixture.private = true;
        items.push(fixture);
    }

    for key in keys::NAMES {
        items.push(Fixture::new(
            key,
            key.as_bytes().to_vec(),
            Some("text/plain; charset=utf-8"),
        ));
    }
    items
}

/// Stores every fixture, the 20 MiB object included, through S3's
/// PutObject.
pub fn seed_all(server: &S3Server) -> Fixtures {
    seed(server, all_fixtures())
}

/// Stores every fixture except the 20 MiB object.
pub fn seed_small(server: &S3Server) -> Fixtures {
    seed(server, small_fixtures())
}

/// Stores `items` through S3's PutObject.
pub fn seed(server: &S3Server, items: Vec<Fixture>) -> Fixtures {
    for fixture in &items {
        server.put(&fixture.key, &fixture.bytes, &fixture.put_options());
    }
    Fixtures { items }
}

/// Returns `len` bytes of a xorshift64* sequence. Every 8-byte block differs,
/// so a body read from a wrong offset never matches.
pub fn pattern_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let value = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// CRC-32 (IEEE 802.3, as used by PNG and gzip).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Adler-32 checksum of zlib streams.
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// Raw DEFLATE data made of stored (uncompressed) blocks.
fn deflate_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65_535 * 5 + 5);
    let mut blocks = data.chunks(65_535).peekable();
    if blocks.peek().is_none() {
        // One final empty block.
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
        return out;
    }
    while let Some(block) = blocks.next() {
        let is_final = blocks.peek().is_none();
        // BFINAL in bit 0, BTYPE 00 (stored) in bits 1-2, rest of the byte padding.
        out.push(u8::from(is_final));
        let len = u16::try_from(block.len()).expect("stored blocks hold at most 65535 bytes");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out
}

/// Builds a zlib stream (RFC 1950) with stored blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // CMF 0x78: deflate with a 32 KiB window. FLG 0x01 makes 0x7801 a multiple of 31.
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&deflate_stored(data));
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// Builds a gzip member (RFC 1952) with stored blocks and no file name.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    // Magic, CM 8 (deflate), no flags, MTIME 0, XFL 0, OS 255 (unknown).
    let mut out = vec![0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF];
    out.extend_from_slice(&deflate_stored(data));
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE is the input length modulo 2^32, so the cast truncates on purpose.
    let size = data.len() as u32;
    out.extend_from_slice(&size.to_le_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, chunk_type: &[u8; 4], data: &[u8]) {
    let len = u32::try_from(data.len()).expect("PNG chunk fits in u32");
    out.extend_from_slice(&len.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(chunk_type);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// PNG signature.
pub const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

/// Builds an 8-bit RGB PNG of `width` x `height` with a colour gradient,
/// its pixel data in zlib stored blocks.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = PNG_SIGNATURE.to_vec();

    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), compression 0, filter 0, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &header);

    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // Filter type None.
        for x in 0..width {
            let red = u8::try_from(x * 255 / width.max(1)).expect("below 256");
            let green = u8::try_from(y * 255 / height.max(1)).expect("below 256");
            raw.extend_from_slice(&[red, green, 0x80]);
        }
    }
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Builds an 8x8 greyscale baseline JPEG whose pixels all decode to 128.
///
/// Both Huffman tables hold a single one-bit code `0`: the DC table for
/// category 0 (difference 0) and the AC table for end-of-block. The scan is
/// therefore the bits `00`, padded with ones to `0x3F`.
pub fn jpeg() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8]; // SOI

    // APP0 JFIF 1.01, no units, density 1x1, no thumbnail.
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
    out.extend_from_slice(b"JFIF\0");
    out.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);

    // DQT: table 0, 8-bit precision, every quantiser 1.
    out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    out.extend_from_slice(&[1u8; 64]);

    // SOF0: 8-bit samples, 8 lines, 8 columns, one component (id 1, 1x1, table 0).
    out.extend_from_slice(&[
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
    ]);

    // DHT: DC table 0, then AC table 0, each with one code of length 1.
    for class_and_id in [0x00u8, 0x10] {
        out.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, class_and_id]);
        let mut counts = [0u8; 16];
        counts[0] = 1;
        out.extend_from_slice(&counts);
        out.push(0x00); // DC: category 0. AC: end of block.
    }

    // SOS: one component (id 1, DC table 0, AC table 0), spectral 0..63.
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    out.push(0x3F); // Entropy-coded data.

    out.extend_from_slice(&[0xFF, 0xD9]); // EOI
    out
}

/// Bits packed least significant first, as VP8L reads them.
struct LsbBitWriter {
    bytes: Vec<u8>,
    used_bits: u32,
}

impl LsbBitWriter {
    fn new() -> Self {
        LsbBitWriter {
            bytes: Vec::new(),
            used_bits: 0,
        }
    }

    fn write(&mut self, value: u32, bit_count: u32) {
        for bit in 0..bit_count {
            if self.used_bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (value >> bit) & 1 == 1 {
                let last = self.bytes.last_mut().expect("a byte was pushed");
                *last |= 1 << (self.used_bits % 8);
            }
            self.used_bits += 1;
        }
    }
}

/// Pixel colour of [`webp`], as RGBA.
pub const WEBP_PIXEL: [u8; 4] = [0xFF, 0x80, 0x00, 0xFF];
/// Width and height of [`webp`].
pub const WEBP_SIZE: u32 = 2;

/// Builds a lossless (VP8L) WebP of 2x2 pixels, all [`WEBP_PIXEL`].
///
/// The image uses no transforms and no colour cache, and each of its five
/// prefix codes is a "simple" code with one symbol. One-symbol codes have
/// zero-length codewords, so the pixels themselves take no bits.
pub fn webp() -> Vec<u8> {
    let [red, green, blue, alpha] = WEBP_PIXEL;
    let mut bits = LsbBitWriter::new();
    bits.write(WEBP_SIZE - 1, 14); // width - 1
    bits.write(WEBP_SIZE - 1, 14); // height - 1
    bits.write(1, 1); // alpha is used
    bits.write(0, 3); // version 0
    bits.write(0, 1); // no transform
    bits.write(0, 1); // no colour cache
    bits.write(0, 1); // no meta prefix codes
    // Green, red, blue and alpha codes: simple, one symbol, 8-bit symbol.
    for symbol in [green, red, blue, alpha] {
        bits.write(1, 1);
        bits.write(0, 1);
        bits.write(1, 1);
        bits.write(u32::from(symbol), 8);
    }
    // Distance code: simple, one symbol, 1-bit symbol 0.
    bits.write(1, 1);
    bits.write(0, 1);
    bits.write(0, 1);
    bits.write(0, 1);

    let mut chunk = vec![0x2F]; // VP8L signature
    chunk.extend_from_slice(&bits.bytes);
    let chunk_len = u32::try_from(chunk.len()).expect("small chunk");
    if chunk.len() % 2 == 1 {
        chunk.push(0); // RIFF chunks are padded to even length.
    }

    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    let riff_len = u32::try_from(4 + 8 + chunk.len()).expect("small file");
    out.extend_from_slice(&riff_len.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(b"VP8L");
    out.extend_from_slice(&chunk_len.to_le_bytes());
    out.extend_from_slice(&chunk);
    out
}

/// Returns an SVG image that contains a `<script>` element and an `onload` handler.
pub fn svg_with_script() -> Vec<u8> {
    br##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" onload="alert('svg onload')">
  <script type="text/javascript">alert(document.cookie);</script>
  <rect x="10" y="10" width="80" height="80" fill="#36c"/>
</svg>
"##
    .to_vec()
}

/// Returns an HTML page that contains a `<script>` element.
pub fn html_with_script() -> Vec<u8> {
    br#"<!DOCTYPE html>
<html><head><title>Page</title></head>
<body><p>Stored HTML</p><script>alert(document.cookie)</script></body></html>
"#
    .to_vec()
}

/// Builds a one-page PDF 1.4 with a correct cross-reference table.
pub fn pdf() -> Vec<u8> {
    let content = "BT /F1 18 Tf 20 40 Td (s3-proxy test) Tj ET\n";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", index + 1).as_bytes());
    }
    let xref_offset = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
    // Each cross-reference entry is exactly 20 bytes, ending in space and newline.
    out.extend_from_slice(b"0000000000 65535 f \n");
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Encodes an EBML element size in the shortest variable-length form.
fn ebml_size(size: usize) -> Vec<u8> {
    let size = u64::try_from(size).expect("size fits in u64");
    for length in 1..=8u32 {
        // All ones is reserved for "unknown size", so the limit is 2^(7n) - 2.
        let limit = (1u64 << (7 * length)) - 2;
        if size <= limit {
            let marker = 1u64 << (7 * length);
            let value = size | marker;
            let bytes = value.to_be_bytes();
            return bytes[8 - length as usize..].to_vec();
        }
    }
    panic!("EBML size {size} too large");
}

fn ebml_element(id: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&ebml_size(data.len()));
    out.extend_from_slice(data);
    out
}

fn ebml_uint(id: &[u8], value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|&byte| byte != 0).unwrap_or(7);
    ebml_element(id, &bytes[first..])
}

/// Builds a WebM file of about `target_len` bytes: EBML header, Segment with Info,
/// one VP8 video track and one Cluster of 16 KiB SimpleBlocks filled with
/// pseudo-random bytes. Parsers accept the structure. The frames do not
/// decode as video.
pub fn webm(target_len: usize) -> Vec<u8> {
    let header = [
        ebml_uint(&[0x42, 0x86], 1),          // EBMLVersion
        ebml_uint(&[0x42, 0xF7], 1),          // EBMLReadVersion
        ebml_uint(&[0x42, 0xF2], 4),          // EBMLMaxIDLength
        ebml_uint(&[0x42, 0xF3], 8),          // EBMLMaxSizeLength
        ebml_element(&[0x42, 0x82], b"webm"), // DocType
        ebml_uint(&[0x42, 0x87], 4),          // DocTypeVersion
        ebml_uint(&[0x42, 0x85], 2),          // DocTypeReadVersion
    ]
    .concat();
    let mut out = ebml_element(&[0x1A, 0x45, 0xDF, 0xA3], &header);

    let duration_ms: f32 = 1000.0;
    let info = [
        ebml_uint(&[0x2A, 0xD7, 0xB1], 1_000_000),               // TimestampScale: 1 ms
        ebml_element(&[0x4D, 0x80], b"s3-proxy-test"),           // MuxingApp
        ebml_element(&[0x57, 0x41], b"s3-proxy-test"),           // WritingApp
        ebml_element(&[0x44, 0x89], &duration_ms.to_be_bytes()), // Duration
    ]
    .concat();
    let video = [
        ebml_uint(&[0xB0], 16), // PixelWidth
        ebml_uint(&[0xBA], 16), // PixelHeight
    ]
    .concat();
    let track_entry = [
        ebml_uint(&[0xD7], 1),           // TrackNumber
        ebml_uint(&[0x73, 0xC5], 1),     // TrackUID
        ebml_uint(&[0x83], 1),           // TrackType: video
        ebml_element(&[0x86], b"V_VP8"), // CodecID
        ebml_element(&[0xE0], &video),   // Video
    ]
    .concat();
    let tracks = ebml_element(&[0xAE], &track_entry);

    let frame_len = 16 * 1024;
    let frame_count = (target_len / (frame_len + 8)).max(1);
    let mut cluster = ebml_uint(&[0xE7], 0); // Cluster Timestamp
    for frame in 0..frame_count {
        // Track number 1 as a one-byte vint, 16-bit relative timestamp, keyframe flag.
        let timestamp = i16::try_from(frame * 40).expect("frame timestamps fit in i16");
        let mut block = vec![0x81];
        block.extend_from_slice(&timestamp.to_be_bytes());
        block.push(0x80);
        block.extend_from_slice(&pattern_bytes(frame_len, 0xF2A3 + frame as u64));
        cluster.extend_from_slice(&ebml_element(&[0xA3], &block)); // SimpleBlock
    }

    let segment = [
        ebml_element(&[0x15, 0x49, 0xA9, 0x66], &info),
        ebml_element(&[0x16, 0x54, 0xAE, 0x6B], &tracks),
        ebml_element(&[0x1F, 0x43, 0xB6, 0x75], &cluster),
    ]
    .concat();
    out.extend_from_slice(&ebml_element(&[0x18, 0x53, 0x80, 0x67], &segment));
    out
}
