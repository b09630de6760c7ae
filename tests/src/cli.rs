//! Running the real `sluice` binary.
//!
//! The integration tests are compiled as tests of the host package, so they pass
//! `env!("CARGO_BIN_EXE_sluice")` to [`Sluice::new`]. Every run is bounded by a timeout (which only
//! guards against a hang; no test asserts on timing), and its output is captured.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::wait;

/// Upper bound for one `sluice` invocation; reaching it fails the test (it is not a speed target).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variables a child must not inherit from `cargo test`.
const SCRUBBED_ENV: &[&str] = &["RUST_LOG", "SLUICE_LOG", "SLUICE_TEST_GH_TOKEN"];

/// The `sluice` binary under test.
#[derive(Debug, Clone)]
pub struct Sluice {
    bin: PathBuf,
}

impl Sluice {
    /// Uses the binary at `bin` (pass `env!("CARGO_BIN_EXE_sluice")`).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self { bin: bin.into() }
    }

    /// A command with `args`, not started yet.
    pub fn cmd<I, S>(&self, args: I) -> SluiceCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in SCRUBBED_ENV {
            cmd.env_remove(name);
        }
        SluiceCmd {
            cmd,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Runs `args` to completion.
    pub fn run<I, S>(&self, args: I) -> CmdOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).output()
    }
}

/// A `sluice` command being configured.
#[derive(Debug)]
pub struct SluiceCmd {
    cmd: Command,
    timeout: Duration,
}

impl SluiceCmd {
    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for the child only.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(name, value);
        self
    }

    /// Sets the working directory of the child.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Replaces [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the child.
    pub fn spawn(mut self) -> Running {
        let description = format!("{:?}", self.cmd);
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let stdout = Drain::start(child.stdout.take().expect("piped stdout"));
        let stderr = Drain::start(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            description,
            timeout: self.timeout,
            started: Instant::now(),
        }
    }

    /// Runs the child to completion (bounded by the timeout) and captures its output.
    pub fn output(self) -> CmdOutput {
        self.spawn().wait()
    }
}

/// Reads `pipe` to its end on a thread; what has arrived so far is readable meanwhile.
#[derive(Debug)]
struct Drain {
    so_far: Arc<Mutex<Vec<u8>>>,
    thread: JoinHandle<()>,
}

