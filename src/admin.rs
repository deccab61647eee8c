//! The admin listener (`/health`, `/ready`, `/metrics`) and the background
//! S3 readiness probe.
//!
//! The admin port has its own thread, so probes and scrapes get responses
//! while every worker is busy streaming.
//!
//! Readiness follows S3: a replica that cannot reach S3, or whose
//! credentials S3 rejects, turns unready. The proxy keeps no object cache,
//! so such a replica could serve nothing but errors, and taking it out of
//! the Service loses nothing. It also means a rollout with wrong credentials
//! or a blocked network path never becomes ready, and the old replicas keep
//! serving. When S3 itself is down every replica turns unready and the
//! ingress returns 503 instead of the proxy's 502: the same outcome for the
//! user. Two failed probes in a row are needed before a replica turns
//! unready, so one slow response does not flap it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::log::{self, Level};
use crate::metrics::Metrics;
use crate::response::{self, Head, TEXT_PLAIN};
use crate::s3::{self, Operation, S3Client};

/// Key read by the readiness probe. It need not exist: a 404, or the 403
/// that S3 sends for a missing key without ListBucket, proves that S3 is
/// reachable and accepts the signature.
pub const PROBE_KEY: &str = "s3-proxy-readiness-probe";

/// Failed probes in a row before the replica turns unready.
const FAILURES_BEFORE_UNREADY: u32 = 2;

/// Readiness state shared by the probe and the admin listener.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
    /// Set at shutdown, so the replica leaves the Service while it drains.
    draining: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed)
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

/// Result of one probe call.
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Ok,
    Failed(String),
}

/// Reads one byte of [`PROBE_KEY`] and classifies the response.
pub fn probe(s3: &S3Client, metrics: &Metrics) -> ProbeResult {
    let range = (http::header::RANGE, http::HeaderValue::from_static("bytes=0-0"));
    match s3.call(Operation::Probe, PROBE_KEY, &[range]) {
        Ok(mut response) => {
            let status = response.status;
            let code = if status >= 400 {
                response.take_error_code()
            } else {
                response.discard();
                None
            };
            let outcome = s3::outcome(status, code.as_deref());
            // A missing probe key (404) or a denied one (403 AccessDenied)
            // still proves that S3 responds and accepts the signature.
            let result = match outcome {
                "ok" | "not_found" | "denied" | "range_not_satisfiable" => ProbeResult::Ok,
                _ => ProbeResult::Failed(
                    format!("S3 returned {status} {}", code.as_deref().unwrap_or(""))
                        .trim_end()
                        .to_string(),
                ),
            };
            metrics.s3_call(Operation::Probe.as_str(), outcome, response.duration, response.retried);
            result
        }
        Err(error) => {
            metrics.s3_call(
                Operation::Probe.as_str(),
                error.kind.as_str(),
                error.duration,
                error.retried,
            );
            ProbeResult::Failed(format!("{}: {}", error.kind.as_str(), error.detail))
        }
    }
}

/// Runs the probe every `interval` until `stop` is set.
pub fn run_probe_loop(
    s3: Arc<S3Client>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let was_ready = readiness.ready.load(Ordering::Relaxed);
        match probe(&s3, &metrics) {
            ProbeResult::Ok => {
                failures = 0;
                readiness.ready.store(true, Ordering::Relaxed);
                *readiness.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                if !was_ready {
                    log::event(Level::Info, "S3 readiness probe succeeded; ready", crate::fields! {});
                }
            }
            ProbeResult::Failed(error) => {
                failures += 1;
                // Before the first success the replica is not ready anyway.
                let unready = failures >= FAILURES_BEFORE_UNREADY || !was_ready;
                if unready {
                    readiness.ready.store(false, Ordering::Relaxed);
                }
                // The first failures are logged, then every 30th, so a long
                // outage does not fill the log.
                if failures <= FAILURES_BEFORE_UNREADY || failures.is_multiple_of(30) {
                    let level = if was_ready && unready {
                        Level::Error
                    } else {
                        Level::Warn
                    };
                    log::event(
                        level,
                        "S3 readiness probe failed",
                        crate::fields! {"error" => error, "failures_in_a_row" => failures, "ready" => !unready},
                    );
                }
                *readiness.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
            }
        }
        metrics.set_ready(readiness.is_ready());
        sleep_unless_stopped(interval, &stop);
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step.min(total - waited));
        waited += step;
    }
}

/// Serves admin requests until `stop` is set.
pub fn run_admin_loop(
    server: Arc<tiny_http::Server>,
    local_port: u16,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(error) => {
                if !stop.load(Ordering::Relaxed) {
                    log::event(
                        Level::Error,
                        "admin listener failed; metrics and probes are no longer served",
                        crate::fields! {"error" => error.to_string()},
                    );
                }
                return;
            }
        };
        let chunked = request.headers().iter().any(|h| h.field.equiv("Transfer-Encoding"));
        if request.body_length().unwrap_or(0) > 0 || chunked {
            log::event(
                Level::Warn,
                "admin request declared a body; connection closed without a response",
                crate::fields! {"remote_addr" => request.remote_addr().map(|a| a.to_string())},
            );
            response::discard_request_with_body(request, local_port);
            continue;
        }
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let is_read = matches!(request.method(), tiny_http::Method::Get | tiny_http::Method::Head);
        let (mut head, body) = if !is_read {
            let (mut head, body) = Head::generated(405, TEXT_PLAIN, "Method Not Allowed\n", "no-store");
            head.header("Allow", "GET, HEAD");
            (head, body)
        } else {
            match path.as_str() {
                "/health" => json_answer(200, "{\"status\":\"ok\"}\n"),
                "/ready" => {
                    if readiness.is_ready() {
                        json_answer(200, "{\"status\":\"ready\"}\n")
                    } else {
                        let reason = if readiness.draining.load(Ordering::Relaxed) {
                            "shutting down".to_string()
                        } else {
                            readiness
                                .last_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .clone()
                                .unwrap_or_else(|| "no S3 probe has succeeded yet".into())
                        };
                        let body = serde_json::json!({"status": "not ready", "reason": reason}).to_string() + "\n";
                        json_answer(503, &body)
                    }
                }
                "/metrics" => {
                    let text = metrics.encode();
                    Head::generated(200, "text/plain; version=0.0.4; charset=utf-8", &text, "no-store")
                }
                _ => Head::generated(404, TEXT_PLAIN, "Not Found\n", "no-store"),
            }
        };
        head.close = false;
        let head_only = *request.method() == tiny_http::Method::Head;
        let mut reader = std::io::Cursor::new(body);
        let sent = response::send(request, &head, &mut reader, head_only, &|| {});
        if let Some(error) = sent.client_error {
            log::event(
                Level::Debug,
                "admin response not delivered",
                crate::fields! {"error" => error, "path" => path},
            );
        }
    }
}

fn json_answer(status: u16, body: &str) -> (Head, Vec<u8>) {
    Head::generated(status, "application/json", body, "no-store")
}
