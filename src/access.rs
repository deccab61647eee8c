//! Access rules: the keys that may be served.
//!
//! The proxy's credentials can read the whole bucket, including MediaWiki's
//! private zones in the same prefix. Those are refused here, before S3 is
//! asked, so nothing about them (not even whether they exist) leaks.

use crate::config::Config;

/// Reason a key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A MediaWiki private zone: deleted files, unpublished uploads and their
    /// renderings, or a zone marker.
    PrivateZone,
    /// The key is outside every allowed prefix.
    NotAllowed,
    /// The key is under a configured deny prefix.
    Denied,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::PrivateZone => "private_zone",
            Refusal::NotAllowed => "not_allowed",
            Refusal::Denied => "denied",
        }
    }
}

/// The access rules, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    allow_prefixes: Vec<String>,
    deny_prefixes: Vec<String>,
    mediawiki_private: bool,
}

impl Policy {
    pub fn new(config: &Config) -> Policy {
        Policy {
            allow_prefixes: config.allow_prefixes.clone(),
            deny_prefixes: config.deny_prefixes.clone(),
            mediawiki_private: config.mediawiki_private,
        }
    }

    /// Checks a decoded key against the rules.
    ///
    /// Empty segments are dropped before matching: some stores (s3s-fs, any
    /// file system) read `prod//deleted/x` as `prod/deleted/x`, so the
    /// rules must see the same path.
    pub fn check(&self, key: &str) -> Result<(), Refusal> {
        let normalized: Vec<&str> = key.split('/').filter(|segment| !segment.is_empty()).collect();
        let key = normalized.join("/");
        let key = key.as_str();
        if self.deny_prefixes.iter().any(|prefix| key.starts_with(prefix.as_str())) {
            return Err(Refusal::Denied);
        }

        // The wiki's zones sit right below its top directory. With an allow
        // list the top directories are known; without one the top directory
        // may be absent (zones at the first segment) or one segment deep.
        let zone_offsets: Vec<usize> = if self.allow_prefixes.is_empty() {
            vec![0, 1]
        } else {
            let Some(prefix) = self
                .allow_prefixes
                .iter()
                .find(|prefix| key.starts_with(prefix.as_str()))
            else {
                return Err(Refusal::NotAllowed);
            };
            vec![prefix.matches('/').count()]
        };

        if self.mediawiki_private {
            let segments: Vec<&str> = key.split('/').collect();
            if segments.contains(&".htsecure") {
                return Err(Refusal::PrivateZone);
            }
            if zone_offsets
                .into_iter()
                .any(|offset| is_private_zone(&segments, offset))
            {
                return Err(Refusal::PrivateZone);
            }
        }
        Ok(())
    }
}

/// Reports whether the segments from `offset` on start a private zone:
/// `deleted/`, `temp/`, `thumb/temp/` or `transcoded/temp/`.
fn is_private_zone(segments: &[&str], offset: usize) -> bool {
    match segments.get(offset) {
        Some(&"deleted") | Some(&"temp") => true,
        Some(&"thumb") | Some(&"transcoded") => segments.get(offset + 1) == Some(&"temp"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str], mediawiki_private: bool) -> Policy {
        Policy {
            allow_prefixes: allow.iter().map(|s| s.to_string()).collect(),
            deny_prefixes: deny.iter().map(|s| s.to_string()).collect(),
            mediawiki_private,
        }
    }

    const PUBLIC: &[&str] = &[
        "prod/a/ab/Name.png",
        "prod/archive/a/ab/20240101000000!Name.png",
        "prod/thumb/a/ab/Name.png/120px-Name.png",
        "prod/thumb/archive/a/ab/20240101000000!Name.png/120px-Name.png",
        "prod/transcoded/a/ab/Clip.webm/Clip.webm.480p.vp9.webm",
        "prod/a/ab/Temp.png",
        "prod/t/te/temp",
    ];

    const PRIVATE: &[&str] = &[
        "prod/deleted/0/h/9/0h9oqca5rsu9q1zrg9l22wi73rsz5o7.jpg",
        "prod/temp/3/36/20240101120000!phpA1b2C3.png",
        "prod/thumb/temp/3/36/20240101120000!phpA1b2C3.png/120px-x.png",
        "prod/transcoded/temp/3/36/x.webm/x.webm.480p.webm",
        "prod/.htsecure",
        "prod/deleted/.htsecure",
        "deleted/0/h/9/x.jpg",
        "temp/x.png",
        "thumb/temp/x.png/120px-x.png",
    ];

    #[test]
    fn mediawiki_zones_without_allow_list() {
        let rules = policy(&[], &[], true);
        for key in PUBLIC {
            assert_eq!(rules.check(key), Ok(()), "{key}");
        }
        for key in PRIVATE {
            assert_eq!(rules.check(key), Err(Refusal::PrivateZone), "{key}");
        }
    }

    #[test]
    fn zones_follow_allowed_top_directory() {
        let rules = policy(&["prod/", "wiki/media/"], &[], true);
        for key in PUBLIC {
            assert_eq!(rules.check(key), Ok(()), "{key}");
        }
        assert_eq!(rules.check("wiki/media/a/ab/X.png"), Ok(()));
        assert_eq!(rules.check("wiki/media/deleted/x.png"), Err(Refusal::PrivateZone));
        assert_eq!(rules.check("wiki/media/thumb/temp/x.png"), Err(Refusal::PrivateZone));
        assert_eq!(rules.check("prod/temp/x.png"), Err(Refusal::PrivateZone));
        assert_eq!(rules.check("staging/a/ab/X.png"), Err(Refusal::NotAllowed));
        assert_eq!(rules.check("production/a/ab/X.png"), Err(Refusal::NotAllowed));
        assert_eq!(rules.check("favicon.ico"), Err(Refusal::NotAllowed));
    }

    #[test]
    fn empty_segments_do_not_hide_zones() {
        for rules in [
            policy(&[], &["prod/archive/"], true),
            policy(&["prod/"], &["prod/archive/"], true),
        ] {
            for key in [
                "prod//deleted/x.png",
                "prod/thumb//temp/x.png",
                "/prod/temp/x",
                "prod///.htsecure",
            ] {
                assert_eq!(rules.check(key), Err(Refusal::PrivateZone), "{key}");
            }
            assert_eq!(rules.check("prod//archive/a/ab/1!X.png"), Err(Refusal::Denied));
            assert_eq!(rules.check("prod/a//ab/X.png"), Ok(()));
        }
    }

    #[test]
    fn deny_prefixes_win() {
        let rules = policy(&["prod/"], &["prod/archive/"], true);
        assert_eq!(rules.check("prod/archive/a/ab/1!X.png"), Err(Refusal::Denied));
        assert_eq!(rules.check("prod/a/ab/X.png"), Ok(()));
    }

    #[test]
    fn zones_can_be_switched_off() {
        let rules = policy(&[], &[], false);
        for key in PRIVATE {
            assert_eq!(rules.check(key), Ok(()), "{key}");
        }
    }
}
