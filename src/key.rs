//! Mapping from a request target to an S3 object key, and the S3 encoding of
//! a key for the canonical URI.
//!
//! The key is the URL path without its leading `/`, percent-decoded exactly
//! once, with the query string dropped. `+` stays a literal plus.

use std::fmt;

/// S3 refuses keys longer than this many bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// Reason a request target does not name an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The target is neither origin-form (`/path`) nor absolute-form.
    NotAPath,
    /// A `%` is not followed by two hex digits.
    BadPercentEncoding,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
    /// The decoded key contains NUL or another control character.
    ControlCharacter,
    /// A segment is `.` or `..`.
    DotSegment,
    /// The decoded key is longer than S3 allows.
    TooLong,
    /// The path names a directory (ends in `/`) or the bucket root.
    Directory,
}

impl PathError {
    pub fn status(self) -> u16 {
        match self {
            PathError::TooLong => 414,
            PathError::Directory => 404,
            _ => 400,
        }
    }

    /// Returns a short reason for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAPath => "invalid request target",
            PathError::BadPercentEncoding => "invalid percent-encoding in path",
            PathError::NotUtf8 => "path is not UTF-8 after percent-decoding",
            PathError::ControlCharacter => "path contains a control character",
            PathError::DotSegment => "path contains a . or .. segment",
            PathError::TooLong => "path is longer than the 1024-byte S3 key limit",
            PathError::Directory => "path names a directory, not an object",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Returns the path part of a request target, without query or fragment.
///
/// Absolute-form targets (`http://host/path`), which HTTP/1.1 servers must
/// accept, are reduced to their path.
pub fn target_path(target: &str) -> Result<&str, PathError> {
    let path_and_query = if target.starts_with('/') {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(index) => &rest[index..],
            None => return Err(PathError::Directory),
        }
    } else {
        return Err(PathError::NotAPath);
    };
    let end = path_and_query.find(['?', '#']).unwrap_or(path_and_query.len());
    Ok(&path_and_query[..end])
}

/// Decodes a URL path (starting with `/`) into an object key.
pub fn decode_key(path: &str) -> Result<String, PathError> {
    let raw = path.strip_prefix('/').ok_or(PathError::NotAPath)?;
    let bytes = percent_decode(raw.as_bytes())?;
    let key = String::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;

    if key.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(PathError::DotSegment);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(PathError::TooLong);
    }
    // An empty key is the bucket root; a trailing slash names a prefix. Either
    // would turn into a listing, which is never served.
    if key.is_empty() || key.ends_with('/') {
        return Err(PathError::Directory);
    }
    Ok(key)
}

fn percent_decode(input: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut output = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        let byte = input[index];
        if byte == b'%' {
            let high = input.get(index + 1).and_then(|b| hex_value(*b));
            let low = input.get(index + 2).and_then(|b| hex_value(*b));
            match (high, low) {
                (Some(high), Some(low)) => output.push(high << 4 | low),
                _ => return Err(PathError::BadPercentEncoding),
            }
            index += 3;
        } else {
            output.push(byte);
            index += 1;
        }
    }
    Ok(output)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Encodes a key for the S3 canonical URI: unreserved characters
