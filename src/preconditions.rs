//! Conditional requests and Range, evaluated as RFC 9110 sections 13 and 14
//! specify.
//!
//! The conditions go to S3, which returns 304 and 412 itself on real S3,
//! Ceph RGW and MinIO. Some servers (s3s-fs among them) ignore them, so the
//! proxy evaluates them again against the ETag and Last-Modified of every
//! 200 or 206 response. If-Range is never sent: S3 does not define it, so the
//! proxy checks it against the partial answer instead.

use std::time::SystemTime;

use http::{HeaderName, HeaderValue};

/// Result of evaluating the preconditions against an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the object.
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: a precondition failed.
    PreconditionFailed,
}

/// One entity tag from a list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityTag {
    weak: bool,
    /// The quoted part, quotes included.
    opaque: String,
}

impl EntityTag {
    fn render(&self) -> String {
        if self.weak {
            format!("W/{}", self.opaque)
        } else {
            self.opaque.clone()
        }
    }
}

/// An `If-Match` or `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TagList {
    Any,
    Tags(Vec<EntityTag>),
}

/// Parses `*` or a comma-separated list of entity tags. Returns `None` for a
/// malformed value, which is then treated as matching nothing.
fn parse_tag_list(value: &str) -> Option<TagList> {
    if value.trim() == "*" {
        return Some(TagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let (weak, after_prefix) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inner = after_prefix.strip_prefix('"')?;
        let end = inner.find('"')?;
        let opaque = &inner[..end];
        // etagc excludes DQUOTE, controls and spaces.
        if opaque.bytes().any(|b| b < 0x21 || b == 0x7f) {
            return None;
        }
        tags.push(EntityTag {
            weak,
            opaque: format!("\"{opaque}\""),
        });
        rest = inner[end + 1..].trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    if tags.is_empty() {
        None
    } else {
        Some(TagList::Tags(tags))
    }
}

/// Parses a response ETag, adding quotes if a server left them out.
fn parse_response_etag(value: &str) -> Option<EntityTag> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (weak, rest) = match value.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let opaque = if rest.starts_with('"') && rest.ends_with('"') && rest.len() >= 2 {
        rest.to_string()
    } else {
        format!("\"{}\"", rest.trim_matches('"'))
    };
    Some(EntityTag { weak, opaque })
}

/// Returns the ETag as it should be sent to the client: quoted.
pub fn normalize_etag(value: &str) -> Option<String> {
    parse_response_etag(value).map(|tag| tag.render())
}

fn strong_match(list: &TagList, current: Option<&EntityTag>) -> bool {
    match (list, current) {
        (TagList::Any, Some(_)) => true,
        (TagList::Tags(tags), Some(current)) => {
            !current.weak && tags.iter().any(|tag| !tag.weak && tag.opaque == current.opaque)
        }
        (_, None) => false,
    }
}

fn weak_match(list: &TagList, current: Option<&EntityTag>) -> bool {
    match (list, current) {
        (TagList::Any, Some(_)) => true,
        (TagList::Tags(tags), Some(current)) => tags.iter().any(|tag| tag.opaque == current.opaque),
        (_, None) => false,
    }
}

fn parse_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// The conditional headers and Range of one client request.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// `None` when absent; `Some(None)` when present but malformed.
    if_match: Option<Option<TagList>>,
    if_none_match: Option<Option<TagList>>,
    if_modified_since: Option<SystemTime>,
    if_unmodified_since: Option<SystemTime>,
    if_range: Option<String>,
    /// The normalized single byte range, when the request has a usable one.
    range: Option<String>,
}

impl Preconditions {
    /// Reads the request headers. `header` returns all values of a field
    /// joined with `, `, or `None`.
    pub fn from_request(header: impl Fn(&str) -> Option<String>) -> Preconditions {
        Preconditions {
            if_match: header("if-match").map(|v| parse_tag_list(&v)),
            if_none_match: header("if-none-match").map(|v| parse_tag_list(&v)),
            // A list of dates is invalid and, like any invalid date, ignored.
            if_modified_since: header("if-modified-since").and_then(|v| parse_date(&v)),
            if_unmodified_since: header("if-unmodified-since").and_then(|v| parse_date(&v)),
            if_range: header("if-range").map(|v| v.trim().to_string()),
            range: header("range").and_then(|v| normalize_range(&v)),
        }
    }

