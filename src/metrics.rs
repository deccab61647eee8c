//! Prometheus metrics.
//!
//! Label values come from small fixed sets (methods, status classes, S3
//! outcomes, refusal reasons); a key or a path is never a label. The proxy's
//! own metrics carry the `s3proxy_` prefix; process metrics use the usual
//! `process_` names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Bucket bounds in seconds for whole requests, which include streaming the
/// body to the client and so reach minutes for large videos.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Bucket bounds in seconds for S3 calls, up to the response headers.
const S3_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// All metrics of one proxy instance.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels2, Counter>,
    request_duration: Family<Labels1, Histogram>,
    response_bytes: Counter,
    in_flight: Gauge,
    workers: Gauge,
    workers_busy: Gauge,
    s3_requests: Family<Labels2, Counter>,
    s3_duration: Family<Labels1, Histogram>,
    s3_retries: Family<Labels1, Counter>,
    s3_body_errors: Counter,
    conditional: Family<Labels1, Counter>,
    refused: Family<Labels1, Counter>,
    client_errors: Counter,
    ready: Gauge,
}

impl Metrics {
    pub fn new(workers: usize) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector::new()));

        let metrics = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS.iter().copied())),
            response_bytes: Counter::default(),
            in_flight: Gauge::default(),
            workers: Gauge::default(),
            workers_busy: Gauge::default(),
            s3_requests: Family::default(),
            s3_duration: Family::new_with_constructor(|| Histogram::new(S3_BUCKETS.iter().copied())),
            s3_retries: Family::default(),
            s3_body_errors: Counter::default(),
            conditional: Family::default(),
            refused: Family::default(),
            client_errors: Counter::default(),
            ready: Gauge::default(),
        };
        metrics.workers.set(workers as i64);
        // Series that stay at zero in a healthy proxy are created up front,
        // so dashboards and alerts see 0 rather than no data.
        for operation in ["GetObject", "HeadObject", "Probe"] {
            let _ = metrics.s3_retries.get_or_create(&[("operation", operation)]);
        }

        let own = registry.sub_registry_with_prefix("s3proxy");
        own.register(
            "http_requests",
            "HTTP requests answered, by method and status class",
            metrics.requests.clone(),
        );
        own.register_with_unit(
            "http_request_duration",
            "Time from reading the request to the last body byte written",
            Unit::Seconds,
            metrics.request_duration.clone(),
        );
        own.register_with_unit(
            "http_response_body",
            "Response body bytes written to clients",
            Unit::Bytes,
            metrics.response_bytes.clone(),
        );
        own.register(
            "http_requests_in_flight",
            "Requests being handled now",
            metrics.in_flight.clone(),
        );
        own.register("workers", "Size of the worker pool", metrics.workers.clone());
        own.register(
            "workers_busy",
            "Workers handling a request now",
            metrics.workers_busy.clone(),
        );
        own.register(
            "s3_requests",
            "S3 calls by operation and outcome (ok, not_found, not_modified, precondition_failed, \
             range_not_satisfiable, denied, client_error, server_error, throttled, timeout, connection_error)",
            metrics.s3_requests.clone(),
        );
        own.register_with_unit(
            "s3_request_duration",
            "Time from sending an S3 request to its response headers",
            Unit::Seconds,
            metrics.s3_duration.clone(),
        );
        own.register(
            "s3_retries",
            "S3 calls repeated after a kept-alive connection failed",
            metrics.s3_retries.clone(),
        );
        own.register(
            "s3_body_errors",
            "S3 bodies that failed or ended early while streaming",
            metrics.s3_body_errors.clone(),
        );
        own.register(
            "conditional_requests",
            "Conditional requests by result: not_modified (the client's cache was fresh), \
             precondition_failed, or full (the object was sent)",
            metrics.conditional.clone(),
        );
        own.register(
            "refused_requests",
            "Requests refused without asking S3, by reason",
            metrics.refused.clone(),
        );
        own.register(
            "client_write_errors",
            "Responses cut short because the client went away or stalled",
            metrics.client_errors.clone(),
        );
        own.register(
            "ready",
            "1 when the last S3 readiness probe succeeded",
            metrics.ready.clone(),
        );
        let build_info = Family::<Labels1, Gauge>::default();
        build_info
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        own.register("build_info", "Build information", build_info);

        Metrics { registry, ..metrics }
    }

    /// Renders all metrics in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }

    pub fn request_started(&self) {
        self.in_flight.inc();
        self.workers_busy.inc();
    }

    pub fn request_finished(&self, method: &str, status: u16, duration: Duration, body_bytes: u64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&[("method", method), ("status_class", status_class(status))])
            .inc();
        self.request_duration
            .get_or_create(&[("method", method)])
            .observe(duration.as_secs_f64());
        self.response_bytes.inc_by(body_bytes);
        // The gauges go down last, so a scrape that sees no request in
        // flight also sees every finished request counted.
        self.in_flight.dec();
        self.workers_busy.dec();
    }

    pub fn s3_call(&self, operation: &'static str, outcome: &'static str, duration: Duration, retried: bool) {
        self.s3_requests
            .get_or_create(&[("operation", operation), ("outcome", outcome)])
            .inc();
        self.s3_duration
            .get_or_create(&[("operation", operation)])
            .observe(duration.as_secs_f64());
        if retried {
            self.s3_retries.get_or_create(&[("operation", operation)]).inc();
        }
    }

    pub fn s3_body_error(&self) {
        self.s3_body_errors.inc();
    }

    pub fn client_write_error(&self) {
        self.client_errors.inc();
    }

    pub fn conditional(&self, result: &'static str) {
        self.conditional.get_or_create(&[("result", result)]).inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&[("reason", reason)]).inc();
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }
}

fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Process metrics read from `/proc` at scrape time.
#[derive(Debug)]
struct ProcessCollector {
    start_time: f64,
    /// Clock ticks per second of `/proc/self/stat`; Linux reports them in
    /// USER_HZ, which is 100 on every architecture it supports today.
    ticks_per_second: f64,
}

impl ProcessCollector {
    fn new() -> ProcessCollector {
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        ProcessCollector {
            start_time,
            ticks_per_second: 100.0,
        }
    }
}

/// Values read from `/proc/self`; each is `None` where `/proc` is missing.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_ticks: Option<u64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

fn read_process_stats() -> ProcessStats {
    let mut stats = ProcessStats::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may
        // contain spaces; utime and stime are fields 14 and 15 of the line.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            stats.cpu_ticks = field(14).zip(field(15)).map(|(user, system)| user + system);
            stats.threads = field(20);
            stats.virtual_bytes = field(23);
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        stats.resident_bytes = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024);
    }
    stats.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64);
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        stats.max_fds = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .and_then(|line| line.split_whitespace().nth(3))
            .and_then(|soft| soft.parse().ok());
    }
    stats
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = read_process_stats();

        if let Some(ticks) = stats.cpu_ticks {
            let counter = ConstCounter::new(ticks as f64 / self.ticks_per_second);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        let gauges: [(&str, &str, Option<f64>); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size",
                stats.resident_bytes.map(|bytes| bytes as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size",
                stats.virtual_bytes.map(|b| b as f64),
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                stats.open_fds.map(|n| n as f64),
            ),
            (
                "process_max_fds",
                "Limit on open file descriptors",
                stats.max_fds.map(|n| n as f64),
            ),
            (
                "process_threads",
                "Operating system threads",
                stats.threads.map(|n| n as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time since the Unix epoch",
                Some(self.start_time),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(line_start))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn counters_render_with_labels() {
        let metrics = Metrics::new(4);
        metrics.request_started();
        metrics.request_finished("GET", 200, Duration::from_millis(30), 1234);
        metrics.request_started();
        metrics.request_finished("PUT", 405, Duration::from_millis(1), 20);
        metrics.s3_call("GetObject", "ok", Duration::from_millis(3), true);
        metrics.refused("private_zone");
        let text = metrics.encode();

        assert_eq!(
            sample(
                &text,
                "s3proxy_http_requests_total{method=\"GET\",status_class=\"2xx\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "s3proxy_http_requests_total{method=\"other\",status_class=\"4xx\"}"
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "s3proxy_http_response_body_bytes_total"), Some(1254.0));
        assert_eq!(sample(&text, "s3proxy_http_requests_in_flight"), Some(0.0));
        assert_eq!(sample(&text, "s3proxy_workers "), Some(4.0));
        assert_eq!(
            sample(
                &text,
                "s3proxy_s3_requests_total{operation=\"GetObject\",outcome=\"ok\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "s3proxy_s3_retries_total{operation=\"GetObject\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "s3proxy_refused_requests_total{reason=\"private_zone\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "s3proxy_http_request_duration_seconds_bucket{method=\"GET\",le=\"0.05\"}"
            ),
            Some(1.0)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_present() {
        let text = Metrics::new(1).encode();
        assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 0.0);
        assert!(sample(&text, "process_threads").unwrap() >= 1.0);
        assert!(sample(&text, "process_open_fds").unwrap() >= 1.0);
        assert!(sample(&text, "process_cpu_seconds_total").is_some());
        assert!(sample(&text, "process_start_time_seconds").unwrap() > 1.6e9);
    }
}
