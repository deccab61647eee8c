//! Settings read from the environment and checked once at start.
//!
//! The `S3_*` names are the ones the deployment already uses. The proxy's own
//! settings all start with `PROXY_`. Every value is validated here, so the rest
//! of the program never receives a malformed one.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::log::Level;

/// Default `Cache-Control` for objects.
///
/// The wiki overwrites the current version of a file under the same key, so a
/// long lifetime would keep showing the old image after a re-upload. Five
/// minutes bounds that staleness while browsers and CDNs still revalidate
/// cheaply with `If-None-Match` afterwards.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=300";

/// Default `Cache-Control` for 404 responses.
///
/// The wiki stores a thumbnail before it prints the thumbnail's URL, so a 404
/// is either a real miss or a short race with a re-upload. Either way it is
/// cached only briefly.
pub const DEFAULT_CACHE_CONTROL_NOT_FOUND: &str = "public, max-age=10";

/// A secret value that never appears in `Debug` or log output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// Returns the raw value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Scheme of the S3 endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// The S3 endpoint, split into the parts the client and the signer need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host name or IP literal; IPv6 literals keep their brackets.
    pub host: String,
    /// Port, `None` when it is the scheme's default.
    pub port: Option<u16>,
}

impl Endpoint {
    /// Returns the `Host` header value: the host plus a non-default port.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{}", self.host, port),
            None => self.host.clone(),
        }
    }

    /// Returns `scheme://authority` without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{}://{}", scheme, self.authority())
    }

    /// Returns the TCP port, the scheme's default when none was given.
    pub fn port_or_default(&self) -> u16 {
        match (self.port, self.scheme) {
            (Some(port), _) => port,
            (None, Scheme::Http) => 80,
            (None, Scheme::Https) => 443,
        }
    }
}