impl Drain {
    fn start(mut pipe: impl Read + Send + 'static) -> Self {
        let so_far = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&so_far);
        let thread = std::thread::spawn(move || {
            let mut chunk = [0_u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => lock(&sink).extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        Self { so_far, thread }
    }

    fn so_far(&self) -> String {
        String::from_utf8_lossy(&lock(&self.so_far)).into_owned()
    }

    /// Everything, once the pipe has closed.
    fn finish(self) -> Vec<u8> {
        let _ = self.thread.join();
        std::mem::take(&mut *lock(&self.so_far))
    }
}

fn lock(buffer: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buffer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A started `sluice` process.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdout: Option<Drain>,
    stderr: Option<Drain>,
    description: String,
    timeout: Duration,
    started: Instant,
}

impl Running {
    /// Operating-system process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name such as `TERM` or `HUP`) with the system's `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run `kill -s {signal}`: {e}"));
        assert!(status.success(), "`kill -s {signal}` failed: {status}");
    }

    /// What the process has written to stdout so far (lossy UTF-8).
    pub fn stdout_so_far(&self) -> String {
        self.stdout.as_ref().map(Drain::so_far).unwrap_or_default()
    }

    /// What the process has written to stderr so far (lossy UTF-8).
    pub fn stderr_so_far(&self) -> String {
        self.stderr.as_ref().map(Drain::so_far).unwrap_or_default()
    }

    /// Waits (bounded by `timeout`) until stdout holds a complete first line, and returns it
    /// without the newline; `None` if the process exits or the time passes first.
    pub fn first_stdout_line(&mut self, timeout: Duration) -> Option<String> {
        let mut line = None;
        wait::until(timeout, || {
            let so_far = self.stdout_so_far();
            line = so_far.split_once('\n').map(|(first, _)| first.to_owned());
            line.is_some() || !self.is_running()
        });
        // The process may have printed the line just before it exited.
        line.or_else(|| {
            self.stdout_so_far()
                .split_once('\n')
                .map(|(first, _)| first.to_owned())
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process with SIGKILL (no chance to clean up) and collects what it printed.
    /// Returns `None` if it had already exited by itself before the kill.
    pub fn kill(mut self) -> Option<CmdOutput> {
        let was_running = self.is_running();
        let _ = self.child.kill();
        let output = self.wait();
        was_running.then_some(output)
    }

    /// Waits for the process to exit (bounded by the timeout; on timeout it is killed and the
    /// test panics with what it printed).
    pub fn wait(mut self) -> CmdOutput {
        let remaining = self.timeout.saturating_sub(self.started.elapsed());
        let exited = wait::until(remaining, || !matches!(self.child.try_wait(), Ok(None)));
        if !exited {
            let _ = self.child.kill();
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.description));
        let stdout = join(self.stdout.take());
        let stderr = join(self.stderr.take());
        let output = CmdOutput {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        assert!(
            exited,
            "{} did not finish within {:?}\n{output}",
            self.description, self.timeout
        );
        output
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a child behind when a test fails half-way.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn join(drain: Option<Drain>) -> Vec<u8> {
    drain.map(Drain::finish).unwrap_or_default()
}

/// What a finished `sluice` process printed and how it exited.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl CmdOutput {
    /// Panics (showing the output) unless the process exited with 0. Returns `self`.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "expected success\n{self}");
        assert!(
            !self.stderr.contains("panicked"),
            "the host panicked\n{self}"
        );
        self
    }

    /// Panics unless the process failed cleanly: a non-zero exit code (not a signal), no panic,
    /// and a line starting with `error: ` on stderr. Returns that line and the ones after it.
    #[track_caller]
    pub fn assert_error(&self) -> String {
        assert!(!self.status.success(), "expected failure\n{self}");
        assert!(
            self.status.code().is_some_and(|c| c != 0),
            "expected a non-zero exit code, not a signal\n{self}"
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the host panicked\n{self}"
        );
        let start = self
            .stderr
            .lines()
            .position(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no line starting with `error: ` on stderr\n{self}"));
        self.stderr
            .lines()
            .skip(start)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Parses stdout as one JSON document.
    #[track_caller]
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> T {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not the expected JSON ({e})\n{self}"))
    }
}

/// The `sluice run --json` summary.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RunSummary {
    /// One entry per stream synced.
    pub streams: Vec<StreamSummary>,
    /// Requests sent in this run, over all streams.
    pub requests: u64,
    /// The checkpoint directory used.
    pub state_dir: String,
}

impl RunSummary {
    /// The summary of stream `name`.
    #[track_caller]
    pub fn stream(&self, name: &str) -> &StreamSummary {
        self.streams
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no stream {name:?} in summary {self:?}"))
    }
}

/// One stream in a [`RunSummary`].
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct StreamSummary {
    /// Stream name.
    pub name: String,
    /// Records written in this run.
    pub records: u64,
    /// Pages the connector returned in this run.
    pub pages: u64,
    /// Requests sent for this stream in this run.
    pub requests: u64,
    /// Responses of guessed requests the connector then asked for (`[sync] prefetch`).
    #[serde(default)]
    pub prefetched: u64,
    /// `fresh`, `incremental` or `resumed`.
    pub start: String,
    /// Path of the stream's JSONL output.
    pub output: String,
}

/// Arguments of `sluice run` with explicit state and output directories and `--json`.
pub fn run_args(connector: &str, connection: &Path, state: &Path, output: &Path) -> Vec<String> {
    vec![
        "run".to_owned(),
        "--connector".to_owned(),
        connector.to_owned(),
        "--config".to_owned(),
        connection.display().to_string(),
        "--state".to_owned(),
        state.display().to_string(),
        "--output".to_owned(),
        output.display().to_string(),
        "--json".to_owned(),
    ]
}
