//! The guest's stderr: not inherited, but its last few KiB are kept so that when a connector
//! panics, the error names the panic message instead of only a wasm backtrace.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of guest stderr kept: enough for a panic message with its location.
pub const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// Bytes a guest may write in one call: it never blocks and never fails, older bytes just fall
/// out of the tail.
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// A bounded tail of everything the guest wrote to stderr.
#[derive(Debug, Clone, Default)]
pub struct StderrTail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
}

impl StderrTail {
    fn lock(&self) -> MutexGuard<'_, VecDeque<u8>> {
        self.bytes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.lock();
        let keep = bytes.len().min(STDERR_TAIL_BYTES);
        tail.extend(&bytes[bytes.len() - keep..]);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
    }

    /// The last Rust panic written to stderr, as `panic at FILE:LINE:COL: MESSAGE`, if there is
    /// one. (Worded so it cannot be mistaken for a panic of the host itself.)
    pub fn panic_message(&self) -> Option<String> {
        let text = {
            let tail = self.lock();
            String::from_utf8_lossy(&tail.iter().copied().collect::<Vec<u8>>()).into_owned()
        };
        let start = text.rfind("panicked at ")?;
        let panic = &text[start + "panicked at ".len()..];
        let message: Vec<&str> = panic
            .lines()
            .take_while(|line| !line.starts_with("note: "))
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let message = format!("panic at {}", message.join(" "));
        let mut end = message.len().min(1024);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        Some(message[..end].to_owned())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail_and_finds_the_last_panic() {
        let tail = StderrTail::default();
        tail.push(&vec![b'x'; STDERR_TAIL_BYTES * 2]);
        assert_eq!(tail.lock().len(), STDERR_TAIL_BYTES);
        assert_eq!(tail.panic_message(), None);
        tail.push(b"\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n");
        assert_eq!(
            tail.panic_message().as_deref(),
            Some("panic at src/lib.rs:3:5: boom")
        );
    }
}