/// Everything the proxy needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub listen: SocketAddr,
    /// Admin listener for metrics and probes; `None` disables it.
    pub admin_listen: Option<SocketAddr>,
    pub workers: usize,
    pub s3_connect_timeout: Duration,
    pub s3_response_timeout: Duration,
    pub s3_read_timeout: Duration,
    pub client_read_timeout: Duration,
    pub client_write_timeout: Duration,
    pub shutdown_delay: Duration,
    pub grace_period: Duration,
    pub cache_control: String,
    pub cache_control_not_found: String,
    /// Key prefixes that may be served, each ending in `/`; empty means all.
    pub allow_prefixes: Vec<String>,
    /// Key prefixes that are always refused, each ending in `/`.
    pub deny_prefixes: Vec<String>,
    /// Refuse MediaWiki's private zones (deleted, temp, `.htsecure`).
    pub mediawiki_private: bool,
    pub s3_ca_file: Option<PathBuf>,
    pub log_level: Level,
    pub ready_interval: Duration,
}

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// Every variable the proxy reads, for documentation checks and startup logs.
pub const VARIABLES: &[&str] = &[
    "S3_ENDPOINT",
    "S3_REGION",
    "S3_BUCKET_NAME",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_SESSION_TOKEN",
    "PROXY_LISTEN",
    "PROXY_ADMIN_LISTEN",
    "PROXY_WORKERS",
    "PROXY_S3_CONNECT_TIMEOUT",
    "PROXY_S3_RESPONSE_TIMEOUT",
    "PROXY_S3_READ_TIMEOUT",
    "PROXY_CLIENT_READ_TIMEOUT",
    "PROXY_CLIENT_WRITE_TIMEOUT",
    "PROXY_SHUTDOWN_DELAY",
    "PROXY_GRACE_PERIOD",
    "PROXY_CACHE_CONTROL",
    "PROXY_CACHE_CONTROL_NOT_FOUND",
    "PROXY_ALLOW_PREFIXES",
    "PROXY_DENY_PREFIXES",
    "PROXY_MEDIAWIKI_PRIVATE",
    "PROXY_S3_CA_FILE",
    "PROXY_LOG_LEVEL",
    "PROXY_READY_INTERVAL",
];

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which maps a variable name to
    /// its value. Tests pass a map; `from_env` passes the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // An empty value counts as unset, as it does for most shells' `${VAR:-}`.
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let required =
            |name: &'static str| get(name).ok_or_else(|| invalid(name, "missing; this variable is required"));

        let endpoint = parse_endpoint(&required("S3_ENDPOINT")?)?;
        let region = required("S3_REGION")?;
        check_token("S3_REGION", &region, "a region name such as us-east-1 or default")?;
        let bucket = required("S3_BUCKET_NAME")?;
        check_bucket(&bucket)?;
        let access_key_id = required("S3_ACCESS_KEY_ID")?;
        check_token("S3_ACCESS_KEY_ID", &access_key_id, "the access key id, printable ASCII")?;
        let secret = required("S3_SECRET_ACCESS_KEY")?;
        if secret.chars().any(|c| c.is_control()) {
            return Err(invalid(
                "S3_SECRET_ACCESS_KEY",
                "contains a control character (a trailing newline from a file?); expected the secret key alone",
            ));
        }
        let session_token = match get("S3_SESSION_TOKEN") {
            Some(token) if token.chars().any(|c| c.is_control()) => {
                return Err(invalid(
                    "S3_SESSION_TOKEN",
                    "contains a control character; expected the session token alone",
                ));
            }
            other => other.map(Secret::new),
        };

        let listen = parse_listen(
            "PROXY_LISTEN",
            &get("PROXY_LISTEN").unwrap_or_else(|| "0.0.0.0:8000".into()),
        )?;
        // The admin listener is on by default; an explicitly empty value turns it off.
        let admin_listen = match lookup("PROXY_ADMIN_LISTEN") {
            Some(value) if value.is_empty() => None,
            Some(value) => Some(parse_listen("PROXY_ADMIN_LISTEN", &value)?),
            None => Some(parse_listen("PROXY_ADMIN_LISTEN", "0.0.0.0:9090")?),
        };
        if let Some(admin) = admin_listen
            && admin.port() != 0
            && admin == listen
        {
            return Err(invalid(
                "PROXY_ADMIN_LISTEN",
                format!("{admin} is the same address as PROXY_LISTEN; expected a different port"),
            ));
        }

        let workers = match get("PROXY_WORKERS") {
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "PROXY_WORKERS",
                        format!("invalid value {value:?}; expected a whole number from 1 to 1024"),
                    ));
                }
            },
            None => 32,
        };

        let duration = |name: &'static str, default: Duration, allow_zero: bool| match get(name) {
            Some(value) => parse_duration(name, &value, allow_zero),
            None => Ok(default),
        };

        let cache_control = get("PROXY_CACHE_CONTROL").unwrap_or_else(|| DEFAULT_CACHE_CONTROL.into());
        check_header_value("PROXY_CACHE_CONTROL", &cache_control)?;
        let cache_control_not_found =
            get("PROXY_CACHE_CONTROL_NOT_FOUND").unwrap_or_else(|| DEFAULT_CACHE_CONTROL_NOT_FOUND.into());
        check_header_value("PROXY_CACHE_CONTROL_NOT_FOUND", &cache_control_not_found)?;

        let mediawiki_private = match get("PROXY_MEDIAWIKI_PRIVATE").as_deref() {
            None => true,
            Some(value) => parse_bool("PROXY_MEDIAWIKI_PRIVATE", value)?,
        };

        let s3_ca_file = match get("PROXY_S3_CA_FILE") {
            Some(path) => {
                let path = PathBuf::from(path);
                check_ca_file(&path)?;
                Some(path)
            }
            None => None,
        };

        let log_level = match get("PROXY_LOG_LEVEL") {
            Some(value) => Level::parse(&value).ok_or_else(|| {
                invalid(
                    "PROXY_LOG_LEVEL",
                    format!("invalid value {value:?}; expected debug, info, warn or error"),
                )
            })?,
            None => Level::Info,
        };

        Ok(Config {
            endpoint,
            region,
            bucket,
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token,
            listen,
            admin_listen,
            workers,
            s3_connect_timeout: duration("PROXY_S3_CONNECT_TIMEOUT", Duration::from_secs(5), false)?,
            s3_response_timeout: duration("PROXY_S3_RESPONSE_TIMEOUT", Duration::from_secs(15), false)?,
            s3_read_timeout: duration("PROXY_S3_READ_TIMEOUT", Duration::from_secs(30), false)?,
            client_read_timeout: duration("PROXY_CLIENT_READ_TIMEOUT", Duration::from_secs(30), false)?,
            client_write_timeout: duration("PROXY_CLIENT_WRITE_TIMEOUT", Duration::from_secs(30), false)?,
            shutdown_delay: duration("PROXY_SHUTDOWN_DELAY", Duration::ZERO, true)?,
            grace_period: duration("PROXY_GRACE_PERIOD", Duration::from_secs(20), true)?,
            cache_control,
            cache_control_not_found,
            allow_prefixes: parse_prefixes("PROXY_ALLOW_PREFIXES", get("PROXY_ALLOW_PREFIXES"))?,
            deny_prefixes: parse_prefixes("PROXY_DENY_PREFIXES", get("PROXY_DENY_PREFIXES"))?,
            mediawiki_private,
            s3_ca_file,
            log_level,
            ready_interval: duration("PROXY_READY_INTERVAL", Duration::from_secs(10), false)?,
        })
    }

    /// Returns the effective settings as JSON, with secrets masked.
    pub fn to_log_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;

        let millis = |d: Duration| json!(d.as_millis() as u64);
        let fields = json!({
            "s3_endpoint": self.endpoint.base_url(),
            "s3_region": self.region,
            "s3_bucket": self.bucket,
            "s3_access_key_id": mask(&self.access_key_id),
            "s3_secret_access_key": "***",
            "s3_session_token": self.session_token.as_ref().map(|_| "***"),
            "listen": self.listen.to_string(),
            "admin_listen": self.admin_listen.map(|a| a.to_string()),
            "workers": self.workers,
            "s3_connect_timeout_ms": millis(self.s3_connect_timeout),
            "s3_response_timeout_ms": millis(self.s3_response_timeout),
            "s3_read_timeout_ms": millis(self.s3_read_timeout),
            "client_read_timeout_ms": millis(self.client_read_timeout),
            "client_write_timeout_ms": millis(self.client_write_timeout),
            "shutdown_delay_ms": millis(self.shutdown_delay),
            "grace_period_ms": millis(self.grace_period),
            "cache_control": self.cache_control,
            "cache_control_not_found": self.cache_control_not_found,
            "allow_prefixes": self.allow_prefixes,
            "deny_prefixes": self.deny_prefixes,
            "mediawiki_private": self.mediawiki_private,
            "s3_ca_file": self.s3_ca_file.as_ref().map(|p| p.display().to_string()),
            "log_level": self.log_level.as_str(),
            "ready_interval_ms": millis(self.ready_interval),
        });
        match fields {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("json! of an object literal is an object"),
        }
    }
}

