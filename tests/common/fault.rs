//! A scripted fake S3 endpoint for faults a real server cannot be made to
//! produce: truncated bodies, silence, 503 with Retry-After, signature and
//! permission errors on demand, and keep-alive connections that die between
//! requests. Use [`super::S3Server`] for everything else.
//!
//! Each accepted connection runs one [`ConnectionScript`]. The script is
//! chosen when the first request on the connection has been read: the oldest
//! queued script whose path filter matches that request's target, else the
//! default script. Every step of a script handles one request on that
//! connection. When the steps run out, the connection is closed.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::s3_server::{ACCESS_KEY, BUCKET, REGION, S3Backend, SECRET_KEY};

/// Status line, headers and body of a scripted response.
#[derive(Clone, Debug)]
pub struct CannedResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Adds `Content-Length: <body length>` unless `headers` already has one.
    pub add_content_length: bool,
}

impl CannedResponse {
    pub fn new(status: u16) -> Self {
        CannedResponse {
            status,
            reason: reason_phrase(status).to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            add_content_length: true,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Builds an S3 error document response with `application/xml` and an
    /// `x-amz-request-id`.
    pub fn s3_error(status: u16, code: &str, message: &str) -> Self {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Error><Code>{code}</Code><Message>{message}</Message>\
             <RequestId>FAULTS3REQUEST</RequestId></Error>"
        );
        CannedResponse::new(status)
            .header("Content-Type", "application/xml")
            .header("x-amz-request-id", "FAULTS3REQUEST")
            .body(body)
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(key, _)| key.eq_ignore_ascii_case(name))
    }

    /// Serialises the status line and headers, including the final blank line.
    fn head_bytes(&self, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.add_content_length && !self.has_header("content-length") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// What happens after a partial body has been sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterPartialBody {
    /// Close the connection (mid-body failure).
    Close,
    /// Keep the connection open and silent until the fake stops (read
    /// timeout in the middle of a body).
    Stall,
}

/// The response to one request on a connection.
#[derive(Clone, Debug)]
pub enum Step {
    /// Send the response and wait for the next request on the same connection.
    Respond(CannedResponse),
    /// Send the response with `Connection: close`, then close.
    RespondAndClose(CannedResponse),
    /// Wait, then send the response with `Connection: close` and close
    /// (response timeout when the wait is long enough).
    RespondAfter(Duration, CannedResponse),
    /// Send the status line and headers of `response` with its full
    /// Content-Length, then only the first `sent` bytes of its body.
    PartialBody {
        response: CannedResponse,
        sent: usize,
        then: AfterPartialBody,
    },
    /// Read the request and never respond. The connection stays open until
    /// the fake stops.
    Hang,
    /// Read the request and close the connection without a byte of response,
    /// as a server does when it drops an idle keep-alive connection just as
    /// the client reuses it.
    CloseWithoutResponse,
}

/// The steps run on one connection, one per request.
#[derive(Clone, Debug)]
pub struct ConnectionScript {
    pub steps: Vec<Step>,
}

impl ConnectionScript {
    pub fn steps(steps: Vec<Step>) -> Self {
        ConnectionScript { steps }
    }

    /// Responds to one request, then closes.
    pub fn respond(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut response = CannedResponse::new(status).body(body);
        for (name, value) in headers {
            response = response.header(name, value);
        }
        Self::steps(vec![Step::RespondAndClose(response)])
    }

    /// Responds to up to `times` requests on the connection with the same
    /// response and keeps the connection open, like a keep-alive server.
    pub fn respond_repeatedly(response: CannedResponse, times: usize) -> Self {
        Self::steps(vec![Step::Respond(response); times])
    }

    /// Promises `total.len()` bytes, sends the first `sent`, then closes.
    pub fn truncated_body(headers: &[(&str, &str)], total: &[u8], sent: usize) -> Self {
        Self::partial(headers, total, sent, AfterPartialBody::Close)
    }

    /// Promises `total.len()` bytes, sends the first `sent`, then goes silent.
    pub fn stalled_body(headers: &[(&str, &str)], total: &[u8], sent: usize) -> Self {
        Self::partial(headers, total, sent, AfterPartialBody::Stall)
    }

