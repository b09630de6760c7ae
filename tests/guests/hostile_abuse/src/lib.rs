//! Hostile guest: abuses the host boundary in the way its config names, and behaves otherwise.
//!
//! Config: `{"abuse": "<name>", "url": "http://…", "bytes": N}`. With `"abuse": "none"` it is a
//! valid incremental connector with one stream, `items` (cursor `/id`): `begin` fetches `url`,
//! `next-page` emits the JSON array it gets and the state `{"pages": n}`, then stops. So a test
//! can first sync it benignly, then switch the abuse on for the same connection and check that
//! the committed checkpoint and output stay as they were.
//!
//! It implements the generated bindings directly instead of the SDK's `Connector` trait, because
//! most abuses (state that is not JSON, a multi-GiB `records` string, a CR/LF header) are things
//! the SDK's typed API does not let a connector express.
//!
//! Abuses:
//! - `stack_overflow`: recursion `bytes` deep (default: unbounded in practice) in `begin`;
//! - `tiny_records`: a page of 2,000,000 `{}` records;
//! - `huge_string`: a `records` string of `bytes` bytes (default 3 GiB);
//! - `state_not_json`, `state_too_large` (2 MiB): a bad checkpoint state;
//! - `never_done`: every page is empty and asks for one more page (a new `n` each time);
//! - `repeat_request`: every page asks for the same request again;
//! - `log_flood`: 20,000 log lines of 8 KiB in `begin`, then benign;
//! - `crlf_header`: a request header whose value carries CR/LF and a second header;
//! - `snoop`: one record saying what it found of the environment, arguments, files and clocks.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_sdk::bindings::sluice::connector::log::{Level, log};
use sluice_sdk::bindings::sluice::connector::types::{Catalog, Method, StreamInfo, SyncMode};
use sluice_sdk::bindings::{Error, Guest, Next, Page, Request, Response, RunContext, Spec};

/// The guest.
pub struct Abuse;

/// What to do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The abuse (see the crate docs); `none` behaves.
    pub abuse: String,
    /// What `begin` fetches.
    #[serde(default)]
    pub url: Option<String>,
    /// Size of the `huge_string` page.
    #[serde(default)]
    pub bytes: Option<u64>,
}

fn config(text: &str) -> Result<Config, Error> {
    serde_json::from_str(text).map_err(|error| Error::InvalidConfig(error.to_string()))
}

fn get(url: &str) -> Request {
    Request {
        method: Method::Get,
        url: url.to_owned(),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        authenticate: false,
        idempotent: true,
    }
}

/// Recurses `depth` times. Every frame keeps its values in wasm locals (nothing is
/// address-taken, so nothing lives on the guest's in-memory shadow stack) and the result is
/// not an accumulation LLVM could turn into a loop: the wasm stack itself overflows.
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    let below = recurse(depth - 1);
    below.rotate_left(u32::try_from(depth & 63).unwrap_or(0)) ^ depth
}

/// What the guest can find out about its surroundings.
fn snoop(context: &RunContext) -> Value {
    let env: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    let args: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let files: Vec<Value> = ["/etc/passwd", "/proc/self/environ", ".", "/"]
        .iter()
        .map(|path| {
            let read = std::fs::read(path).map(|bytes| bytes.len());
            let listed = std::fs::read_dir(path).map(|entries| entries.count());
            json!({"path": path, "read": read.is_ok(), "listed": listed.is_ok()})
        })
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let started = std::time::Instant::now();
    let mut spin = 0_u64;
    for turn in 0..5_000_000_u64 {
        spin = std::hint::black_box(spin.wrapping_add(turn));
    }
    let monotonic_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    json!({
        "id": 1,
        "env": env,
        "args": args,
        "files": files,
        "now_ms": now_ms,
        "started_at_ms": context.started_at_ms,
        "monotonic_elapsed_ns": monotonic_ns,
        "spin": spin,
    })
}

/// The benign page: the response's JSON array as records, and one more page in the state.
fn benign_page(state: Option<&str>, response: &Response) -> Result<Page, Error> {
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|error| Error::UnexpectedResponse(error.to_string()))?;
    let records = match body {
        Value::Array(records) => records,
        other => vec![other],
    };
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    let pages = state
        .and_then(|state| serde_json::from_str::<Value>(state).ok())
        .and_then(|state| state["pages"].as_u64())
        .unwrap_or(0);
    Ok(Page {
        records: lines.join("\n"),
        state: Some(json!({ "pages": pages + 1 }).to_string()),
        next: Next::Done,
    })
}

