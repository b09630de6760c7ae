//! How `sluice serve`'s engine scales with the number of connections: memory per idle
//! connection, memory per active connection and syncs per second.
//!
//! ```sh
//! cargo bench -p sluice-host --bench serve_scale                              # N = 100, 1,000
//! cargo bench -p sluice-host --bench serve_scale -- --connections 10,100,2000
//! ```
//!
//! This binary serves a loopback API on 127.0.0.1 (`/offset/items?limit=&offset=` answering
//! `{"data": [...]}`, 20 pre-rendered records of about 400 bytes, read in pages of 10, so a
//! sync makes three requests) and, for each N, starts itself again as a child process that
//! measures one engine (`sluice_host::serve::Engine`, the engine of `sluice serve`). A fresh
//! process per N keeps one measurement's freed memory from being reused by the next, and keeps
//! the API's own memory out of the numbers. In the child, RSS comes from `/proc/self/status`:
//!
//! 1. *baseline*: the engine started with one warm-up connection (tenant `warm`), which has
//!    synced once: the runtime, the compiled `rest` connector, the checkpoint store, the HTTP
//!    client and the tokio workers are all warm;
//! 2. *idle*: the deployment file rewritten with N more connections (10 tenants, none with a
//!    schedule) and reloaded into the same engine; memory per idle connection is
//!    (idle - baseline) / N;
//! 3. *active*: all N triggered at once; peak RSS is sampled every 10 ms (and read as `VmHWM`
//!    after resetting it through `/proc/self/clear_refs`), as is the number of syncs running;
//!    memory per active connection is (peak - baseline) / N, idle cost included. Syncs/s is
//!    N / the wall time from the first trigger until all N have ended; every sync must end
//!    `succeeded`.
//!
//! Caps are set so that nothing waits for them: `max_concurrent_syncs` = N + 1 overall and
//! N per tenant, and a tenant guest-memory cap far above N x the 256 MiB each sync reserves
//! (guest memory is reserved virtual memory; only what a guest touches counts in RSS).
//!
//! Not part of `cargo test`: it asserts nothing about time. Needs Linux (`/proc`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

use sluice_host::Runtime;
use sluice_host::serve::{Deployment, Engine};

/// Records the loopback API serves.
const RECORDS: usize = 20;
/// Approximate size of one record, in bytes.
const RECORD_BYTES: usize = 400;
/// Page size of every connection.
const PAGE_SIZE: usize = 10;
/// Tenants the N connections are spread over.
const TENANTS: usize = 10;
/// How often the active phase samples RSS and running syncs.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Longest any phase may take before the bench gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Time the idle engine is left alone before its RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    if let Some(at) = args.iter().position(|arg| arg == "--child") {
        let n: usize = value(&args, at)?.parse().context("--child N")?;
        let api = args
            .iter()
            .position(|arg| arg == "--api")
            .map(|at| value(&args, at))
            .transpose()?
            .context("--child needs --api URL")?;
        let result = runtime.block_on(child(n, &api));
        // The engine's blocking tasks (store flushes, guest calls) are not waited for: the
        // numbers are taken, and a runtime drop would wait on them.
        runtime.shutdown_background();
        println!("{}", result?.to_line());
        return Ok(());
    }
    let counts: Vec<usize> = match args.iter().position(|arg| arg == "--connections") {
        Some(at) => value(&args, at)?
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .context("--connections takes numbers like 100,1000")
            })
            .collect::<Result<_>>()?,
        None => vec![100, 1000],
    };
    ensure!(
        counts.iter().all(|&n| n >= 1),
        "--connections must be at least 1"
    );
    let result = runtime.block_on(parent(&counts));
    runtime.shutdown_background();
    result
}

fn value(args: &[String], at: usize) -> Result<String> {
    args.get(at + 1)
        .cloned()
        .with_context(|| format!("{} needs a value", args[at]))
}

// ---------------------------------------------------------------------------------------------
// Parent: the loopback API and the report.