    pub fn is_conditional(&self) -> bool {
        self.if_match.is_some()
            || self.if_none_match.is_some()
            || self.if_modified_since.is_some()
            || self.if_unmodified_since.is_some()
    }

    pub fn has_if_range(&self) -> bool {
        self.if_range.is_some()
    }

    /// Returns the byte range to request, unless If-Range rules it out: a
    /// weak entity tag in If-Range never matches, so the whole object is sent.
    pub fn range(&self) -> Option<&str> {
        match &self.if_range {
            Some(value) if value.starts_with("W/") => None,
            _ => self.range.as_deref(),
        }
    }

    /// Headers to send to S3, following the precedence of RFC 9110 section
    /// 13.2.2 so that S3 receives only the conditions that apply.
    pub fn s3_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        let mut push = |name: HeaderName, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.push((name, value));
            }
        };

        match &self.if_match {
            // Ceph RGW 16 compares `*` as a literal tag and returns 412. A
            // 200 already proves that the object exists, so `*` is not sent.
            Some(Some(TagList::Any)) => {}
            // Only a single tag is sent: some servers (s3s) reject a list
            // with 400. A weak tag never passes If-Match. Whatever is not
            // sent is decided by the proxy once the object's ETag is known.
            Some(Some(TagList::Tags(tags))) => {
                if let [tag] = tags.as_slice()
                    && !tag.weak
                {
                    push(http::header::IF_MATCH, tag.opaque.clone());
                }
            }
            Some(None) => {}
            None => {
                if let Some(date) = self.if_unmodified_since {
                    push(http::header::IF_UNMODIFIED_SINCE, httpdate::fmt_http_date(date));
                }
            }
        }

        match &self.if_none_match {
            Some(Some(TagList::Any)) => push(http::header::IF_NONE_MATCH, "*".into()),
            // If-None-Match compares weakly, so W/ can be dropped. A list
            // is evaluated by the proxy, as for If-Match.
            Some(Some(TagList::Tags(tags))) => {
                if let [tag] = tags.as_slice() {
                    push(http::header::IF_NONE_MATCH, tag.opaque.clone());
                }
            }
            Some(None) => {}
            None => {
                if let Some(date) = self.if_modified_since {
                    push(http::header::IF_MODIFIED_SINCE, httpdate::fmt_http_date(date));
                }
            }
        }

        if let Some(range) = self.range() {
            push(http::header::RANGE, range.to_string());
        }
        headers
    }

    /// Evaluates the preconditions against the object's validators, in the
    /// order of RFC 9110 section 13.2.2. Only GET and HEAD reach here.
    pub fn evaluate(&self, etag: Option<&str>, last_modified: Option<SystemTime>) -> Outcome {
        let current = etag.and_then(parse_response_etag);

        match &self.if_match {
            Some(list) => {
                let matched = list.as_ref().is_some_and(|list| strong_match(list, current.as_ref()));
                if !matched {
                    return Outcome::PreconditionFailed;
                }
            }
            None => {
                if let (Some(since), Some(modified)) = (self.if_unmodified_since, last_modified)
                    && modified > since
                {
                    return Outcome::PreconditionFailed;
                }
            }
        }

        match &self.if_none_match {
            Some(list) => {
                if list.as_ref().is_some_and(|list| weak_match(list, current.as_ref())) {
                    return Outcome::NotModified;
                }
            }
            None => {
                if let (Some(since), Some(modified)) = (self.if_modified_since, last_modified)
                    && modified <= since
                {
                    return Outcome::NotModified;
                }
            }
        }
        Outcome::Proceed
    }

    /// Reports whether a partial response may be sent: true without If-Range,
    /// or when If-Range names the object's current strong ETag or exact
    /// Last-Modified date.
    pub fn if_range_allows_partial(&self, etag: Option<&str>, last_modified: Option<SystemTime>) -> bool {
        let Some(value) = &self.if_range else {
            return true;
        };
        if value.starts_with('"') || value.starts_with("W/") {
            let current = etag.and_then(parse_response_etag);
            let wanted = parse_response_etag(value);
            return matches!((wanted, current), (Some(w), Some(c)) if !w.weak && !c.weak && w.opaque == c.opaque);
        }
        matches!((parse_date(value), last_modified), (Some(date), Some(modified)) if date == modified)
    }
}