/// Shows the first four characters of an access key id, which is enough to
/// tell keys apart in a log without revealing the whole id.
fn mask(value: &str) -> String {
    let shown: String = value.chars().take(4).collect();
    format!("{shown}***")
}

fn parse_endpoint(value: &str) -> Result<Endpoint, ConfigError> {
    const VAR: &str = "S3_ENDPOINT";
    // Credentials in the URL (user:secret@host) must not reach the error
    // message, which is logged.
    let redacted = match (value.find("://"), value.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &value[..scheme_end + 3], &value[at..]),
        (None, Some(at)) => format!("***{}", &value[at..]),
        _ => value.to_string(),
    };
    let value = redacted.as_str();
    let expected = "expected a URL such as https://s3.example.org or http://127.0.0.1:9000";
    let (scheme, rest) = if let Some(rest) = value.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = value.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(invalid(
            VAR,
            format!("{value:?} has no http:// or https:// scheme; {expected}"),
        ));
    };
    // A single trailing slash is harmless; a path prefix is not supported.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid(
            VAR,
            format!("{value:?} must name only a scheme, host and optional port (no path, query or user); {expected}"),
        ));
    }

    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err(invalid(
                VAR,
                format!("{value:?} has an unclosed IPv6 bracket; {expected}"),
            ));
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(
                VAR,
                format!("{value:?} has an invalid IPv6 address; {expected}"),
            ));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Err(invalid(
                        VAR,
                        format!("{value:?} has text after the IPv6 address; {expected}"),
                    ));
                }
            },
        };
        (format!("[{v6}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };

    let valid_host = !host.is_empty()
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'));
    if !valid_host {
        return Err(invalid(VAR, format!("{value:?} has an invalid host name; {expected}")));
    }

    let port = match port {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(invalid(
                    VAR,
                    format!("{value:?} has an invalid port {text:?}; expected 1 to 65535"),
                ));
            }
            Ok(port) => Some(port),
        },
    };
    // Dropping a default port keeps the signed Host header equal to the one sent.
    let port = match (scheme, port) {
        (Scheme::Http, Some(80)) | (Scheme::Https, Some(443)) => None,
        (_, port) => port,
    };
    Ok(Endpoint {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Checks that the file contains at least one PEM certificate whose content
/// is DER (an ASN.1 SEQUENCE), so a wrong file fails at start and not at the
/// first TLS handshake.
fn check_ca_file(path: &std::path::Path) -> Result<(), ConfigError> {
    const VAR: &str = "PROXY_S3_CA_FILE";
    let expected = "expected a PEM file with one or more BEGIN CERTIFICATE blocks";
    let pem =
        std::fs::read(path).map_err(|e| invalid(VAR, format!("cannot read {}: {e}; {expected}", path.display())))?;
    let mut certificates = 0;
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(certificate)) => {
                if certificate.der().first() != Some(&0x30) || certificate.der().len() < 64 {
                    return Err(invalid(
                        VAR,
                        format!(
                            "{} holds a certificate block that is not DER; {expected}",
                            path.display()
                        ),
                    ));
                }
                certificates += 1;
            }
            Ok(_) => {}
            Err(e) => {
                return Err(invalid(
                    VAR,
                    format!("cannot parse {}: {e}; {expected}", path.display()),
                ));
            }
        }
    }
    if certificates == 0 {
        return Err(invalid(
            VAR,
            format!("{} holds no certificate; {expected}", path.display()),
        ));
    }
    Ok(())
}