    fn partial(headers: &[(&str, &str)], total: &[u8], sent: usize, then: AfterPartialBody) -> Self {
        assert!(sent <= total.len(), "cannot send more than the whole body");
        let mut response = CannedResponse::new(200).body(total);
        for (name, value) in headers {
            response = response.header(name, value);
        }
        Self::steps(vec![Step::PartialBody { response, sent, then }])
    }

    /// Accepts, reads the request and never responds.
    pub fn hang() -> Self {
        Self::steps(vec![Step::Hang])
    }

    /// Waits `delay`, then responds 200 with `body`.
    pub fn slow_response(delay: Duration, body: &[u8]) -> Self {
        Self::steps(vec![Step::RespondAfter(delay, CannedResponse::new(200).body(body))])
    }

    /// Responds 503 SlowDown with `Retry-After: <retry_after>` and an S3 error
    /// document.
    pub fn service_unavailable(retry_after: &str) -> Self {
        let response = CannedResponse::s3_error(503, "SlowDown", "Please reduce your request rate.")
            .header("Retry-After", retry_after);
        Self::steps(vec![Step::RespondAndClose(response)])
    }

    /// Responds 403 SignatureDoesNotMatch with an S3 error document.
    pub fn signature_mismatch() -> Self {
        let response = CannedResponse::s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method.",
        );
        Self::steps(vec![Step::RespondAndClose(response)])
    }

    /// Responds 403 AccessDenied, which S3 sends for a missing key when the
    /// caller may not list the bucket.
    pub fn access_denied() -> Self {
        let response = CannedResponse::s3_error(403, "AccessDenied", "Access Denied");
        Self::steps(vec![Step::RespondAndClose(response)])
    }

