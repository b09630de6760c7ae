//! A scriptable HTTP/1.1 server on `127.0.0.1:0` that can misbehave at the byte level.
//!
//! Where [`crate::mock::MockApi`] is a well-behaved API, [`ScriptedServer`] lets a test decide,
//! request by request, what goes back on the wire: any status and headers, a body that drips,
//! stops short of its `Content-Length`, or ends in a TCP reset, a silence before the first byte,
//! or a connection closed without a word. Responses keep the connection alive unless the script
//! says otherwise, and idle connections can be closed after a delay, like real servers do.
//!
//! It runs on its own thread with its own tokio runtime (so synchronous tests that block on a
//! `sluice` child process can use it), records every request with the instant its head arrived
//! ([`Hit::at`], for timing assertions made on the server side), and stops when dropped.
//!
//! [`dataset_page`] answers `GET /offset/items?limit=&offset=` over the generic dataset, the
//! same contract as the mock's offset endpoint, so scripts can wrap it with failures.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::dataset;

/// Largest request head the server reads; a larger one closes the connection.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a kept-alive connection may stay idle before the server closes it, unless
/// [`ScriptedServer::builder`] sets another value. Long enough for any test's pauses.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Upper bound of any single pause the server makes ([`Reply::Delayed`], [`Reply::Drip`],
/// [`Reply::Stall`]): a misbehaving script cannot keep a test alive for long.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Its number on the server, from 0.
    pub index: usize,
    /// The number of the connection it came on, from 0.
    pub connection: usize,
    /// Its number on that connection, from 0 (1 and more: the connection was reused).
    pub on_connection: usize,
    /// Method, upper case.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`).
    pub body: Vec<u8>,
    /// When its head had been read completely.
    pub at: Instant,
}