impl Guest for Abuse {
    fn spec() -> Spec {
        Spec {
            name: "hostile-abuse".to_owned(),
            version: "0.1.0".to_owned(),
            description: "Abuses the host boundary as its config says".to_owned(),
            config_schema: "{}".to_owned(),
            rate_limit: None,
            auth_schemes: Vec::new(),
        }
    }

    fn check(config_text: String) -> Result<(), Error> {
        config(&config_text).map(drop)
    }

    fn discover(config_text: String) -> Result<Catalog, Error> {
        let config = config(&config_text)?;
        let allowed_hosts = match &config.url {
            Some(url) => vec![
                sluice_sdk::url::allowed_host(url)
                    .map_err(|error| Error::InvalidConfig(error.to_string()))?,
            ],
            None => Vec::new(),
        };
        Ok(Catalog {
            allowed_hosts,
            streams: vec![StreamInfo {
                name: "items".to_owned(),
                json_schema: "{}".to_owned(),
                primary_key: vec!["/id".to_owned()],
                cursor_field: Some("/id".to_owned()),
                sync_modes: vec![SyncMode::FullRefresh, SyncMode::Incremental],
            }],
        })
    }

    fn begin(
        config_text: String,
        _stream: String,
        _state: Option<String>,
        _context: RunContext,
    ) -> Result<Next, Error> {
        let config = config(&config_text)?;
        let url = config
            .url
            .clone()
            .ok_or_else(|| Error::InvalidConfig("`url` is missing".to_owned()))?;
        match config.abuse.as_str() {
            "stack_overflow" => {
                let depth = recurse(config.bytes.unwrap_or(u64::MAX / 2));
                Err(Error::ConnectorBug(format!("recursion ended at {depth}")))
            }
            "log_flood" => {
                let line = "x".repeat(8 * 1024);
                for index in 0..20_000 {
                    log(Level::Info, &format!("flood {index}: {line}"));
                }
                Ok(Next::Fetch(get(&url)))
            }
            "crlf_header" => {
                let mut request = get(&url);
                request
                    .headers
                    .push(("x-note".to_owned(), "a\r\nx-injected: 1".to_owned()));
                Ok(Next::Fetch(request))
            }
            _ => Ok(Next::Fetch(get(&url))),
        }
    }

    fn next_page(
        config_text: String,
        _stream: String,
        state: Option<String>,
        context: RunContext,
        request: Request,
        response: Response,
    ) -> Result<Page, Error> {
        let config = config(&config_text)?;
        match config.abuse.as_str() {
            "tiny_records" => Ok(Page {
                records: "{}\n".repeat(2_000_000),
                state: None,
                next: Next::Done,
            }),
            "huge_string" => {
                let bytes = config.bytes.unwrap_or(3 << 30);
                let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
                // Grown chunk by chunk, as a real buffer would be: asking for 3 GiB at once
                // is only a capacity overflow on wasm32, not a memory bomb.
                let chunk = "x".repeat(64 * 1024);
                let mut records = String::from("{\"id\":\"");
                while records.len() + chunk.len() + 2 <= bytes {
                    records.push_str(&chunk);
                }
                while records.len() + 2 < bytes {
                    records.push('x');
                }
                records.push_str("\"}");
                Ok(Page {
                    records,
                    state: None,
                    next: Next::Done,
                })
            }
            "state_not_json" => {
                let mut page = benign_page(state.as_deref(), &response)?;
                page.state = Some("{not json".to_owned());
                Ok(page)
            }
            "state_too_large" => {
                let mut page = benign_page(state.as_deref(), &response)?;
                let mut text = String::from("{\"blob\":\"");
                while text.len() < 2 << 20 {
                    text.push_str("0123456789abcdef");
                }
                text.push_str("\"}");
                page.state = Some(text);
                Ok(page)
            }
            "never_done" => {
                static PAGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = PAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut request = request;
                request.query.retain(|(name, _)| name != "n");
                request.query.push(("n".to_owned(), n.to_string()));
                Ok(Page {
                    records: String::new(),
                    state: None,
                    next: Next::Fetch(request),
                })
            }
            "repeat_request" => Ok(Page {
                records: String::new(),
                state: None,
                next: Next::Fetch(request),
            }),
            "snoop" => {
                let mut records = String::new();
                let _ = write!(records, "{}", snoop(&context));
                Ok(Page {
                    records,
                    state: None,
                    next: Next::Done,
                })
            }
            _ => benign_page(state.as_deref(), &response),
        }
    }
}

sluice_sdk::bindings::__export_connector_world!(Abuse with_types_in sluice_sdk::bindings);