/// Returns `bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX` for a single
/// well-formed byte range, and `None` for anything else.
///
/// RFC 9110 lets a server ignore a Range it does not support, so multiple
/// ranges (S3 serves only one) and malformed values get the whole object.
pub fn normalize_range(value: &str) -> Option<String> {
    let (unit, spec) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let spec = spec.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match (first.is_empty(), last.is_empty()) {
        (false, false) => {
            let (a, b) = (number(first)?, number(last)?);
            (a <= b).then(|| format!("bytes={a}-{b}"))
        }
        (false, true) => Some(format!("bytes={}-", number(first)?)),
        (true, false) => Some(format!("bytes=-{}", number(last)?)),
        (true, true) => None,
    }
}

/// Returns the first and last byte a normalized range selects from a
/// `total`-byte object, or `None` when the range is unsatisfiable.
pub fn resolve_range(range: &str, total: u64) -> Option<(u64, u64)> {
    let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
    if total == 0 {
        return None;
    }
    match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (Some(first), last) if first < total => Some((first, last.unwrap_or(u64::MAX).min(total - 1))),
        (None, Some(suffix)) if suffix > 0 => Some((total - suffix.min(total), total - 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    const ETAG: &str = "\"abc123\"";

    fn modified() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn preconditions(pairs: &[(&str, &str)]) -> Preconditions {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Preconditions::from_request(|name| map.get(name).cloned())
    }

    fn outcome(pairs: &[(&str, &str)]) -> Outcome {
        preconditions(pairs).evaluate(Some(ETAG), Some(modified()))
    }

    #[test]
    fn if_none_match_forms() {
        let cases = [
            ("\"abc123\"", Outcome::NotModified),
            ("W/\"abc123\"", Outcome::NotModified),
            ("\"x\", \"abc123\"", Outcome::NotModified),
            ("\"x\",W/\"abc123\"", Outcome::NotModified),
            ("*", Outcome::NotModified),
            ("\"other\"", Outcome::Proceed),
            ("abc123", Outcome::Proceed),
            ("\"abc123", Outcome::Proceed),
        ];
        for (value, expected) in cases {
            assert_eq!(outcome(&[("if-none-match", value)]), expected, "{value}");
        }
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        let cases = [
            ("\"abc123\"", Outcome::Proceed),
            ("\"x\", \"abc123\"", Outcome::Proceed),
            ("*", Outcome::Proceed),
            ("W/\"abc123\"", Outcome::PreconditionFailed),
            ("\"other\"", Outcome::PreconditionFailed),
            ("garbage", Outcome::PreconditionFailed),
        ];
        for (value, expected) in cases {
            assert_eq!(outcome(&[("if-match", value)]), expected, "{value}");
        }
    }

    #[test]
    fn dates_compare_by_second() {
        let same = httpdate::fmt_http_date(modified());
        let earlier = httpdate::fmt_http_date(modified() - Duration::from_secs(1));
        let later = httpdate::fmt_http_date(modified() + Duration::from_secs(1));
        assert_eq!(outcome(&[("if-modified-since", &same)]), Outcome::NotModified);
        assert_eq!(outcome(&[("if-modified-since", &later)]), Outcome::NotModified);
        assert_eq!(outcome(&[("if-modified-since", &earlier)]), Outcome::Proceed);
        assert_eq!(outcome(&[("if-modified-since", "not a date")]), Outcome::Proceed);
        assert_eq!(outcome(&[("if-unmodified-since", &same)]), Outcome::Proceed);
        assert_eq!(
            outcome(&[("if-unmodified-since", &earlier)]),
            Outcome::PreconditionFailed
        );
        assert_eq!(outcome(&[("if-unmodified-since", "garbage")]), Outcome::Proceed);
    }

    #[test]
    fn precedence_follows_rfc() {
        let earlier = httpdate::fmt_http_date(modified() - Duration::from_secs(60));
        let later = httpdate::fmt_http_date(modified() + Duration::from_secs(60));
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            outcome(&[("if-none-match", "\"other\""), ("if-modified-since", &later)]),
            Outcome::Proceed
        );
        // If-Match wins over If-Unmodified-Since.
        assert_eq!(
            outcome(&[("if-match", ETAG), ("if-unmodified-since", &earlier)]),
            Outcome::Proceed
        );
        // A failed If-Match is 412 even when If-None-Match would give 304.
        assert_eq!(
            outcome(&[("if-match", "\"other\""), ("if-none-match", ETAG)]),
            Outcome::PreconditionFailed
        );
    }

    #[test]
    fn s3_headers_follow_precedence() {
        let later = httpdate::fmt_http_date(modified());
        let names = |p: &Preconditions| -> Vec<String> { p.s3_headers().iter().map(|(n, _)| n.to_string()).collect() };
        let both = preconditions(&[("if-none-match", "W/\"a\""), ("if-modified-since", &later)]);
        assert_eq!(names(&both), vec!["if-none-match"]);
        assert_eq!(both.s3_headers()[0].1, "\"a\"");
        let list = preconditions(&[("if-none-match", "\"a\", \"b\""), ("if-match", "\"a\", \"b\"")]);
        assert!(names(&list).is_empty());
        let only_weak = preconditions(&[("if-match", "W/\"a\""), ("if-unmodified-since", &later)]);
        assert!(names(&only_weak).is_empty());
        let dates = preconditions(&[("if-modified-since", &later), ("if-unmodified-since", &later)]);
        assert_eq!(names(&dates), vec!["if-unmodified-since", "if-modified-since"]);
        let ranged = preconditions(&[("range", "bytes=0-9"), ("if-range", ETAG)]);
        assert_eq!(names(&ranged), vec!["range"]);
    }

    #[test]
    fn if_range_decides_partial() {
        let exact = httpdate::fmt_http_date(modified());
        let other = httpdate::fmt_http_date(modified() + Duration::from_secs(1));
        let cases = [
            (ETAG, true),
            ("\"other\"", false),
            ("W/\"abc123\"", false),
            (exact.as_str(), true),
            (other.as_str(), false),
            ("garbage", false),
        ];
        for (value, expected) in cases {
            let p = preconditions(&[("range", "bytes=0-1"), ("if-range", value)]);
            assert_eq!(
                p.if_range_allows_partial(Some(ETAG), Some(modified())),
                expected,
                "{value}"
            );
        }
        let weak = preconditions(&[("range", "bytes=0-1"), ("if-range", "W/\"abc123\"")]);
        assert_eq!(weak.range(), None);
    }

    #[test]
    fn ranges_normalize() {
        let cases = [
            ("bytes=0-99", Some("bytes=0-99")),
            (" bytes = 5 - ", Some("bytes=5-")),
            ("bytes=-500", Some("bytes=-500")),
            ("BYTES=1-1", Some("bytes=1-1")),
            ("bytes=0-0,5-9", None),
            ("bytes=9-1", None),
            ("bytes=-", None),
            ("bytes=a-b", None),
            ("bytes=+1-2", None),
            ("items=0-1", None),
            ("bytes 0-1", None),
            ("bytes=99999999999999999999-", None),
        ];
        for (value, expected) in cases {
            assert_eq!(normalize_range(value).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn ranges_resolve() {
        let cases = [
            ("bytes=0-", 10, Some((0, 9))),
            ("bytes=0-9", 10, Some((0, 9))),
            ("bytes=0-100", 10, Some((0, 9))),
            ("bytes=2-4", 10, Some((2, 4))),
            ("bytes=9-", 10, Some((9, 9))),
            ("bytes=-3", 10, Some((7, 9))),
            ("bytes=-10", 10, Some((0, 9))),
            ("bytes=-50", 10, Some((0, 9))),
            ("bytes=10-", 10, None),
            ("bytes=-0", 10, None),
            ("bytes=0-", 0, None),
            ("bytes=-5", 0, None),
        ];
        for (range, total, expected) in cases {
            assert_eq!(resolve_range(range, total), expected, "{range} of {total}");
        }
    }

    #[test]
    fn etags_normalize() {
        assert_eq!(normalize_etag("\"abc\"").as_deref(), Some("\"abc\""));
        assert_eq!(normalize_etag("abc").as_deref(), Some("\"abc\""));
        assert_eq!(normalize_etag("W/\"abc\"").as_deref(), Some("W/\"abc\""));
        assert_eq!(normalize_etag("  ").as_deref(), None);
    }
}
