//! A real S3 server for tests: s3s-fs 0.14.1 over a temporary folder, served
//! in-process with SigV4 checking, TCP_NODELAY and HTTP/1.1 keep-alive.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::conditional::ConditionalS3;
use super::signing::{SignedResponse, SigningCredentials, object_path, send_signed};

/// Access key the test servers accept.
pub const ACCESS_KEY: &str = "HARNESSACCESSKEY0001";
/// Secret key the test servers accept.
pub const SECRET_KEY: &str = "harness/secret/key/0123456789abcdefghij";
/// Bucket created by [`S3Server::start`].
pub const BUCKET: &str = "test-bucket";
/// Region used for signing. s3s accepts any region in the credential scope.
pub const REGION: &str = "us-east-1";

/// Number of requests kept by [`S3Server::recent_requests`].
const REQUEST_LOG_CAPACITY: usize = 512;

/// Connection details of an S3 endpoint, real or fake, for building proxy
/// configurations.
pub trait S3Backend {
    /// Base URL, `http://127.0.0.1:PORT`.
    fn endpoint(&self) -> String;
    fn bucket(&self) -> &str;
    fn access_key(&self) -> &str;
    fn secret_key(&self) -> &str;
    fn region(&self) -> &str;
}

/// One request as the S3 server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path exactly as sent, still percent-encoded.
    pub path: String,
    /// Raw query string without the `?`.
    pub query: Option<String>,
    /// Header names in lower case, duplicates kept.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// Returns the first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Standard headers and user metadata stored with an object by [`S3Server::put`].
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    /// User metadata names without the `x-amz-meta-` prefix.
    pub metadata: Vec<(String, String)>,
}

impl PutOptions {
    /// Options with only a Content-Type.
    pub fn content_type(content_type: &str) -> Self {
        PutOptions {
            content_type: Some(content_type.to_owned()),
            ..PutOptions::default()
        }
    }
}

#[derive(Default)]
struct RequestStats {
    requests: AtomicU64,
    connections: AtomicU64,
    log: Mutex<VecDeque<RecordedRequest>>,
}

/// The s3s service wrapped so that every request is counted and recorded
/// before s3s parses it.
#[derive(Clone)]
struct CountingService {
    inner: S3Service,
    stats: Arc<RequestStats>,
}

impl hyper::service::Service<http::Request<Incoming>> for CountingService {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let recorded = RecordedRequest {
            method: request.method().as_str().to_owned(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().map(str::to_owned),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
        };
        {
            let mut log = self.stats.log.lock().unwrap();
            if log.len() == REQUEST_LOG_CAPACITY {
                log.pop_front();
            }
            log.push_back(recorded);
        }
        self.stats.requests.fetch_add(1, Ordering::SeqCst);
        hyper::service::Service::call(&self.inner, request)
    }
}

