//! A plain HTTP/1.1 client over `TcpStream` for assertions on the exact
//! bytes a server sends: framing, duplicate headers, truncated bodies and
//! connection reuse.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Read timeout of [`raw_request`], [`get`], [`head`] and [`request`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How the body of a response was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: N`.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither header: the body ran until the server closed the connection.
    UntilClose,
    /// No body by definition: a response to HEAD, or status 1xx, 204 or 304.
    /// The headers may still carry Content-Length.
    NoBody,
}

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// For example `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Header names as sent, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub framing: Framing,
    /// Why the body is shorter than its framing promised (connection closed,
    /// read timed out, bad chunk), or `None` when it arrived whole.
    pub body_error: Option<String>,
}

impl RawResponse {
    /// Returns the first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns every value of the header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Returns the Content-Length header as a number, if present and valid.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|value| value.trim().parse().ok())
    }

    /// Returns the body as text, replacing invalid UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True when the server asked to close the connection after this response.
    pub fn closes_connection(&self) -> bool {
        self.header_all("connection")
            .iter()
            .any(|value| value.split(',').any(|token| token.trim().eq_ignore_ascii_case("close")))
    }
}

/// One client connection that can send several requests in turn.
pub struct RawConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawConnection {
    pub fn connect(addr: SocketAddr, read_timeout: Duration) -> io::Result<RawConnection> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(read_timeout))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawConnection {
            stream,
            buffer: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Reads one response. `request_was_head` must be true for a response to
    /// HEAD, whose Content-Length describes a body that is not sent.
    ///
    /// Fails when the status line and headers do not arrive whole. A body cut
    /// short is reported in [`RawResponse::body_error`] instead.
    pub fn read_response(&mut self, request_was_head: bool) -> io::Result<RawResponse> {
        loop {
            let response = self.read_one(request_was_head)?;
            // Interim 1xx responses such as 100 Continue precede the real one.
            if (100..200).contains(&response.status) && response.status != 101 {
                continue;
            }
            return Ok(response);
        }
    }

    /// Waits up to `wait` and returns true when the peer has closed the
    /// connection (end of stream or reset) and sent nothing more.
    pub fn is_closed_by_peer(&mut self, wait: Duration) -> bool {
        if !self.buffer.is_empty() {
            return false;
        }
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => {
                self.buffer.push(byte[0]);
                false
            }
            Err(err) => !matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        }
    }

    /// Returns the underlying socket, for shutting down one direction or
    /// reading its address.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    fn read_one(&mut self, request_was_head: bool) -> io::Result<RawResponse> {
        let head_end = loop {
            if let Some(position) = find(&self.buffer, b"\r\n\r\n") {
                break position;
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before the response headers ended ({} bytes received)",
                        self.buffer.len()
                    ),
                ));
            }
        };
        let head: Vec<u8> = self.buffer.drain(..head_end + 4).collect();
        let head = String::from_utf8_lossy(&head[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status = parts.next().and_then(|code| code.parse::<u16>().ok()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid status line: {status_line:?}"),
            )
        })?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();

        let mut response = RawResponse {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::NoBody,
            body_error: None,
        };

        let has_no_body = request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
        let chunked = response
            .header_all("transfer-encoding")
            .iter()
            .any(|value| value.to_ascii_lowercase().contains("chunked"));
        if has_no_body {
            response.framing = Framing::NoBody;
        } else if chunked {
            response.framing = Framing::Chunked;
            self.read_chunked(&mut response);
        } else if let Some(length) = response.content_length() {
            response.framing = Framing::ContentLength(length);
            self.read_exact_body(&mut response, length);
        } else {
            response.framing = Framing::UntilClose;
            self.read_until_close(&mut response);
        }
        Ok(response)
    }

    fn read_exact_body(&mut self, response: &mut RawResponse, length: u64) {
        let length = usize::try_from(length).expect("body length fits in memory");
        while self.buffer.len() < length {
            match self.fill() {
                Ok(0) => {
                    response.body_error = Some(format!(
                        "connection closed after {} of {length} body bytes",
                        self.buffer.len()
                    ));
                    response.body = std::mem::take(&mut self.buffer);
                    return;
                }
                Ok(_) => {}
                Err(err) => {
                    response.body_error = Some(format!(
                        "read failed after {} of {length} body bytes: {err}",
                        self.buffer.len()
                    ));
                    response.body = std::mem::take(&mut self.buffer);
                    return;
                }
            }
        }
        response.body = self.buffer.drain(..length).collect();
    }

    fn read_until_close(&mut self, response: &mut RawResponse) {
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) => {
                    response.body_error = Some(format!("read failed before end of stream: {err}"));
                    break;
                }
            }
        }
        response.body = std::mem::take(&mut self.buffer);
    }

    fn read_chunked(&mut self, response: &mut RawResponse) {
        loop {
            let line = match self.read_line() {
                Ok(line) => line,
                Err(err) => {
                    response.body_error = Some(format!("chunk size line: {err}"));
                    return;
                }
            };
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let Ok(size) = usize::from_str_radix(size_text, 16) else {
                response.body_error = Some(format!("invalid chunk size line {line:?}"));
                return;
            };
            if size == 0 {
                // Skip trailer fields up to the blank line.
                loop {
                    match self.read_line() {
                        Ok(trailer) if trailer.is_empty() => return,
                        Ok(_) => {}
                        Err(err) => {
                            response.body_error = Some(format!("chunked trailer: {err}"));
                            return;
                        }
                    }
                }
            }
            while self.buffer.len() < size + 2 {
                match self.fill() {
                    Ok(0) => {
                        response.body_error = Some("connection closed inside a chunk".to_owned());
                        response.body.append(&mut self.buffer);
                        return;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        response.body_error = Some(format!("read failed inside a chunk: {err}"));
                        response.body.append(&mut self.buffer);
                        return;
                    }
                }
            }
            response.body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(position) = find(&self.buffer, b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..position + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..position]).into_owned());
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a line",
                ));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Sends `request` verbatim on a new connection and reads one response,
/// returning connection and header errors instead of panicking.
pub fn try_raw_request(addr: SocketAddr, request: &[u8], read_timeout: Duration) -> io::Result<RawResponse> {
    let mut connection = RawConnection::connect(addr, read_timeout)?;
    connection.send(request)?;
    let method = request.split(|&byte| byte == b' ').next().unwrap_or_default();
    connection.read_response(method.eq_ignore_ascii_case(b"HEAD"))
}

/// Sends `request` verbatim on a new connection and reads one response.
/// Panics when no complete status line and headers arrive within
/// [`DEFAULT_READ_TIMEOUT`].
pub fn raw_request(addr: SocketAddr, request: &str) -> RawResponse {
    try_raw_request(addr, request.as_bytes(), DEFAULT_READ_TIMEOUT).unwrap_or_else(|err| {
        let first_line = request.lines().next().unwrap_or_default();
        panic!("request {first_line:?} to {addr} failed: {err}")
    })
}

/// Builds a request with `Host` and `Connection: close` plus `headers`.
pub fn build_request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// Sends a request without a body on a new connection. `target` is sent as
/// given, so it must already be percent-encoded.
pub fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    raw_request(addr, &build_request(addr, method, target, headers))
}

/// Sends `GET target` on a new connection.
pub fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    request(addr, "GET", target, headers)
}

/// Sends `HEAD target` on a new connection.
pub fn head(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> RawResponse {
    request(addr, "HEAD", target, headers)
}
