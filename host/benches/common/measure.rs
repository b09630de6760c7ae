//! Measuring a sync: wall time, CPU time and peak RSS, of a child process (`wait4` and
//! `/proc/<pid>/status`) or of this process (`getrusage`). Shared by the benches.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

#[allow(
    unsafe_code,
    reason = "getrusage, wait4 and sync_file_range have no safe wrapper in std"
)]
pub mod sys {
    use std::time::Duration;

    /// CPU time of a process.
    #[derive(Debug, Clone, Copy)]
    pub struct Usage {
        pub cpu: Duration,
    }

    fn from_raw(raw: &libc::rusage) -> Usage {
        let time = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
        };
        Usage {
            cpu: time(raw.ru_utime) + time(raw.ru_stime),
        }
    }

    /// This process so far.
    pub fn current() -> Usage {
        let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `raw` is a valid, writable `rusage`; getrusage(RUSAGE_SELF) cannot fail.
        let raw = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, raw.as_mut_ptr());
            raw.assume_init()
        };
        from_raw(&raw)
    }

    /// Writes the first `len` bytes of `file` to the device and waits, as sled does for its
    /// log on Linux (no metadata, no device cache flush: weaker than `fdatasync`).
    pub fn sync_file_range(file: &std::fs::File, len: usize) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: a plain syscall on an open descriptor; no memory is passed.
        let ret =
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, len as libc::off64_t, flags) };
        if ret < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for child `pid` and returns whether it succeeded, and what it used.
    pub fn wait(pid: u32) -> std::io::Result<(bool, Usage)> {
        let mut status = 0;
        let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: both out-pointers are valid; `pid` is our own child, not yet waited for.
        let raw = unsafe {
            if libc::wait4(pid as libc::pid_t, &mut status, 0, raw.as_mut_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            raw.assume_init()
        };
        let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        Ok((ok, from_raw(&raw)))
    }
}

/// One measured sync.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub records: u64,
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_rss_kib: Option<u64>,
}

impl Run {
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }
}

/// The peak resident memory (`VmHWM`) of process `pid`, or `None` once it is gone.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `command` to completion: wall time, CPU time (`wait4`) and peak RSS. The peak is
/// sampled from `/proc/<pid>/status` every millisecond: `ru_maxrss` would report this
/// (large) process's size, which Linux carries into a child across `exec`. The child's
/// stdin, stdout and stderr are as `command` sets them.
pub fn measure_child(command: &mut Command, expected_records: u64) -> Result<Run> {
    let started = Instant::now();
    let child = command.spawn()?;
    let pid = child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let done = Arc::clone(&done);
        move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match peak_rss_kib(pid) {
                    Some(kib) => peak = kib.max(peak),
                    None => break,
                }
                #[allow(
                    clippy::disallowed_methods,
                    reason = "a sampling thread of its own, not an async task"
                )]
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        }
    });
    let (ok, usage) = sys::wait(pid)?;
    let wall = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(0);
    if !ok {
        bail!("child {command:?} failed");
    }
    Ok(Run {
        records: expected_records,
        wall,
        cpu: usage.cpu,
        peak_rss_kib: Some(peak),
    })
}

pub fn best(runs: &[Run]) -> Run {
    runs.iter()
        .copied()
        .min_by_key(|run| run.wall)
        .expect("at least one run")
}