fn check_token(variable: &'static str, value: &str, expected: &str) -> Result<(), ConfigError> {
    if value.chars().all(|c| c.is_ascii_graphic()) && !value.contains('/') {
        Ok(())
    } else {
        Err(invalid(
            variable,
            format!("contains spaces, slashes or non-printable characters; expected {expected}"),
        ))
    }
}

fn check_bucket(bucket: &str) -> Result<(), ConfigError> {
    // Ceph accepts more than AWS's strict rules (upper case, underscores), so
    // this checks only what would break a path-style URL.
    let valid = bucket.len() <= 255
        && bucket != "."
        && bucket != ".."
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "S3_BUCKET_NAME",
            format!(
                "invalid bucket name {bucket:?}; expected letters, digits, '.', '-' or '_', at most 255 characters"
            ),
        ))
    }
}

fn check_header_value(variable: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid(
            variable,
            format!("invalid header value {value:?}; expected printable ASCII such as \"public, max-age=300\""),
        ))
    }
}

fn parse_listen(variable: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Host names such as localhost:8000 resolve once, at start.
    match value.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Ok(addr),
        _ => Err(invalid(
            variable,
            format!("invalid address {value:?}; expected host:port such as 0.0.0.0:8000 or [::]:8000"),
        )),
    }
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            variable,
            format!("invalid value {value:?}; expected true or false (also accepted: 1, 0, yes, no, on, off)"),
        )),
    }
}

