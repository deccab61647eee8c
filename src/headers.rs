//! Response header policy: Content-Type, security headers and caching.
//!
//! The image domain serves files that anyone with an account uploaded. A
//! script inside an SVG or HTML file must never run there, so every type a
//! browser would execute is either sandboxed (SVG, which must still display)
//! or sent as a download.

/// Security headers sent on every response.
pub const COMMON_SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    // Images are embedded by the wiki and by other sites.
    ("Cross-Origin-Resource-Policy", "cross-origin"),
];

/// Content-Security-Policy for SVG: no scripts, no external loads, inline
/// styles and data: images and fonts allowed so that drawings still render
/// when opened directly. `sandbox` also gives the document an opaque origin.
pub const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; sandbox";

/// Content-Security-Policy for downloads and proxy-generated responses.
pub const LOCKED_CSP: &str = "default-src 'none'; sandbox";

/// S3 Content-Types that carry no information about the file.
const GENERIC_TYPES: &[&str] = &["binary/octet-stream", "application/octet-stream"];

/// Chooses the Content-Type: S3's when it is specific, otherwise the one
/// the file extension implies, otherwise `application/octet-stream`.
pub fn content_type(s3_type: Option<&str>, key: &str) -> String {
    if let Some(value) = s3_type.map(str::trim).filter(|v| is_media_type(v))
        && !GENERIC_TYPES.contains(&essence(value).as_str())
    {
        return value.to_string();
    }
    let file_name = key.rsplit('/').next().unwrap_or(key);
    match mime_guess::from_path(file_name).first_raw() {
        Some(guessed) => guessed.to_string(),
        None => "application/octet-stream".to_string(),
    }
}

/// Reports whether `value` is one media type: `type/subtype` made of RFC
/// 9110 token characters, optionally followed by `;` parameters.
///
/// A list such as `image/png, text/html` is rejected: browsers act on the
/// last type in it, while the security checks here read the first.
fn is_media_type(value: &str) -> bool {
    let is_token = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let (essence, parameters) = value.split_once(';').unwrap_or((value, ""));
    let valid_essence = essence
        .trim()
        .split_once('/')
        .is_some_and(|(top, sub)| is_token(top) && is_token(sub));
    let valid_parameters =
        !parameters.contains(',') && parameters.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    valid_essence && valid_parameters
}

/// Returns the lower-case `type/subtype` of a media type, without parameters.
pub fn essence(media_type: &str) -> String {
    media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Handling of a media type by browsers on the image domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Displayed as is: images, audio, video, PDF, plain text, fonts.
    Inline,
    /// SVG: displayed, but under a script-blocking policy.
    Sandboxed,
    /// Anything a browser might execute or that the proxy does not know:
    /// sent as an attachment under a locked policy.
    Download,
}

pub fn treatment(content_type: &str) -> Treatment {
    let essence = essence(content_type);
    if essence == "image/svg+xml" {
        return Treatment::Sandboxed;
    }
    let (top, _) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    let inline = matches!(top, "image" | "audio" | "video" | "font")
        || matches!(
            essence.as_str(),
            "application/pdf" | "application/ogg" | "text/plain" | "text/csv" | "application/json"
        );
    if inline { Treatment::Inline } else { Treatment::Download }
}

/// Returns the Content-Disposition to send: S3's for displayable types, and
/// `attachment` (keeping S3's parameters, such as the file name) otherwise.
pub fn content_disposition(treatment: Treatment, s3_value: Option<&str>) -> Option<String> {
    match treatment {
        Treatment::Inline | Treatment::Sandboxed => s3_value.map(str::to_string),
        Treatment::Download => {
            let parameters = s3_value
                .and_then(|value| value.split_once(';'))
                .map(|(_, rest)| rest.trim());
            match parameters {
                Some(rest) if !rest.is_empty() => Some(format!("attachment; {rest}")),
                _ => Some("attachment".to_string()),
            }
        }
    }
}