/// (`A-Z a-z 0-9 - _ . ~`) stay literal, `/` is kept, and every other byte
/// of the UTF-8 becomes `%XX` with upper-case hex.
///
/// The result is both what is signed and what is sent, so the two can never
/// differ.
pub fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut output = String::with_capacity(key.len() * 3);
    for &byte in key.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            output.push(byte as char);
        } else {
            output.push('%');
            output.push(HEX[usize::from(byte >> 4)] as char);
            output.push(HEX[usize::from(byte & 0x0f)] as char);
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(target: &str) -> Result<String, PathError> {
        decode_key(target_path(target)?)
    }

    #[test]
    fn mediawiki_examples_map() {
        let cases = [
            ("/prod/3/32/C%2B%2B_logo.png", "prod/3/32/C++_logo.png"),
            ("/prod/3/32/C++_logo.png", "prod/3/32/C++_logo.png"),
            (
                "/prod/7/7d/Ceibal_project_%28OLPC%29_Test_Image.png",
                "prod/7/7d/Ceibal_project_(OLPC)_Test_Image.png",
            ),
            (
                "/prod/7/7d/Ceibal_project_(OLPC)_Test_Image.png",
                "prod/7/7d/Ceibal_project_(OLPC)_Test_Image.png",
            ),
            (
                "/prod/thumb/b/bc/Diagram.svg/240px-Diagram.svg.png?1700000000",
                "prod/thumb/b/bc/Diagram.svg/240px-Diagram.svg.png",
            ),
            (
                "/prod/archive/a/ab/20240101000000%21Name.png",
                "prod/archive/a/ab/20240101000000!Name.png",
            ),
            (
                "/prod/a/ab/%C3%84rger%20%E6%97%A5%F0%9F%98%80.png",
                "prod/a/ab/Ärger 日😀.png",
            ),
            ("/prod//double/key.png", "prod//double/key.png"),
            ("http://images.example.org/prod/a/ab/X.png?x", "prod/a/ab/X.png"),
            ("/prod/a/ab/50%25.png", "prod/a/ab/50%.png"),
        ];
        for (target, key) in cases {
            assert_eq!(key_of(target).as_deref(), Ok(key), "{target}");
        }
    }

    #[test]
    fn decoding_happens_once() {
        assert_eq!(key_of("/a/%2541.png").as_deref(), Ok("a/%41.png"));
    }

    #[test]
    fn invalid_targets_are_rejected() {
        let cases = [
            ("*", PathError::NotAPath),
            ("prod/a.png", PathError::NotAPath),
            ("/prod/%zz.png", PathError::BadPercentEncoding),
            ("/prod/%4", PathError::BadPercentEncoding),
            ("/prod/%", PathError::BadPercentEncoding),
            ("/prod/%C3%28.png", PathError::NotUtf8),
            ("/prod/%FF.png", PathError::NotUtf8),
            ("/prod/a%00b.png", PathError::ControlCharacter),
            ("/prod/a%0Ab.png", PathError::ControlCharacter),
            ("/prod/a%7Fb.png", PathError::ControlCharacter),
            ("/prod/../secret.png", PathError::DotSegment),
            ("/prod/%2E%2E/secret.png", PathError::DotSegment),
            ("/prod/./a.png", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/", PathError::Directory),
            ("/prod/", PathError::Directory),
            ("/prod%2F", PathError::Directory),
            ("/?list-type=2", PathError::Directory),
            ("http://images.example.org", PathError::Directory),
        ];
        for (target, expected) in cases {
            assert_eq!(key_of(target), Err(expected), "{target}");
        }
        let long = format!("/{}", "a".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(key_of(&long), Err(PathError::TooLong));
        let longest = format!("/{}", "a".repeat(MAX_KEY_BYTES));
        assert!(key_of(&longest).is_ok());
    }

    #[test]
    fn query_never_reaches_key() {
        for target in ["/a.png?acl", "/a.png?versionId=1", "/a.png?list-type=2", "/a.png#frag"] {
            assert_eq!(key_of(target).as_deref(), Ok("a.png"), "{target}");
        }
    }

    #[test]
    fn encoding_follows_s3_rules() {
        let cases = [
            ("prod/a/ab/Plain-_.~9.png", "prod/a/ab/Plain-_.~9.png"),
            (
                "a b+c%d&e'f(g)h!i?j=k@l$m*n,o;p:q",
                "a%20b%2Bc%25d%26e%27f%28g%29h%21i%3Fj%3Dk%40l%24m%2An%2Co%3Bp%3Aq",
            ),
            ("ä/日/😀", "%C3%A4/%E6%97%A5/%F0%9F%98%80"),
            ("a//b", "a//b"),
        ];
        for (key, encoded) in cases {
            assert_eq!(encode_key(key), encoded, "{key}");
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        for key in ["prod/a/ab/C++ (1)!.png", "x/%41/ü", "a//b/~c"] {
            let encoded = format!("/{}", encode_key(key));
            assert_eq!(decode_key(&encoded).as_deref(), Ok(key));
        }
    }
}
