//! The loopback API both benches read (`throughput` and `peers`), and the `rest` connection
//! that reads it.
//!
//! The bench binary starts itself again with `--serve SIZE:COUNT...` ([`serve_main`]) as a
//! child process, so the API's CPU and memory are counted against none of the clients. It
//! serves pre-rendered `{"data": [...]}` pages of records of about `SIZE` bytes at
//! `GET /{size}/{count}/items?limit&offset`: offset pagination, the shape the bundled `rest`
//! connector reads; a page past the end is short (or empty).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

/// The page size when a request names no `limit`.
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// Records of one size, rendered once: `records` joined by commas in one buffer.
pub struct Dataset {
    bytes: Vec<u8>,
    /// Start of record `i`; one extra entry one past the end (after a virtual comma).
    starts: Vec<usize>,
}

impl Dataset {
    pub fn render(record_bytes: usize, count: u64) -> Self {
        let mut bytes = Vec::with_capacity(record_bytes.saturating_add(1) * count as usize);
        let mut starts = Vec::with_capacity(count as usize + 1);
        for id in 1..=count {
            starts.push(bytes.len());
            render_record(&mut bytes, id, record_bytes);
            bytes.push(b',');
        }
        starts.push(bytes.len());
        Self { bytes, starts }
    }

    fn len(&self) -> u64 {
        (self.starts.len() - 1) as u64
    }

    /// `{"data":[...]}` with records `offset..offset + limit` of the first `count`.
    pub fn page(&self, count: u64, offset: u64, limit: u64) -> Vec<u8> {
        let end = offset.saturating_add(limit).min(count).min(self.len());
        let start = offset.min(end);
        let (from, to) = (self.starts[start as usize], self.starts[end as usize]);
        let records = &self.bytes[from..to.saturating_sub(1).max(from)];
        let mut body = Vec::with_capacity(records.len() + 12);
        body.extend_from_slice(b"{\"data\":[");
        body.extend_from_slice(records);
        body.extend_from_slice(b"]}");
        body
    }
}

/// One record of exactly `target` bytes (or the smallest possible, if that is less).
pub fn render_record(out: &mut Vec<u8>, id: u64, target: usize) {
    const COUNTRIES: [&str; 5] = ["DE", "FR", "US", "JP", "BR"];
    const STATUSES: [&str; 3] = ["active", "paused", "closed"];
    let start = out.len();
    let head = format!(
        concat!(
            r#"{{"id":{id},"name":"Customer {id}","email":"customer{id}@example.com","#,
            r#""status":"{status}","created_at":"2024-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z","#,
            r#""amount":{cents}.{rest:02},"currency":"EUR","tags":["bench","tier-{tier}"],"#,
            r#""address":{{"street":"{id} Main Street","city":"Springfield","zip":"{zip:05}","country":"{country}"}},"#,
            r#""notes":""#
        ),
        id = id,
        status = STATUSES[(id % 3) as usize],
        month = id % 12 + 1,
        day = id % 28 + 1,
        hour = id % 24,
        minute = id % 60,
        cents = id * 7 % 100_000,
        rest = id % 100,
        tier = id % 4,
        zip = id % 100_000,
        country = COUNTRIES[(id % 5) as usize],
    );
    out.extend_from_slice(head.as_bytes());
    let tail = b"\"}";
    let used = out.len() - start + tail.len();
    let filler = b"lorem ipsum dolor sit amet consectetur adipiscing elit ";
    for index in 0..target.saturating_sub(used) {
        out.push(filler[index % filler.len()]);
    }
    out.extend_from_slice(tail);
}

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<u64>,
    offset: Option<u64>,
}

/// `--serve SIZE:COUNT...`: serve `GET /{record_bytes}/{count}/items?limit&offset` and print
/// the address; stops when stdin closes (the benchmark exited).
pub fn serve_main(args: &[String]) -> Result<()> {
    let mut datasets = std::collections::HashMap::new();
    for spec in args {
        let (size, count) = spec.split_once(':').context("expected SIZE:COUNT")?;
        let size: usize = size.parse()?;
        datasets.insert(size, Arc::new(Dataset::render(size, count.parse()?)));
    }
    let datasets = Arc::new(datasets);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        let app = Router::new()
            .route("/{size}/{count}/items", get(serve_page))
            .with_state(datasets);
        println!("{addr}");
        std::io::stdout().flush()?;
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        });
        axum::serve(listener, app).await?;
        Ok(())
    })
}

pub async fn serve_page(
    State(datasets): State<Arc<std::collections::HashMap<usize, Arc<Dataset>>>>,
    UrlPath((size, count)): UrlPath<(usize, u64)>,
    Query(query): Query<PageQuery>,
) -> axum::response::Response {
    let Some(dataset) = datasets.get(&size) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body = dataset.page(
        count,
        query.offset.unwrap_or(0),
        query.limit.unwrap_or(DEFAULT_PAGE_SIZE),
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The API child process; killed (by closing its stdin) when dropped.
pub struct Api {
    child: Child,
    addr: SocketAddr,
}

impl Api {
    pub fn start(datasets: &[(usize, u64)]) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .args(
                datasets
                    .iter()
                    .map(|(size, count)| format!("{size}:{count}")),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line.trim().parse().context("the API did not start")?;
        Ok(Self { child, addr })
    }

    pub fn items_url(&self, record_bytes: usize, count: u64) -> String {
        format!("http://{}/{record_bytes}/{count}/items", self.addr)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A `rest` connection reading `url` as `streams` streams (`items`, or `items0`, `items1`, ...),
/// all synced at once; committing every page, or, when `commit_every_ms` is given, that often
/// and with `[sync] prefetch` (the settings for throughput over re-fetching after a crash).
pub fn connection_toml(
    url: &str,
    page_size: u64,
    streams: usize,
    commit_every_ms: Option<u64>,
) -> Result<String> {
    let parsed = url::Url::parse(url)?;
    let base = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().context("no host")?
    ) + &parsed
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let prefetch = commit_every_ms.is_some();
    let mut toml = format!(
        "name = \"bench\"\n\n[sync]\nconcurrent_streams = {streams}\nprefetch = {prefetch}\n\n[network]\nallow_private_networks = true\n"
    );
    if let Some(every_ms) = commit_every_ms {
        write!(
            toml,
            "\n[checkpoint]\nevery_pages = 1000000\nevery_ms = {every_ms}\n"
        )?;
    }
    write!(toml, "\n[config]\nbase_url = \"{base}\"\nauth = false\n")?;
    for i in 0..streams {
        let name = if streams == 1 {
            "items".to_owned()
        } else {
            format!("items{i}")
        };
        write!(
            toml,
            r#"
[[config.streams]]
name = "{name}"
path = "{path}"
records = "/data"
primary_key = "/id"
pagination = {{ type = "offset", limit_param = "limit", offset_param = "offset", page_size = {page_size} }}
"#,
            path = parsed.path(),
        )?;
    }
    Ok(toml)
}
