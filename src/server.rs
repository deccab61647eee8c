//! Listeners, the worker pool and the shutdown sequence.
//!
//! tiny_http runs one reader thread per connection and queues the parsed
//! requests; a fixed pool of workers takes them from the queue. Shutdown:
//! keep serving for the shutdown delay (so load balancers can drop the
//! replica first), close the listener, let in-flight responses finish within
//! the grace period, then return.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::access::Policy;
use crate::admin::{self, Readiness};
use crate::config::Config;
use crate::handler::{self, Context};
use crate::log::{self, Level};
use crate::metrics::Metrics;
use crate::s3::S3Client;

/// Reason the server stops.
#[derive(Debug)]
enum Event {
    Signal(&'static str),
    ListenerFailed(String),
}

/// A started proxy.
pub struct Running {
    config: Arc<Config>,
    public_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    /// A second handle on the public listening socket, used to close it.
    listener_control: Socket,
    admin_control: Option<Socket>,
    draining: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    admin_stop: Arc<AtomicBool>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    workers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    events: Receiver<Event>,
    event_sender: Sender<Event>,
}

/// Binds the listeners and starts the workers, the admin thread and the
/// readiness probe.
pub fn start(config: Config) -> io::Result<Running> {
    log::set_level(config.log_level);
    let config = Arc::new(config);
    let s3 = S3Client::new(&config).map_err(io::Error::other)?;
    let s3 = Arc::new(s3);
    let metrics = Arc::new(Metrics::new(config.workers));
    let readiness = Arc::new(Readiness::default());

    let (listener, listener_control) = bind(
        config.listen,
        Some(config.client_read_timeout),
        config.client_write_timeout,
    )?;
    let public_addr = listener.local_addr()?;
    let server = Arc::new(tiny_http::Server::from_listener(listener, None).map_err(io::Error::other)?);

    let draining = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    let admin_stop = Arc::new(AtomicBool::new(false));
    let (event_sender, events) = mpsc::channel();

    let context = Arc::new(Context {
        config: Arc::clone(&config),
        s3: Arc::clone(&s3),
        policy: Policy::new(&config),
        metrics: Arc::clone(&metrics),
        draining: Arc::clone(&draining),
        local_port: public_addr.port(),
    });

    let mut workers = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let server = Arc::clone(&server);
        let context = Arc::clone(&context);
        let stopping = Arc::clone(&stopping);
        let sender = event_sender.clone();
        let worker = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || run_worker(&server, &context, &stopping, &sender))?;
        workers.push(worker);
    }

    let mut background = Vec::new();
    {
        let stop = Arc::clone(&stopping);
        let read_timeout = config.client_read_timeout;
        background.push(
            std::thread::Builder::new()
                .name("keep-accepting".into())
                .spawn(move || keep_accepting(public_addr, read_timeout, stop))?,
        );
    }
    let (admin_addr, admin_control) = match config.admin_listen {
        Some(address) => {
            // The admin port has no read timeout: a client that stalls while
            // sending holds only tiny_http's reader thread, never the admin
            // thread, and the port is not public.
            let (listener, control) = bind(address, None, config.client_write_timeout)?;
            let bound = listener.local_addr()?;
            let admin_server = Arc::new(tiny_http::Server::from_listener(listener, None).map_err(io::Error::other)?);
            let (metrics, readiness, stop) = (Arc::clone(&metrics), Arc::clone(&readiness), Arc::clone(&admin_stop));
            background.push(
                std::thread::Builder::new()
                    .name("admin".into())
                    .spawn(move || admin::run_admin_loop(admin_server, bound.port(), metrics, readiness, stop))?,
            );
            (Some(bound), Some(control))
        }
        None => (None, None),
    };

    {
        let (s3, metrics, readiness, stop) = (
            Arc::clone(&s3),
            Arc::clone(&metrics),
            Arc::clone(&readiness),
            Arc::clone(&admin_stop),
        );
        let interval = config.ready_interval;
        background.push(
            std::thread::Builder::new()
                .name("readiness".into())
                .spawn(move || admin::run_probe_loop(s3, metrics, readiness, interval, stop))?,
        );
    }

    log::event(
        Level::Info,
        "listening",
        crate::fields! {
            "public_addr" => public_addr.to_string(),
            "admin_addr" => admin_addr.map(|a| a.to_string()),
            "workers" => config.workers,
            "version" => env!("CARGO_PKG_VERSION"),
        },
    );

    Ok(Running {
        config,
        public_addr,
        admin_addr,
        listener_control,
        admin_control,
        draining,
        stopping,
        admin_stop,
        readiness,
        metrics,
        workers,
        background,
        events,
        event_sender,
    })
}

/// Binds a listener whose accepted sockets inherit TCP_NODELAY and the
/// given timeouts: Linux copies these options from the listening socket to
/// each accepted one. When a read times out, tiny_http closes the connection
/// (Linux reports the timeout as EAGAIN, for which tiny_http sends no
/// 408); a write timeout ends a response to a client that stopped
/// reading.
///
/// A read timeout also applies to `accept()` on the listening socket itself,
/// and tiny_http stops accepting for good after one failed `accept()`. A
/// listener with a read timeout therefore needs [`keep_accepting`].
fn bind(
    address: SocketAddr,
    read_timeout: Option<Duration>,
    write_timeout: Duration,
) -> io::Result<(TcpListener, Socket)> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_read_timeout(read_timeout)?;
    socket.set_write_timeout(Some(write_timeout))?;
    socket
        .bind(&address.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))?;
    socket.listen(1024)?;
    let control = socket.try_clone()?;
    Ok((socket.into(), control))
}