impl Hit {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of form field `name` in an `application/x-www-form-urlencoded` body.
    pub fn form_value(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The path and query as a `(limit, offset)` pair of the offset endpoint, if present.
    pub fn window(&self) -> Option<(u64, u64)> {
        let limit = self.query_param("limit")?.parse().ok()?;
        let offset = self.query_param("offset").unwrap_or("0").parse().ok()?;
        Some((limit, offset))
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response with a correct `Content-Length`; the connection stays open unless
    /// `close` (then `Connection: close` is sent and the connection closed).
    Response {
        /// Status code.
        status: u16,
        /// Headers, in order (`Content-Length` and `Connection` are added).
        headers: Vec<(String, String)>,
        /// Body bytes.
        body: Vec<u8>,
        /// Close the connection after this response.
        close: bool,
    },
    /// Exactly these bytes, then a normal close (FIN).
    Raw(Vec<u8>),
    /// Exactly these bytes, then a TCP reset (RST) instead of a close.
    RawThenReset(Vec<u8>),
    /// `head` (status line and headers, blank line included), then each of `chunks` with
    /// `every` before it, then a close.
    Drip {
        /// The response head.
        head: Vec<u8>,
        /// Body pieces.
        chunks: Vec<Vec<u8>>,
        /// Pause before each piece.
        every: Duration,
    },
    /// Wait, then do the inner reply.
    Delayed(Duration, Box<Reply>),
    /// Write these bytes, then say nothing more until the client gives up (at most
    /// [`MAX_PAUSE`]).
    Stall(Vec<u8>),
    /// Close the connection without writing anything.
    Close,
}

impl Reply {
    /// A response with `status`, `headers` and `body`, keeping the connection alive.
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self::Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
            close: false,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: &Value) -> Self {
        Self::new(
            status,
            &[("content-type", "application/json")],
            body.to_string(),
        )
    }

    /// A response with `status`, `headers` and a short text body.
    pub fn status(status: u16, headers: &[(&str, &str)]) -> Self {
        Self::new(status, headers, format!("status {status}"))
    }

    /// Adds a header to a [`Reply::Response`] (other replies are unchanged).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Self::Response { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Makes a [`Reply::Response`] close its connection afterwards.
    pub fn closing(mut self) -> Self {
        if let Self::Response { close, .. } = &mut self {
            *close = true;
        }
        self
    }

    /// This reply after `delay`.
    pub fn delayed(self, delay: Duration) -> Self {
        Self::Delayed(delay, Box::new(self))
    }
}

/// A response head: status line and `headers`, blank line included.
pub fn head(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The body of the offset endpoint for `hit` over records `1..=total`: `{"data": [...]}` with
/// `limit` records (20 by default) from `offset`, after the incremental filters `since_id` (ids
/// greater than it) and `updated_after` (`updated_at` strictly later), as the mock's endpoint.
pub fn dataset_body(hit: &Hit, total: u64) -> Value {
    let (limit, offset) = hit.window().unwrap_or((20, 0));
    let since_id: u64 = hit
        .query_param("since_id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let updated_after = hit.query_param("updated_after");
    let data: Vec<Value> = (since_id + 1..=total)
        .map(dataset::record)
        .filter(|record| {
            updated_after
                .is_none_or(|after| record["updated_at"].as_str().is_some_and(|at| at > after))
        })
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    json!({ "data": data })
}

/// A 200 response with [`dataset_body`].
pub fn dataset_page(hit: &Hit, total: u64) -> Reply {
    Reply::json(200, &dataset_body(hit, total))
}

type Script = dyn Fn(&Hit) -> Reply + Send + Sync;

struct Shared {
    hits: Mutex<Vec<Hit>>,
    connections: AtomicUsize,
    /// Connections the server has closed (idle, finished or broken).
    closed: AtomicUsize,
    idle_timeout: Duration,
}

impl Shared {
    fn hits(&self) -> MutexGuard<'_, Vec<Hit>> {
        // A panicking script must not hide the log from the test that asserts on it.
        self.hits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Options of a [`ScriptedServer`].
#[derive(Debug, Clone)]
pub struct Builder {
    idle_timeout: Duration,
}

impl Builder {
    /// Closes kept-alive connections after `idle` without a request (like a server's
    /// keep-alive timeout).
    pub fn close_idle_after(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Starts the server; `script` decides the reply to every request.
    pub fn start(self, script: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> ScriptedServer {
        ScriptedServer::spawn(self.idle_timeout, Arc::new(script))
    }
}

/// The running server. Dropping it stops it and closes every connection.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    /// Options for a server that is not started yet.
    pub fn builder() -> Builder {
        Builder {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// Starts a server with default options; `script` decides the reply to every request.
    pub fn start(script: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> Self {
        Self::builder().start(script)
    }

    fn spawn(idle_timeout: Duration, script: Arc<Script>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind the scripted server on 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            hits: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            idle_timeout,
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("scripted-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("scripted server runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    let accept = async {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else {
                                // Out of descriptors or similar: let the tests' clients finish.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            };
                            let id = thread_shared.connections.fetch_add(1, Ordering::SeqCst);
                            let shared = Arc::clone(&thread_shared);
                            let script = Arc::clone(&script);
                            tokio::spawn(async move {
                                serve(stream, id, script, Arc::clone(&shared)).await;
                                shared.closed.fetch_add(1, Ordering::SeqCst);
                            });
                        }
                    };
                    tokio::select! {
                        _ = stop => {}
                        () = accept => {}
                    }
                });
                // Dropping the runtime cancels every connection task and closes its socket.
            })
            .expect("start the scripted server thread");
        Self {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:PORT`, as an allowed-host pattern.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits().clone()
    }

    /// How many connections the server has closed so far.
    pub fn connections_closed(&self) -> usize {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// How many requests arrived so far.
    pub fn hit_count(&self) -> usize {
        self.shared.hits().len()
    }

    /// How many connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(mut stream: TcpStream, connection: usize, script: Arc<Script>, shared: Arc<Shared>) {
    let mut buffered = Vec::new();
    // Bounded: a connection carries at most this many requests in a test.
    for on_connection in 0..10_000 {
        let idle = if on_connection == 0 {
            MAX_PAUSE
        } else {
            shared.idle_timeout
        };
        let Ok(Some(request)) =
            tokio::time::timeout(idle, read_request(&mut stream, &mut buffered)).await
        else {
            // Idle for too long, closed by the client, or not HTTP: close.
            return;
        };
        let hit = {
            let mut hits = shared.hits();
            let hit = Hit {
                index: hits.len(),
                connection,
                on_connection,
                method: request.method,
                path: request.path,
                query: request.query,
                headers: request.headers,
                body: request.body,
                at: Instant::now(),
            };
            hits.push(hit.clone());
            hit
        };
        let client_closes = hit
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = script(&hit);
        if !write_reply(&mut stream, reply, client_closes).await {
            return;
        }
    }
}

/// Writes `reply`; returns whether the connection stays open for another request.
async fn write_reply(stream: &mut TcpStream, mut reply: Reply, client_closes: bool) -> bool {
    // Bounded: nested delays are unwrapped one level at a time.
    for _ in 0..16 {
        match reply {
            Reply::Delayed(delay, inner) => {
                tokio::time::sleep(delay.min(MAX_PAUSE)).await;
                reply = *inner;
            }
            _ => break,
        }
    }
    match reply {
        Reply::Response {
            status,
            headers,
            body,
            close,
        } => {
            let close = close || client_closes;
            let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            for (name, value) in &headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str(&format!("content-length: {}\r\n", body.len()));
            if close {
                out.push_str("connection: close\r\n");
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&body);
            if stream.write_all(&bytes).await.is_err() {
                return false;
            }
            if close {
                let _ = stream.shutdown().await;
            }
            !close
        }
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
            false
        }
        Reply::RawThenReset(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
            // A zero linger turns the close into a reset.
            let _ = stream.set_zero_linger();
            false
        }
        Reply::Drip {
            head,
            chunks,
            every,
        } => {
            if stream.write_all(&head).await.is_err() {
                return false;
            }
            for chunk in chunks {
                tokio::time::sleep(every.min(MAX_PAUSE)).await;
                if stream.write_all(&chunk).await.is_err() {
                    return false;
                }
            }
            let _ = stream.shutdown().await;
            false
        }
        Reply::Stall(bytes) => {
            let _ = stream.write_all(&bytes).await;
            // Wait for the client to give up (it closes: the read ends), at most MAX_PAUSE.
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(MAX_PAUSE, async {
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            false
        }
        Reply::Close | Reply::Delayed(..) => false,
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads one request (head and `Content-Length` body) from `stream`, keeping any bytes past it
/// in `buffered`. `None` when the connection closes first or the head is not HTTP.
async fn read_request(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(pos) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buffered.len() > MAX_HEAD_BYTES {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buffered.len() < body_start + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..n]);
    }
    let body = buffered[body_start..body_start + length].to_vec();
    buffered.drain(..body_start + length);
    let url = url::Url::parse(&format!("http://scripted{target}")).ok()?;
    Some(Request {
        method,
        path: url.path().to_owned(),
        query: url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers,
        body,
    })
}
