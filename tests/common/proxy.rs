//! Launches the proxy against a test S3 endpoint: in-process through the
//! library API, or as the real binary in a child process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::S3Backend;

/// How long [`ProxyProcess::spawn`] waits for the `listening` log line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the environment that points the proxy at `backend`, with both listeners
/// on `127.0.0.1:0`.
pub fn base_env(backend: &impl S3Backend) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("S3_ENDPOINT".to_owned(), backend.endpoint());
    env.insert("S3_REGION".to_owned(), backend.region().to_owned());
    env.insert("S3_BUCKET_NAME".to_owned(), backend.bucket().to_owned());
    env.insert("S3_ACCESS_KEY_ID".to_owned(), backend.access_key().to_owned());
    env.insert("S3_SECRET_ACCESS_KEY".to_owned(), backend.secret_key().to_owned());
    env.insert("PROXY_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
    env.insert("PROXY_ADMIN_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
    env
}

/// Builds [`base_env`] with `extra` added, replacing variables of the same
/// name.
pub fn env_with(backend: &impl S3Backend, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = base_env(backend);
    for (name, value) in extra {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    env
}

/// The proxy running in this test process through `s3_proxy::server::start`.
/// Dropping it shuts it down.
pub struct Proxy {
    running: Option<s3_proxy::server::Running>,
    public_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
}

impl Proxy {
    /// Starts the proxy against `backend`, with `extra_env` added to
    /// [`base_env`]. Panics when the configuration is invalid or a listener
    /// cannot bind.
    pub fn start(backend: &impl S3Backend, extra_env: &[(&str, &str)]) -> Proxy {
        Self::start_with_env(&env_with(backend, extra_env))
    }

    /// Starts the proxy with exactly the variables in `env`.
    pub fn start_with_env(env: &BTreeMap<String, String>) -> Proxy {
        let config = s3_proxy::config::Config::from_lookup(|name| env.get(name).cloned())
            .unwrap_or_else(|err| panic!("invalid proxy configuration: {err:?}"));
        let running = s3_proxy::server::start(config).unwrap_or_else(|err| panic!("starting the proxy failed: {err}"));
        let public_addr = running.public_addr();
        let admin_addr = running.admin_addr();
        Proxy {
            running: Some(running),
            public_addr,
            admin_addr,
        }
    }

    /// Address of the public listener.
    pub fn addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// Address of the admin listener. Panics when the admin listener is
    /// disabled.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .expect("the admin listener is disabled (PROXY_ADMIN_LISTEN is empty)")
    }

    /// Address of the admin listener, `None` when disabled.
    pub fn admin_addr_if_enabled(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// `http://<public address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public_addr)
    }

    /// `http://<admin address><path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr())
    }

    /// Stops the proxy the way SIGTERM does and waits for it. Returns
    /// whether every in-flight response finished within the grace period.
    pub fn shutdown(mut self) -> bool {
        self.stop()
    }

    fn stop(&mut self) -> bool {
        match self.running.take() {
            Some(running) => running.shutdown(),
            None => true,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lines a child process wrote to one of its pipes, with a condition
/// variable signalled on every new line and at end of stream.
#[derive(Default)]
struct LineLog {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl LineLog {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().0.push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lines.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().0.clone()
    }

    /// Waits until a line satisfies `predicate`, the stream ends, or
    /// `timeout` passes.
    fn wait_for(&self, timeout: Duration, predicate: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lines.lock().unwrap();
        loop {
            if let Some(line) = guard.0.iter().find(|line| predicate(line)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

fn collect_lines(pipe: impl Read + Send + 'static, log: Arc<LineLog>, name: &str) {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let reader = BufReader::new(pipe);
            for line in reader.lines() {
                match line {
                    Ok(line) => log.push(line),
                    Err(_) => break,
                }
            }
            log.close();
        })
        .expect("spawn a thread to read the proxy's output");
}

/// The real `s3-proxy` binary running as a child process. Dropping it kills
/// the process if it is still running.
pub struct ProxyProcess {
    child: Child,
    stdout: Arc<LineLog>,
    stderr: Arc<LineLog>,
    public_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    exit_status: Option<ExitStatus>,
}

impl ProxyProcess {
    /// Runs the binary with a cleared environment plus `env`, and waits for
    /// its `"msg":"listening"` log line. Panics with the output so far when
    /// the line does not come within 30 seconds.
    pub fn spawn(env: &[(&str, &str)]) -> ProxyProcess {
        let mut process = Self::spawn_unready(env);
        process.wait_for_listening();
        process
    }

    /// Like [`ProxyProcess::spawn`] with [`env_with`]`(backend, extra_env)`.
    pub fn spawn_for(backend: &impl S3Backend, extra_env: &[(&str, &str)]) -> ProxyProcess {
        let env = env_with(backend, extra_env);
        let pairs: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Self::spawn(&pairs)
    }

    /// Runs the binary with a cleared environment plus `env` and returns at
    /// once, for tests of startup failures.
    pub fn spawn_unready(env: &[(&str, &str)]) -> ProxyProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_s3-proxy"));
        command
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the s3-proxy binary");

        let stdout = Arc::new(LineLog::default());
        let stderr = Arc::new(LineLog::default());
        collect_lines(
            child.stdout.take().expect("piped stdout"),
            Arc::clone(&stdout),
            "proxy-stdout",
        );
        collect_lines(
            child.stderr.take().expect("piped stderr"),
            Arc::clone(&stderr),
            "proxy-stderr",
        );
        ProxyProcess {
            child,
            stdout,
            stderr,
            public_addr: None,
            admin_addr: None,
            exit_status: None,
        }
    }

    /// Waits for the `listening` line and reads `public_addr` and
    /// `admin_addr` from it.
    pub fn wait_for_listening(&mut self) {
        let line = self
            .stdout
            .wait_for(STARTUP_TIMEOUT, |line| line.contains("\"msg\":\"listening\""))
            .unwrap_or_else(|| {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "s3-proxy printed no listening line.\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.snapshot().join("\n"),
                    self.stderr.snapshot().join("\n")
                )
            });
        let record: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("listening line is not JSON ({err}): {line}"));
        let address = |field: &str| -> Option<SocketAddr> {
            record.get(field).and_then(|value| value.as_str()).map(|text| {
                text.parse()
                    .unwrap_or_else(|err| panic!("invalid {field} {text:?} ({err}) in {line}"))
            })
        };
        self.public_addr = Some(address("public_addr").unwrap_or_else(|| panic!("no public_addr in {line}")));
        self.admin_addr = address("admin_addr");
    }

    /// Address of the public listener, from the `listening` line.
    pub fn addr(&self) -> SocketAddr {
        self.public_addr.expect("the proxy has not printed its listening line")
    }

    /// Address of the admin listener. Panics when the admin listener is
    /// disabled.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .expect("the proxy reported no admin_addr (admin listener disabled?)")
    }

    pub fn admin_addr_if_enabled(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns every stdout line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout.snapshot()
    }

    /// Returns every stdout line so far that parses as a JSON object.
    pub fn log_json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .snapshot()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(serde_json::Value::is_object)
            .collect()
    }

    /// Returns every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Waits until a stdout line satisfies `predicate` and returns it, or
    /// `None` after `timeout` or when stdout closes.
    pub fn wait_for_log(&self, timeout: Duration, predicate: impl Fn(&str) -> bool) -> Option<String> {
        self.stdout.wait_for(timeout, predicate)
    }

    /// Sends SIGTERM with `kill -TERM <pid>`.
    pub fn sigterm(&self) {
        self.send_signal("TERM");
    }

    /// Sends SIGINT with `kill -INT <pid>`.
    pub fn sigint(&self) {
        self.send_signal("INT");
    }

    fn send_signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed: {status}", self.child.id());
    }

    /// Waits up to `timeout` for the process to exit. Returns its status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit_status.is_some() {
            return self.exit_status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the proxy process") {
                self.exit_status = Some(status);
                // Let the reader threads take the last lines.
                let _ = self.stdout.wait_for(Duration::from_secs(2), |_| false);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if self.exit_status.is_none() {
            let _ = self.child.kill();
            self.exit_status = self.child.wait().ok();
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