/// Connects to the listener at a third of its read timeout, so a blocked
/// `accept()` always returns a connection before the timeout fails it. The
/// connection closes at once; tiny_http reads end-of-stream and drops it.
fn keep_accepting(address: SocketAddr, read_timeout: Duration, stop: Arc<AtomicBool>) {
    let target = match address.ip() {
        ip if ip.is_unspecified() && address.is_ipv4() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, address.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, address.port())),
        _ => address,
    };
    let interval = read_timeout / 3;
    let step = Duration::from_millis(20).min(interval);
    let mut since_last = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        since_last += step;
        if since_last >= interval {
            since_last = Duration::ZERO;
            // A failure is harmless: a refused connection means the listener
            // is closing, and a slow one means real clients keep it busy.
            let _ = std::net::TcpStream::connect_timeout(&target, interval);
        }
    }
}

fn run_worker(server: &tiny_http::Server, context: &Context, stopping: &AtomicBool, events: &Sender<Event>) {
    // During shutdown a worker leaves once the queue has stayed empty for
    // three polls, so requests that tiny_http parsed just before the
    // connections stopped reading are still served.
    let mut empty_polls = 0;
    loop {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => {
                empty_polls = 0;
                handler::handle(context, request);
            }
            Ok(None) => {
                if stopping.load(Ordering::Relaxed) {
                    empty_polls += 1;
                    if empty_polls >= 3 {
                        return;
                    }
                }
            }
            // tiny_http reports an accept() failure once and then stops
            // accepting for good. During shutdown that failure is the
            // listener being closed on purpose.
            Err(error) => {
                if !context.draining.load(Ordering::Relaxed) {
                    let _ = events.send(Event::ListenerFailed(error.to_string()));
                    return;
                }
            }
        }
    }
}

impl Running {
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Waits for SIGTERM or SIGINT, then shuts down. Returns the process exit
    /// code: 0 after a signal, 1 when the listener failed.
    pub fn run_until_signal(self) -> io::Result<i32> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
        let handle = signals.handle();
        let sender = self.event_sender.clone();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            for signal in signals.forever() {
                let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
                if sender.send(Event::Signal(name)).is_err() {
                    return;
                }
            }
        })?;

        let event = self.events.recv().unwrap_or(Event::Signal("channel closed"));
        let code = match &event {
            Event::Signal(name) => {
                log::event(Level::Info, "shutdown requested", crate::fields! {"signal" => name});
                0
            }
            Event::ListenerFailed(error) => {
                log::event(
                    Level::Error,
                    "listener failed; exiting so the orchestrator restarts the process",
                    crate::fields! {"error" => error},
                );
                1
            }
        };
        let skip_delay = code != 0;
        self.stop(skip_delay);
        handle.close();
        Ok(code)
    }

    /// Shuts down as on SIGTERM: delay, close the listener, drain, stop.
    /// Returns whether every in-flight response finished in time.
    pub fn shutdown(self) -> bool {
        self.stop(false)
    }

    fn stop(mut self, skip_delay: bool) -> bool {
        self.readiness.set_draining();
        self.metrics.set_ready(false);
        if !skip_delay && !self.config.shutdown_delay.is_zero() {
            log::event(
                Level::Info,
                "shutdown delay: still serving while load balancers remove this replica",
                crate::fields! {"delay_ms" => self.config.shutdown_delay.as_millis() as u64},
            );
            // A second signal ends the delay early.
            match self.events.recv_timeout(self.config.shutdown_delay) {
                Ok(_) | Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
        }

        self.draining.store(true, Ordering::Relaxed);
        // Shutting down a listening socket makes the blocked accept() fail,
        // which ends tiny_http's accept thread; new connections are refused.
        let _ = self.listener_control.shutdown(std::net::Shutdown::Both);
        // Idle keep-alive connections would otherwise stay open, and a
        // request sent on one after the workers left would never get a
        // response. Responses in progress still complete.
        let closed = crate::response::stop_reading_connections(self.public_addr.port());
        self.stopping.store(true, Ordering::Relaxed);
        log::event(
            Level::Info,
            "listener closed; draining in-flight responses",
            crate::fields! {
                "grace_period_ms" => self.config.grace_period.as_millis() as u64,
                "connections_closed_for_reading" => closed,
            },
        );

        let deadline = Instant::now() + self.config.grace_period;
        while Instant::now() < deadline && self.workers.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let unfinished = self.workers.iter().filter(|w| !w.is_finished()).count();
        for worker in std::mem::take(&mut self.workers) {
            if worker.is_finished() {
                let _ = worker.join();
            }
        }

        self.admin_stop.store(true, Ordering::Relaxed);
        if let Some(control) = &self.admin_control {
            let _ = control.shutdown(std::net::Shutdown::Both);
        }
        for thread in std::mem::take(&mut self.background) {
            let _ = thread.join();
        }

        if unfinished == 0 {
            log::event(Level::Info, "shutdown complete", crate::fields! {});
        } else {
            log::event(
                Level::Warn,
                "grace period over; responses still in flight are cut off",
                crate::fields! {"workers_busy" => unfinished},
            );
        }
        unfinished == 0
    }
}