/// Parses `500ms`, `30s`, `2m` or a bare number of seconds.
pub fn parse_duration(variable: &'static str, value: &str, allow_zero: bool) -> Result<Duration, ConfigError> {
    let text = value.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else {
        (text, 1_000)
    };
    let parsed = number.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(unit_ms));
    match parsed {
        // One day is far beyond any sensible timeout and keeps arithmetic safe.
        Some(ms) if ms <= 86_400_000 && (allow_zero || ms > 0) => Ok(Duration::from_millis(ms)),
        _ => Err(invalid(
            variable,
            format!(
                "invalid duration {value:?}; expected a whole number with ms, s or m (such as 500ms, 30s, 2m) or a bare number of seconds{}, at most one day",
                if allow_zero { "" } else { ", greater than zero" }
            ),
        )),
    }
}

fn parse_prefixes(variable: &'static str, value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut prefixes = Vec::new();
    for item in value.split(',') {
        let item = item.trim().trim_start_matches('/');
        if item.is_empty() {
            continue;
        }
        if item.chars().any(|c| c.is_control()) || item.split('/').any(|s| s == "." || s == "..") {
            return Err(invalid(
                variable,
                format!("invalid prefix {item:?}; expected comma-separated key prefixes such as prod/,staging/"),
            ));
        }
        // A prefix names a directory: "prod" must not also match "production/".
        let prefix = if item.ends_with('/') {
            item.to_string()
        } else {
            format!("{item}/")
        };
        prefixes.push(prefix);
    }
    Ok(prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("S3_ENDPOINT", "http://127.0.0.1:9000".to_string()),
            ("S3_REGION", "default".to_string()),
            ("S3_BUCKET_NAME", "wiki-media".to_string()),
            ("S3_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
            ("S3_SECRET_ACCESS_KEY", "secret/with+chars".to_string()),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn error_for(name: &'static str, value: &str) -> ConfigError {
        let mut vars = base();
        vars.insert(name, value.to_string());
        load(&vars).expect_err(value)
    }

    #[test]
    fn defaults_apply() {
        let config = load(&base()).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(config.admin_listen, Some("0.0.0.0:9090".parse().unwrap()));
        assert_eq!(config.workers, 32);
        assert_eq!(config.cache_control, DEFAULT_CACHE_CONTROL);
        assert!(config.mediawiki_private);
        assert_eq!(config.endpoint.base_url(), "http://127.0.0.1:9000");
        assert_eq!(config.shutdown_delay, Duration::ZERO);
    }

    #[test]
    fn missing_required_names_variable() {
        for name in [
            "S3_ENDPOINT",
            "S3_REGION",
            "S3_BUCKET_NAME",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
        ] {
            let mut vars = base();
            vars.remove(name);
            let error = load(&vars).unwrap_err();
            assert_eq!(error.variable, name);
            assert!(error.problem.contains("missing"), "{error}");
        }
    }

    #[test]
    fn endpoint_forms() {
        let cases = [
            ("https://s3.example.org", "https://s3.example.org", 443),
            ("https://s3.example.org/", "https://s3.example.org", 443),
            ("https://s3.example.org:443", "https://s3.example.org", 443),
            ("http://S3.Example.org:80", "http://s3.example.org", 80),
            ("http://[::1]:9000", "http://[::1]:9000", 9000),
            ("https://10.0.0.1:7480", "https://10.0.0.1:7480", 7480),
        ];
        for (input, base_url, port) in cases {
            let endpoint = parse_endpoint(input).unwrap();
            assert_eq!(endpoint.base_url(), base_url, "{input}");
            assert_eq!(endpoint.port_or_default(), port, "{input}");
        }
    }

    #[test]
    fn endpoint_rejects_malformed() {
        for input in [
            "s3.example.org",
            "ftp://s3.example.org",
            "https://",
            "https://s3.example.org/bucket",
            "https://s3.example.org:0",
            "https://s3.example.org:99999",
            "https://s3.example.org:x",
            "https://user@s3.example.org",
            "http://[::1",
            "http://[zz]:80",
            "http://exa mple.org",
        ] {
            let error = error_for("S3_ENDPOINT", input);
            assert_eq!(error.variable, "S3_ENDPOINT", "{input}");
        }
    }

    #[test]
    fn endpoint_error_hides_credentials() {
        for input in [
            "https://AKID:TopSecretValue@s3.example.org",
            "AKID:TopSecretValue@s3.example.org",
        ] {
            let error = error_for("S3_ENDPOINT", input);
            assert!(!error.to_string().contains("TopSecretValue"), "{error}");
            assert!(error.to_string().contains("***@s3.example.org"), "{error}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("X", "500ms", false).unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("X", "30s", false).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("X", "2m", false).unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("X", "7", false).unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration("X", "0s", true).unwrap(), Duration::ZERO);
        for bad in ["0", "-1s", "1.5s", "abc", "10h", "", "99999999999m"] {
            assert!(parse_duration("X", bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let cases = [
            ("PROXY_WORKERS", "0"),
            ("PROXY_WORKERS", "many"),
            ("PROXY_WORKERS", "5000"),
            ("PROXY_LISTEN", "8000"),
            ("PROXY_LISTEN", "nonsense:port"),
            ("PROXY_S3_READ_TIMEOUT", "0"),
            ("PROXY_CACHE_CONTROL", "max-age=60\r\nX-Evil: 1"),
            ("PROXY_MEDIAWIKI_PRIVATE", "maybe"),
            ("PROXY_LOG_LEVEL", "verbose"),
            ("PROXY_S3_CA_FILE", "/nonexistent/ca.pem"),
            ("PROXY_S3_CA_FILE", "/etc/hostname"),
            ("PROXY_ALLOW_PREFIXES", "prod/../x"),
            ("S3_BUCKET_NAME", "a/b"),
            ("S3_REGION", "us east"),
            ("S3_SECRET_ACCESS_KEY", "secret\n"),
        ];
        for (name, value) in cases {
            let error = error_for(name, value);
            assert_eq!(error.variable, name, "{value:?}");
        }
    }

    #[test]
    fn prefixes_normalize() {
        let mut vars = base();
        vars.insert("PROXY_ALLOW_PREFIXES", " /prod, staging/ ,,".to_string());
        let config = load(&vars).unwrap();
        assert_eq!(config.allow_prefixes, vec!["prod/".to_string(), "staging/".to_string()]);
    }

    #[test]
    fn admin_listener_can_be_disabled() {
        let mut vars = base();
        vars.insert("PROXY_ADMIN_LISTEN", String::new());
        assert_eq!(load(&vars).unwrap().admin_listen, None);
    }

    #[test]
    fn secrets_stay_out_of_output() {
        let mut vars = base();
        vars.insert("S3_SESSION_TOKEN", "token-value".to_string());
        let config = load(&vars).unwrap();
        let debug = format!("{config:?}");
        let logged = serde_json::Value::Object(config.to_log_fields()).to_string();
        for text in [&debug, &logged] {
            assert!(!text.contains("secret/with+chars"), "{text}");
            assert!(!text.contains("token-value"), "{text}");
        }
        assert!(!logged.contains("AKIDEXAMPLE"), "{logged}");
        assert!(logged.contains("AKID***"), "{logged}");
    }
}
