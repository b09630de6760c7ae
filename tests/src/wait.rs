//! Bounded waiting. Every loop here is bounded by both a count and a time, and no single pause
//! exceeds [`POLL_INTERVAL`].

use std::time::{Duration, Instant};

/// How long one polling step sleeps.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Blocks the current thread for `duration`, which must be at most 100 ms.
///
/// Tests that block on a child process are synchronous; this is their only sleep.
#[allow(
    clippy::disallowed_methods,
    reason = "synchronous tests poll a child process; pauses are capped at 100 ms"
)]
pub fn pause(duration: Duration) {
    assert!(
        duration <= Duration::from_millis(100),
        "pause of {duration:?} is over the 100 ms cap"
    );
    std::thread::sleep(duration);
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let max_polls = timeout.as_millis() / POLL_INTERVAL.as_millis() + 1;
    for _ in 0..max_polls {
        if condition() {
            return true;
        }
        if start.elapsed() >= timeout {
            break;
        }
        pause(POLL_INTERVAL);
    }
    condition()
}

/// Async version of [`until`] for tests running on tokio.
pub async fn until_async(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let max_polls = timeout.as_millis() / POLL_INTERVAL.as_millis() + 1;
    for _ in 0..max_polls {
        if condition() {
            return true;
        }
        if start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    condition()
}
