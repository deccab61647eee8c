//! A Ceph RADOS Gateway reached through the `S3_PROXY_CEPH_*` environment
//! variables that `scripts/ceph-local start` writes, with one fresh bucket per
//! test.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{S3Backend, SignedResponse, SigningCredentials, encode_key_path, send_signed};

/// Connection details of the RGW under test, read from the environment.
#[derive(Clone, Debug)]
pub struct RgwSettings {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Keys of a second RGW user that owns nothing, when the environment has
    /// them.
    pub reader: Option<(String, String)>,
    /// radosgw's `request_timeout_ms`, after which it closes an idle
    /// keep-alive connection, when the environment sets it.
    pub request_timeout_ms: Option<u64>,
}

impl RgwSettings {
    /// Reads `S3_PROXY_CEPH_ENDPOINT`, `S3_PROXY_CEPH_ACCESS_KEY` and
    /// `S3_PROXY_CEPH_SECRET_KEY` (required), `S3_PROXY_CEPH_REGION`
    /// (default `default`) and the optional reader keys
    /// `S3_PROXY_CEPH_READER_ACCESS_KEY` and `S3_PROXY_CEPH_READER_SECRET_KEY`
    /// and `S3_PROXY_CEPH_REQUEST_TIMEOUT_MS`.
    /// Panics with instructions when a required variable is missing.
    pub fn from_env() -> RgwSettings {
        let required = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run these tests with scripts/test-ceph, which starts RGW and sets it")
            })
        };
        let optional = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let reader = match (
            optional("S3_PROXY_CEPH_READER_ACCESS_KEY"),
            optional("S3_PROXY_CEPH_READER_SECRET_KEY"),
        ) {
            (Some(access_key), Some(secret_key)) => Some((access_key, secret_key)),
            _ => None,
        };
        RgwSettings {
            endpoint: required("S3_PROXY_CEPH_ENDPOINT").trim_end_matches('/').to_owned(),
            region: optional("S3_PROXY_CEPH_REGION").unwrap_or_else(|| "default".to_owned()),
            access_key: required("S3_PROXY_CEPH_ACCESS_KEY"),
            secret_key: required("S3_PROXY_CEPH_SECRET_KEY"),
            reader,
            request_timeout_ms: optional("S3_PROXY_CEPH_REQUEST_TIMEOUT_MS").map(|value| {
                value.parse().unwrap_or_else(|_| {
                    panic!("invalid S3_PROXY_CEPH_REQUEST_TIMEOUT_MS {value:?}: expected milliseconds")
                })
            }),
        }
    }
}

/// Returns a bucket name no other test or earlier run uses: lower case,
/// at most 63 characters, as S3 requires.
fn unique_bucket_name(label: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let serial = COUNTER.fetch_add(1, Ordering::SeqCst);
    let mut name = format!(
        "s3proxy-{label}-{}-{serial}-{:x}",
        std::process::id(),
        nanos % (1 << 40)
    );
    name.truncate(63);
    name
}

/// A bucket in RGW that this test created, with the objects put into it. As
/// an [`S3Backend`] it configures the proxy with the owner's credentials.
/// Dropping it deletes those objects and the bucket. A panicking test leaves
/// them in place for inspection.
pub struct RgwBucket {
    settings: RgwSettings,
    bucket: String,
    keys: Mutex<Vec<String>>,
}

impl RgwBucket {
    /// Creates a new bucket owned by the owner user. `label` becomes part of
    /// its name, so use lower-case letters, digits and hyphens.
    pub fn create(label: &str) -> RgwBucket {
        let settings = RgwSettings::from_env();
        let bucket = unique_bucket_name(label);
        let created = RgwBucket {
            settings,
            bucket,
            keys: Mutex::new(Vec::new()),
        };
        let response = created.owner_request("PUT", &format!("/{}", created.bucket), &[], b"");
        assert_eq!(
            response.status,
            200,
            "CreateBucket {} failed: {}",
            created.bucket,
            response.body_text()
        );
        created
    }

    pub fn settings(&self) -> &RgwSettings {
        &self.settings
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }

    /// Returns a backend for the proxy with the same endpoint and bucket but
    /// other credentials.
    pub fn with_proxy_credentials(&self, access_key: &str, secret_key: &str) -> ProxyBackend {
        ProxyBackend {
            endpoint: self.settings.endpoint.clone(),
            region: self.settings.region.clone(),
            bucket: self.bucket.clone(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
        }
    }

    /// Returns a backend for the proxy with the owner's credentials but the
    /// bucket name `bucket`.
    pub fn with_proxy_bucket(&self, bucket: &str) -> ProxyBackend {
        ProxyBackend {
            endpoint: self.settings.endpoint.clone(),
            region: self.settings.region.clone(),
            bucket: bucket.to_owned(),
            access_key: self.settings.access_key.clone(),
            secret_key: self.settings.secret_key.clone(),
        }
    }

    pub fn owner_credentials(&self) -> SigningCredentials {
        SigningCredentials {
            access_key: self.settings.access_key.clone(),
            secret_key: self.settings.secret_key.clone(),
            region: self.settings.region.clone(),
        }
    }

    /// Sends a request signed by the owner to `path_and_query`, which must be
    /// percent-encoded already.
    pub fn owner_request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> SignedResponse {
        send_signed(
            &self.settings.endpoint,
            &self.owner_credentials(),
            method,
            path_and_query,
            headers,
            body,
        )
    }

    /// Path-style request target of `key` in this bucket.
    pub fn object_path(&self, key: &str) -> String {
        format!("/{}/{}", self.bucket, encode_key_path(key))
    }

    /// Stores `bytes` under `key` with the given request headers
    /// (Content-Type, Content-Encoding...) and returns RGW's ETag.
    pub fn put(&self, key: &str, bytes: &[u8], headers: &[(&str, &str)]) -> String {
        let response = self.owner_request("PUT", &self.object_path(key), headers, bytes);
        assert_eq!(
            response.status,
            200,
            "PutObject {key:?} failed: {}",
            response.body_text()
        );
        self.keys.lock().unwrap().push(key.to_owned());
        response
            .header("etag")
            .unwrap_or_else(|| panic!("PutObject {key:?} returned no ETag"))
            .to_owned()
    }

    /// Stores `bytes` under `key` with a Content-Type.
    pub fn put_typed(&self, key: &str, bytes: &[u8], content_type: &str) -> String {
        self.put(key, bytes, &[("content-type", content_type)])
    }

    /// Sends a HeadObject signed by the owner, straight to RGW.
    pub fn head_object(&self, key: &str) -> SignedResponse {
        self.owner_request("HEAD", &self.object_path(key), &[], b"")
    }

    /// Sends a GetObject signed by the owner, straight to RGW.
    pub fn get_object(&self, key: &str, headers: &[(&str, &str)]) -> SignedResponse {
        self.owner_request("GET", &self.object_path(key), headers, b"")
    }

    /// Sets the bucket policy (PutBucketPolicy) to `policy`, a JSON
    /// document.
    pub fn put_policy(&self, policy: &str) {
        let response = self.owner_request(
            "PUT",
            &format!("/{}?policy", self.bucket),
            &[("content-type", "application/json")],
            policy.as_bytes(),
        );
        assert!(
            response.status == 200 || response.status == 204,
            "PutBucketPolicy on {} failed with {}: {}",
            self.bucket,
            response.status,
            response.body_text()
        );
    }
}

impl S3Backend for RgwBucket {
    fn endpoint(&self) -> String {
        self.settings.endpoint.clone()
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn access_key(&self) -> &str {
        &self.settings.access_key
    }

    fn secret_key(&self) -> &str {
        &self.settings.secret_key
    }

    fn region(&self) -> &str {
        &self.settings.region
    }
}

impl Drop for RgwBucket {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("leaving RGW bucket {} in place for inspection", self.bucket);
            return;
        }
        let keys = std::mem::take(&mut *self.keys.lock().unwrap());
        for key in keys {
            let response = self.owner_request("DELETE", &self.object_path(&key), &[], b"");
            if response.status != 204 && response.status != 200 {
                eprintln!(
                    "deleting {key:?} from {} returned {}: {}",
                    self.bucket,
                    response.status,
                    response.body_text()
                );
            }
        }
        let response = self.owner_request("DELETE", &format!("/{}", self.bucket), &[], b"");
        if response.status != 204 {
            eprintln!(
                "deleting bucket {} returned {}: {}",
                self.bucket,
                response.status,
                response.body_text()
            );
        }
    }
}

/// Endpoint, bucket and credentials for a proxy that differ from the test
/// bucket's owner setup, such as a wrong secret or bucket name.
#[derive(Clone, Debug)]
pub struct ProxyBackend {
    endpoint: String,
    region: String,
    bucket: String,
    access_key: String,
    secret_key: String,
}

impl S3Backend for ProxyBackend {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn access_key(&self) -> &str {
        &self.access_key
    }

    fn secret_key(&self) -> &str {
        &self.secret_key
    }

    fn region(&self) -> &str {
        &self.region
    }
}