/// Returns the Content-Security-Policy for an object of this treatment.
pub fn content_security_policy(treatment: Treatment) -> Option<&'static str> {
    match treatment {
        Treatment::Inline => None,
        Treatment::Sandboxed => Some(SVG_CSP),
        Treatment::Download => Some(LOCKED_CSP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_prefers_specific_s3_type() {
        assert_eq!(content_type(Some("image/png"), "a.jpg"), "image/png");
        assert_eq!(
            content_type(Some("application/ogg"), "prod/a/ab/Clip.ogv"),
            "application/ogg"
        );
        assert_eq!(
            content_type(Some("text/plain; charset=utf-8"), "a.txt"),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn content_type_falls_back_to_extension() {
        let cases = [
            (Some("binary/octet-stream"), "prod/a/ab/Photo.JPG", "image/jpeg"),
            (Some("application/octet-stream"), "prod/a/ab/Map.svg", "image/svg+xml"),
            (None, "prod/a/ab/Clip.webm", "video/webm"),
            (Some(""), "prod/thumb/a/ab/X.svg/120px-X.svg.png", "image/png"),
            (Some("garbage"), "prod/a/ab/Doc.pdf", "application/pdf"),
            (Some("image/png, text/html"), "prod/a/ab/X.html", "text/html"),
            (Some("image/png,text/html"), "prod/a/ab/X.png", "image/png"),
            (Some("image/png; x=\"a,b\""), "prod/a/ab/X.svg", "image/svg+xml"),
            (Some("image /png"), "prod/a/ab/X.png", "image/png"),
            (Some("text/plain\u{7f}"), "prod/a/ab/X.txt", "text/plain"),
            (None, "prod/a/ab/Image.webp", "image/webp"),
            (None, "prod/a/ab/No_extension", "application/octet-stream"),
            (
                Some("binary/octet-stream"),
                "prod/a/ab/x.unknownext",
                "application/octet-stream",
            ),
        ];
        for (s3_type, key, expected) in cases {
            assert_eq!(content_type(s3_type, key), expected, "{key}");
        }
    }

    #[test]
    fn executable_types_become_downloads() {
        for media_type in [
            "text/html",
            "text/html; charset=utf-8",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "text/javascript",
            "application/javascript",
            "application/x-shockwave-flash",
            "application/octet-stream",
            "text/xsl",
            "multipart/x-mixed-replace",
        ] {
            assert_eq!(treatment(media_type), Treatment::Download, "{media_type}");
        }
        assert_eq!(treatment("image/svg+xml"), Treatment::Sandboxed);
        for media_type in [
            "image/png",
            "IMAGE/JPEG",
            "video/webm",
            "audio/ogg",
            "application/pdf",
            "text/plain",
        ] {
            assert_eq!(treatment(media_type), Treatment::Inline, "{media_type}");
        }
    }

    #[test]
    fn disposition_keeps_file_name() {
        assert_eq!(
            content_disposition(Treatment::Download, Some("inline; filename=\"x.html\"")).as_deref(),
            Some("attachment; filename=\"x.html\"")
        );
        assert_eq!(
            content_disposition(Treatment::Download, None).as_deref(),
            Some("attachment")
        );
        assert_eq!(
            content_disposition(Treatment::Inline, Some("inline; filename=120px-X.png")).as_deref(),
            Some("inline; filename=120px-X.png")
        );
        assert_eq!(content_disposition(Treatment::Sandboxed, None), None);
    }

    #[test]
    fn svg_policy_blocks_scripts() {
        let policy = content_security_policy(Treatment::Sandboxed).unwrap();
        assert!(policy.contains("default-src 'none'"));
        assert!(policy.contains("sandbox"));
        assert!(!policy.contains("script-src"));
        assert_eq!(content_security_policy(Treatment::Inline), None);
    }
}