/// s3s-fs 0.14.1 serving one bucket from a temporary folder on
/// `127.0.0.1:PORT`, checking SigV4 signatures made with [`ACCESS_KEY`] and
/// [`SECRET_KEY`].
///
/// The tokio runtime runs on its own worker threads, so tests stay
/// synchronous. Its methods block on that runtime, so call them outside any
/// async context. Dropping the server stops it and deletes the folder.
pub struct S3Server {
    runtime: Option<tokio::runtime::Runtime>,
    root: tempfile::TempDir,
    addr: SocketAddr,
    service: CountingService,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl S3Server {
    /// Starts plain s3s-fs, which ignores conditional request headers.
    pub fn start() -> S3Server {
        Self::start_inner(false)
    }

    /// Starts s3s-fs wrapped in [`ConditionalS3`], which responds to
    /// If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since on
    /// GET and HEAD with 304 or 412 the way S3 does.
    pub fn start_conditional() -> S3Server {
        Self::start_inner(true)
    }

    fn start_inner(conditional: bool) -> S3Server {
        let root = tempfile::Builder::new()
            .prefix("s3-proxy-test-s3-")
            .tempdir()
            .expect("create a temporary folder for s3s-fs");
        std::fs::create_dir(root.path().join(BUCKET)).expect("create the bucket folder");

        let file_system = s3s_fs::FileSystem::new(root.path()).expect("open the s3s-fs root");
        let mut builder = if conditional {
            S3ServiceBuilder::new(ConditionalS3::new(file_system))
        } else {
            S3ServiceBuilder::new(file_system)
        };
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = CountingService {
            inner: builder.build(),
            stats: Arc::new(RequestStats::default()),
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3s-fs")
            .enable_all()
            .build()
            .expect("build the tokio runtime for s3s-fs");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0 for s3s-fs");
        let addr = listener.local_addr().expect("local address of the listener");
        let accept_task = runtime.spawn(accept_loop(listener, service.clone()));

        S3Server {
            runtime: Some(runtime),
            root,
            addr,
            service,
            accept_task: Mutex::new(Some(accept_task)),
        }
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    pub fn region(&self) -> &str {
        REGION
    }

    /// Folder that contains the bucket directory and s3s-fs's metadata files.
    pub fn root_dir(&self) -> &std::path::Path {
        self.root.path()
    }

    pub fn credentials(&self) -> SigningCredentials {
        SigningCredentials {
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            region: REGION.to_owned(),
        }
    }

    /// Stores an object with a signed PutObject and returns its ETag, quotes
    /// included. Panics unless S3 returns 200.
    ///
    /// NOTE: s3s-fs keeps metadata in a file named after the base64 of the
    /// key, so keys longer than about 150 bytes fail on filesystems with a
    /// 255-byte name limit.
    pub fn put(&self, key: &str, bytes: &[u8], options: &PutOptions) -> String {
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(value) = &options.content_type {
            headers.push(("content-type".to_owned(), value.clone()));
        }
        if let Some(value) = &options.content_encoding {
            headers.push(("content-encoding".to_owned(), value.clone()));
        }
        if let Some(value) = &options.content_disposition {
            headers.push(("content-disposition".to_owned(), value.clone()));
        }
        for (name, value) in &options.metadata {
            headers.push((format!("x-amz-meta-{}", name.to_ascii_lowercase()), value.clone()));
        }
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();

        let response = self.signed_request("PUT", key, &header_refs, bytes);
        assert_eq!(
            response.status,
            200,
            "PutObject {key:?} failed: {}",
            response.body_text()
        );
        response
            .header("etag")
            .unwrap_or_else(|| panic!("PutObject {key:?} returned no ETag"))
            .to_owned()
    }

    /// Sends a signed request for `key` with the server's own credentials.
    pub fn signed_request(&self, method: &str, key: &str, headers: &[(&str, &str)], body: &[u8]) -> SignedResponse {
        let path = object_path(BUCKET, key);
        send_signed(&self.endpoint(), &self.credentials(), method, &path, headers, body)
    }

    /// Sends a signed GetObject for `key`.
    pub fn signed_get(&self, key: &str, headers: &[(&str, &str)]) -> SignedResponse {
        self.signed_request("GET", key, headers, &[])
    }

    /// Number of HTTP requests received since start, counted before s3s
    /// checks the signature.
    pub fn requests_seen(&self) -> u64 {
        self.service.stats.requests.load(Ordering::SeqCst)
    }

    /// Number of TCP connections accepted since start.
    pub fn connections_accepted(&self) -> u64 {
        self.service.stats.connections.load(Ordering::SeqCst)
    }

    /// Returns the most recent request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.service.stats.log.lock().unwrap().back().cloned()
    }

    /// Path of the most recent request, still percent-encoded.
    pub fn last_path(&self) -> Option<String> {
        self.last_request().map(|request| request.path)
    }

    /// Raw query string of the most recent request.
    pub fn last_query(&self) -> Option<String> {
        self.last_request().and_then(|request| request.query)
    }

    /// Returns the last 512 requests, oldest first.
    pub fn recent_requests(&self) -> Vec<RecordedRequest> {
        self.service.stats.log.lock().unwrap().iter().cloned().collect()
    }

    /// Closes the listener and every open connection, so new connections
    /// are refused and pooled ones fail. Does nothing when already paused.
    pub fn pause(&self) {
        let task = self.accept_task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            // Awaiting the aborted task waits until its future, which owns
            // the listener and the connection tasks, has been dropped.
            let _ = self.runtime().block_on(task);
        }
    }

    /// Binds the same port again after [`S3Server::pause`]. Retries for up to
    /// five seconds, then panics, because another process may have taken the
    /// port meanwhile.
    pub fn resume(&self) {
        let mut slot = self.accept_task.lock().unwrap();
        if slot.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match self.runtime().block_on(TcpListener::bind(self.addr)) {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(err) => panic!("cannot bind {} again: {err}", self.addr),
            }
        };
        *slot = Some(self.runtime().spawn(accept_loop(listener, self.service.clone())));
    }

    /// Stops the server. Dropping it does the same.
    pub fn stop(self) {
        drop(self);
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }
}

impl S3Backend for S3Server {
    fn endpoint(&self) -> String {
        S3Server::endpoint(self)
    }

    fn bucket(&self) -> &str {
        BUCKET
    }

    fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    fn region(&self) -> &str {
        REGION
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.pause();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Accepts connections until the task is aborted. Dropping the task drops
/// the listener and the `JoinSet`, which aborts every connection.
async fn accept_loop(listener: TcpListener, service: CountingService) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let socket = match accepted {
                    Ok((socket, _peer)) => socket,
                    Err(_) => {
                        // Out of descriptors and similar: wait and retry.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Without TCP_NODELAY every response on a reused connection
                // waits for the peer's delayed ACK.
                let _ = socket.set_nodelay(true);
                service.stats.connections.fetch_add(1, Ordering::SeqCst);
                let service = service.clone();
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