async fn parent(counts: &[usize]) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the loopback API")?;
    let api = format!("http://{}", listener.local_addr()?);
    let records = Arc::new(render_records());
    let app = Router::new()
        .route("/offset/items", get(items))
        .with_state(Arc::clone(&records));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("loopback API stopped: {error}");
        }
    });

    let exe = std::env::current_exe().context("path of this bench")?;
    let mut results = Vec::new();
    for &n in counts {
        eprintln!("serve_scale: measuring N = {n} ...");
        let output = tokio::process::Command::new(&exe)
            .args(["--child", &n.to_string(), "--api", &api])
            .stderr(std::process::Stdio::inherit())
            .output()
            .await
            .context("run the measuring child")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("the child for N = {n} failed ({}): {stdout}", output.status);
        }
        let line = stdout
            .lines()
            .find(|line| line.starts_with("RESULT "))
            .with_context(|| format!("no RESULT line from the child for N = {n}: {stdout}"))?;
        results.push(Measured::from_line(line)?);
    }
    print!(
        "{}",
        report(&results, records.iter().map(String::len).sum())
    );
    Ok(())
}

#[derive(Deserialize)]
struct Page {
    limit: usize,
    offset: usize,
}

async fn items(
    State(records): State<Arc<Vec<String>>>,
    Query(page): Query<Page>,
) -> impl IntoResponse {
    let end = page.offset.saturating_add(page.limit).min(records.len());
    let start = page.offset.min(end);
    let body = format!("{{\"data\":[{}]}}", records[start..end].join(","));
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// Records of about [`RECORD_BYTES`] bytes each.
fn render_records() -> Vec<String> {
    (1..=RECORDS)
        .map(|id| {
            let head = format!(
                "{{\"id\":{id},\"updated_at\":\"2026-01-01T00:00:{:02}Z\",\"name\":\"record-{id:04}\",\"note\":\"",
                id % 60
            );
            let pad = RECORD_BYTES.saturating_sub(head.len() + 2);
            let note: String = "lorem ipsum dolor sit amet "
                .chars()
                .cycle()
                .take(pad)
                .collect();
            format!("{head}{note}\"}}")
        })
        .collect()
}

fn report(results: &[Measured], data_bytes: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sluice serve engine scale (host/benches/serve_scale.rs), {} CPU(s) available",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let _ = writeln!(
        out,
        "each connection: bundled `rest` connector, 1 stream, {RECORDS} records (~{RECORD_BYTES} B, {data_bytes} B in all) in pages of {PAGE_SIZE} = 3 requests per sync, loopback API on 127.0.0.1, connections spread over {TENANTS} tenants, caps high enough that no sync waits"
    );
    let _ = writeln!(
        out,
        "memory = RSS from /proc/self/status in a fresh process per N; baseline = engine with 1 warm connection that has synced once"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>6} | {:>10} | {:>10} | {:>10} | {:>10} | {:>13} | {:>15} | {:>8} | {:>10} | {:>9}",
        "N",
        "base MiB",
        "idle MiB",
        "peak MiB",
        "reload s",
        "KiB/idle conn",
        "KiB/active conn",
        "syncs/s",
        "peak conc.",
        "succeeded"
    );
    let _ = writeln!(out, "{}", "-".repeat(128));
    for m in results {
        let n = m.n as f64;
        let peak = m.peak_kib.max(m.hwm_kib);
        let _ = writeln!(
            out,
            "{:>6} | {:>10.1} | {:>10.1} | {:>10.1} | {:>10.2} | {:>13.1} | {:>15.1} | {:>8.1} | {:>10} | {:>9}",
            m.n,
            m.baseline_kib as f64 / 1024.0,
            m.idle_kib as f64 / 1024.0,
            peak as f64 / 1024.0,
            m.reload_secs,
            m.idle_kib.saturating_sub(m.baseline_kib) as f64 / n,
            peak.saturating_sub(m.baseline_kib) as f64 / n,
            n / m.wall_secs,
            m.peak_concurrent,
            format!("{}/{}", m.succeeded, m.n),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "KiB/idle conn = (idle - base) / N; KiB/active conn = (peak - base) / N, with all N triggered at once (idle cost included);"
    );
    let _ = writeln!(
        out,
        "syncs/s = N / wall time from the first trigger until all N ended; peak conc. = most syncs running at once (sampled every {} ms).",
        SAMPLE_EVERY.as_millis()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Child: one engine, one N.

struct Measured {
    n: usize,
    baseline_kib: u64,
    idle_kib: u64,
    /// Largest sampled VmRSS during the active phase.
    peak_kib: u64,
    /// VmHWM after the active phase (reset before it; 0 if the reset is not allowed).
    hwm_kib: u64,
    reload_secs: f64,
    wall_secs: f64,
    succeeded: usize,
    peak_concurrent: usize,
}

impl Measured {
    fn to_line(&self) -> String {
        format!(
            "RESULT {} {} {} {} {} {} {} {} {}",
            self.n,
            self.baseline_kib,
            self.idle_kib,
            self.peak_kib,
            self.hwm_kib,
            self.reload_secs,
            self.wall_secs,
            self.succeeded,
            self.peak_concurrent
        )
    }

    fn from_line(line: &str) -> Result<Self> {
        let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
        ensure!(fields.len() == 9, "malformed RESULT line: {line}");
        let int = |i: usize| -> Result<u64> {
            fields[i]
                .parse()
                .with_context(|| format!("field {i} of {line}"))
        };
        let float = |i: usize| -> Result<f64> {
            fields[i]
                .parse()
                .with_context(|| format!("field {i} of {line}"))
        };
        Ok(Self {
            n: usize::try_from(int(0)?)?,
            baseline_kib: int(1)?,
            idle_kib: int(2)?,
            peak_kib: int(3)?,
            hwm_kib: int(4)?,
            reload_secs: float(5)?,
            wall_secs: float(6)?,
            succeeded: usize::try_from(int(7)?)?,
            peak_concurrent: usize::try_from(int(8)?)?,
        })
    }
}

async fn child(n: usize, api: &str) -> Result<Measured> {
    let dir = tempfile::Builder::new()
        .prefix("sluice-serve-scale-")
        .tempdir()
        .context("temporary directory")?;
    let path = dir.path().join("deployment.toml");
    std::fs::write(&path, deployment_text(api, n, false)).context("write the deployment")?;
    let deployment = Deployment::load(&path)?;
    let engine = Engine::start(Runtime::new()?, deployment)?;

    // Warm-up: one sync end to end, so that nothing below pays for a first time.
    engine.trigger("warm", "c0")?;
    let warm = wait_all(&engine, |tenant| tenant == "warm", 1).await?;
    ensure!(
        warm.succeeded == 1,
        "the warm-up sync did not succeed: {:#?}",
        engine.get("warm", "c0")?.last_runs
    );
    tokio::time::sleep(SETTLE).await;
    let baseline_kib = status_kib("VmRSS")?;
    eprintln!("serve_scale: N = {n}: warm, baseline {baseline_kib} KiB");

    // Idle: N connections added by a reload, none running.
    std::fs::write(&path, deployment_text(api, n, true)).context("rewrite the deployment")?;
    let started = Instant::now();
    let reloaded = engine.reload()?;
    let reload_secs = started.elapsed().as_secs_f64();
    ensure!(
        reloaded.added.len() == n,
        "the reload added {} connections, not {n}",
        reloaded.added.len()
    );
    tokio::time::sleep(SETTLE).await;
    let listed = engine.list(None);
    ensure!(
        listed.len() == n + 1 && listed.iter().all(|view| view.running.is_none()),
        "expected {} idle connections",
        n + 1
    );
    drop(listed);
    let idle_kib = status_kib("VmRSS")?;

    // Active: all N at once.
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = Instant::now();
    for i in 0..n {
        let (tenant, name) = placement(n, i);
        engine.trigger(&tenant, &name)?;
    }
    let active = wait_all(&engine, |tenant| tenant != "warm", n).await?;
    let wall_secs = started.elapsed().as_secs_f64();
    eprintln!("serve_scale: N = {n}: {n} syncs ended in {wall_secs:.2} s");
    let hwm_kib = if hwm_reset { status_kib("VmHWM")? } else { 0 };
    if active.succeeded != n {
        let failed: Vec<String> = engine
            .list(None)
            .into_iter()
            .filter_map(|view| {
                let run = view.last_runs.first()?;
                (run.outcome != "succeeded").then(|| {
                    format!(
                        "{}/{}: {} {:?}",
                        view.tenant, view.name, run.outcome, run.error
                    )
                })
            })
            .take(5)
            .collect();
        bail!(
            "{} of {n} syncs succeeded; first failures: {failed:#?}",
            active.succeeded
        );
    }
    eprintln!("serve_scale: N = {n}: shutting down");
    engine.shutdown().await;
    Ok(Measured {
        n,
        baseline_kib,
        idle_kib,
        peak_kib: active.peak_kib,
        hwm_kib,
        reload_secs,
        wall_secs,
        succeeded: active.succeeded,
        peak_concurrent: active.peak_concurrent,
    })
}

struct Ended {
    succeeded: usize,
    peak_kib: u64,
    peak_concurrent: usize,
}

/// Samples RSS and running syncs every [`SAMPLE_EVERY`] until `count` connections of the
/// tenants `select` picks have ended a sync.
async fn wait_all(engine: &Engine, select: impl Fn(&str) -> bool, count: usize) -> Result<Ended> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut peak_kib = 0;
    let mut peak_concurrent = 0;
    loop {
        peak_kib = peak_kib.max(status_kib("VmRSS")?);
        let views = engine.list(None);
        let mine = views.iter().filter(|view| select(&view.tenant));
        let mut running = 0;
        let mut ended = 0;
        let mut succeeded = 0;
        for view in mine {
            if view.running.is_some() {
                running += 1;
            } else if !view.queued
                && let Some(run) = view.last_runs.first()
            {
                ended += 1;
                succeeded += usize::from(run.outcome == "succeeded");
            }
        }
        peak_concurrent = peak_concurrent.max(running);
        if ended >= count {
            return Ok(Ended {
                succeeded,
                peak_kib,
                peak_concurrent,
            });
        }
        ensure!(
            Instant::now() < deadline,
            "only {ended} of {count} syncs ended within {PHASE_TIMEOUT:?}"
        );
        drop(views);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// Tenant and connection name of the `i`th of `n` connections.
fn placement(n: usize, i: usize) -> (String, String) {
    let tenants = TENANTS.min(n);
    (format!("t{:02}", i % tenants), format!("c{i:04}"))
}

/// The deployment: the warm-up connection, and the N measured ones if `with_n`.
fn deployment_text(api: &str, n: usize, with_n: bool) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "state_dir = \"state\"\noutput_dir = \"output\"\nmax_concurrent_syncs = {}\nshutdown_grace_secs = 5\n\n[control]\nlisten = \"127.0.0.1:0\"\ntoken = \"serve-scale-operator-token\"\n",
        n + 1
    );
    let tenant = |text: &mut String, name: &str| {
        let _ = writeln!(
            text,
            "[tenants.{name}]\nmax_concurrent_syncs = {n}\nmax_guest_memory_mib = {}\n",
            (n as u64 + 1) * 1024
        );
    };
    let connection = |text: &mut String, tenant: &str, name: &str| {
        let _ = writeln!(
            text,
            "[tenants.{tenant}.connections.{name}]\nconnector = \"rest\"\nnetwork = {{ allow_private_networks = true }}\nconfig = {{ base_url = \"{api}\", streams = [{{ name = \"items\", path = \"/offset/items\", records = \"/data\", primary_key = \"/id\", pagination = {{ type = \"offset\", limit_param = \"limit\", offset_param = \"offset\", page_size = {PAGE_SIZE} }} }}] }}\n"
        );
    };
    tenant(&mut text, "warm");
    connection(&mut text, "warm", "c0");
    if with_n {
        for t in 0..TENANTS.min(n) {
            tenant(&mut text, &format!("t{t:02}"));
        }
        for i in 0..n {
            let (tenant, name) = placement(n, i);
            connection(&mut text, &tenant, &name);
        }
    }
    text
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .with_context(|| format!("no {field} in /proc/self/status"))
}