    /// Responds to the first request with `first` and keeps the connection
    /// open, then reads the second request on it and closes without a response. A
    /// client must retry that request on a fresh connection.
    pub fn stale_keep_alive(first: CannedResponse) -> Self {
        Self::steps(vec![Step::Respond(first), Step::CloseWithoutResponse])
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct FaultRequest {
    /// Sequence number of the connection, from 1 in accept order.
    pub connection: u64,
    pub method: String,
    /// Request target exactly as sent (path and query).
    pub target: String,
    pub version: String,
    /// Header names as sent, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FaultRequest {
    /// Returns the first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

struct QueuedScript {
    target_contains: Option<String>,
    script: ConnectionScript,
}

struct FaultShared {
    stopping: AtomicBool,
    connections: AtomicU64,
    queue: Mutex<VecDeque<QueuedScript>>,
    default_script: Mutex<ConnectionScript>,
    requests: Mutex<Vec<FaultRequest>>,
    /// Clones of every accepted socket, so that stopping can shut them down
    /// and wake the connection threads.
    sockets: Mutex<Vec<TcpStream>>,
}

/// The scripted fake S3 endpoint on `127.0.0.1:PORT`. It checks no
/// signatures. Dropping it stops the accept thread and closes every
/// connection.
pub struct FaultS3 {
    addr: SocketAddr,
    shared: Arc<FaultShared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FaultS3 {
    /// Starts the fake. `default_script` runs on every connection for which
    /// no queued script matches.
    pub fn start(default_script: ConnectionScript) -> FaultS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for the fake S3");
        let addr = listener.local_addr().expect("local address of the fake S3");
        let shared = Arc::new(FaultShared {
            stopping: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            queue: Mutex::new(VecDeque::new()),
            default_script: Mutex::new(default_script),
            requests: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("fault-s3-accept".to_owned())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the fake S3 accept thread");
        FaultS3 {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// Queues a script for the next connection, whatever it requests.
    pub fn enqueue(&self, script: ConnectionScript) {
        self.shared.queue.lock().unwrap().push_back(QueuedScript {
            target_contains: None,
            script,
        });
    }

    /// Queues a script for the next connection whose first request target
    /// contains `fragment`, so that a background readiness probe does not
    /// consume it.
    pub fn enqueue_for(&self, fragment: &str, script: ConnectionScript) {
        self.shared.queue.lock().unwrap().push_back(QueuedScript {
            target_contains: Some(fragment.to_owned()),
            script,
        });
    }

    pub fn set_default(&self, script: ConnectionScript) {
        *self.shared.default_script.lock().unwrap() = script;
    }

    /// Number of queued scripts not yet used.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<FaultRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Number of requests received so far.
    pub fn requests_seen(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Number of TCP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops the fake. Dropping it does the same.
    pub fn stop(self) {
        drop(self);
    }
}

impl S3Backend for FaultS3 {
    fn endpoint(&self) -> String {
        FaultS3::endpoint(self)
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

impl Drop for FaultS3 {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        for socket in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<FaultShared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        if let Ok(clone) = stream.try_clone() {
            shared.sockets.lock().unwrap().push(clone);
        }
        let connection = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let connection_shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name(format!("fault-s3-conn-{connection}"))
            .spawn(move || {
                let _ = serve_connection(stream, connection, &connection_shared);
            });
    }
}

fn serve_connection(stream: TcpStream, connection: u64, shared: &FaultShared) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut script: Option<VecDeque<Step>> = None;

    loop {
        let Some(request) = read_request(&mut reader, connection)? else {
            return Ok(());
        };
        let is_head = request.method.eq_ignore_ascii_case("HEAD");
        if script.is_none() {
            script = Some(choose_script(shared, &request.target).steps.into());
        }
        shared.requests.lock().unwrap().push(request);

        let Some(step) = script.as_mut().and_then(VecDeque::pop_front) else {
            return Ok(());
        };
        match step {
            Step::Respond(response) => {
                write_response(&mut writer, &response, is_head, &[])?;
            }
            Step::RespondAndClose(response) => {
                write_response(&mut writer, &response, is_head, &[("Connection", "close")])?;
                return close(writer);
            }
            Step::RespondAfter(delay, response) => {
                if !sleep_unless_stopping(shared, delay) {
                    return Ok(());
                }
                write_response(&mut writer, &response, is_head, &[("Connection", "close")])?;
                return close(writer);
            }
            Step::PartialBody { response, sent, then } => {
                writer.write_all(&response.head_bytes(&[]))?;
                if !is_head {
                    writer.write_all(&response.body[..sent])?;
                }
                writer.flush()?;
                if then == AfterPartialBody::Stall {
                    wait_until_stopping(shared);
                }
                return close(writer);
            }
            Step::Hang => {
                wait_until_stopping(shared);
                return Ok(());
            }
            Step::CloseWithoutResponse => {
                return close(writer);
            }
        }
    }
}

fn choose_script(shared: &FaultShared, target: &str) -> ConnectionScript {
    let mut queue = shared.queue.lock().unwrap();
    let position = queue.iter().position(|queued| match &queued.target_contains {
        Some(fragment) => target.contains(fragment.as_str()),
        None => true,
    });
    match position.and_then(|index| queue.remove(index)) {
        Some(queued) => queued.script,
        None => shared.default_script.lock().unwrap().clone(),
    }
}

fn write_response(
    writer: &mut TcpStream,
    response: &CannedResponse,
    is_head: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut bytes = response.head_bytes(extra);
    if !is_head {
        bytes.extend_from_slice(&response.body);
    }
    writer.write_all(&bytes)?;
    writer.flush()
}

/// Sends FIN and waits briefly for the peer to close, so the peer sees an
/// orderly end of stream rather than a reset.
fn close(stream: TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut sink = [0u8; 1024];
    let mut reader = &stream;
    while let Ok(read) = reader.read(&mut sink) {
        if read == 0 {
            break;
        }
    }
    Ok(())
}

fn wait_until_stopping(shared: &FaultShared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sleeps for `delay`. Returns false when the fake stopped meanwhile.
fn sleep_unless_stopping(shared: &FaultShared, delay: Duration) -> bool {
    let deadline = std::time::Instant::now() + delay;
    while std::time::Instant::now() < deadline {
        if shared.stopping.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Reads one request. Returns `None` when the peer closed the connection
/// before sending a request line.
fn read_request(reader: &mut BufReader<TcpStream>, connection: u64) -> io::Result<Option<FaultRequest>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let request_line = line.trim_end().to_owned();
    let mut parts = request_line.splitn(3, ' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let version = parts.next().unwrap_or_default().to_owned();

    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the request headers",
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }

    let content_length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;

    Ok(Some(FaultRequest {
        connection,
        method,
        target,
        version,
        headers,
        body,
    }))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
