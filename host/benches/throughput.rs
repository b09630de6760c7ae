//! Throughput of Sluice against a native Rust client, measured side by side in one run.
//!
//! ```sh
//! cargo bench -p sluice-host --bench throughput                      # the issue's workload
//! cargo bench -p sluice-host --bench throughput -- --records 50000   # a quicker run
//! ```
//!
//! A loopback API (this binary again, started as a child process with `--serve`, so its CPU
//! and memory are not counted against either client) serves pre-rendered records of about
//! `--record-bytes` bytes, `{"data": [...]}` pages with `limit`/`offset` pagination, the shape
//! the bundled `rest` connector reads. The same records are then synced:
//!
//! - by Sluice in-process (`sluice_host::sync::run` with the bundled `rest` connector),
//! - by a native baseline in-process: the same HTTP client (reqwest), the same page loop,
//!   serde_json parsing each page the way the guest does (records as `RawValue`s copied as
//!   JSON lines), `fdatasync` after every page (the durability Sluice's sink gives its output)
//!   and a position file (what an exact resume needs),
//! - and by both as child processes (the real `sluice run` CLI and this binary with
//!   `--native-child`), whose CPU seconds and peak RSS come from `wait4`.
//!
//! Sluice also checks every record the guest returns (JSON object, limits, schema) and keeps
//! a sled checkpoint; it pipelines: the next request goes out and the guest parses it while
//! the previous page is made durable and committed. The baseline is the plain sequential loop
//! a native client would be.
//!
//! Then: component load time (cold compile and from the on-disk cache), instantiate time,
//! guest time per page of 10 KB, 100 KB and 1 MB against native parsing of the same page,
//! memory per connection, records/s against page size and record size, and records/s and
//! memory against the number of streams of one connection and of concurrent connections. The output is
//! printed and written to `<out>/latest.txt`, with a chart `<out>/throughput.svg`
//! (default `<out>` = `host/benches/results`).
//!
//! Not part of `cargo test`: it asserts nothing about time.

#[path = "common/api.rs"]
mod api;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/report.rs"]
mod report;

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use sluice_host::checkpoint::{Checkpoint, CheckpointStore, SinkPosition, StreamKey};
use sluice_host::config::Connection;
use sluice_host::http::HttpResponse;
use sluice_host::protocol::{Next, RunContext, SyncMode};
use sluice_host::sandbox::Limits;
use sluice_host::sink::JsonlSink;
use sluice_host::sync::{self, RunOptions};
use sluice_host::{Connector, Runtime};

use api::{Api, Dataset, connection_toml, serve_main};
use measure::{Run, best, measure_child, peak_rss_kib, sys};
use report::{Report, say};

/// The issue's workload: 500,000 records of about 400 bytes in pages of 100.
const DEFAULT_RECORDS: u64 = 500_000;
const DEFAULT_PAGE_SIZE: u64 = api::DEFAULT_PAGE_SIZE;
const DEFAULT_RECORD_BYTES: usize = 400;
/// Repetitions of each side-by-side measurement (alternating); the best of each is reported.
const DEFAULT_REPS: u32 = 2;
/// Page sizes of the scaling figures (and the chart).
const SCALING_PAGE_SIZES: &[u64] = &[10, 30, 100, 300, 1000, 3000];
/// Record sizes of the scaling figures, at the default page size.
const SCALING_RECORD_BYTES: &[usize] = &[100, 400, 1600, 6400];
/// The commit interval of the group-commit run (`[checkpoint] every_ms`).
const GROUP_COMMIT_MS: u64 = 1000;
/// Sessions held at once to measure memory per connection.
const CONNECTIONS: usize = 100;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--serve") => serve_main(&args[1..]),
        Some("--native-child") => native_child_main(&args[1..]),
        _ => bench_main(&args),
    }
}

/// Command-line options of the benchmark.
struct Options {
    records: u64,
    page_size: u64,
    record_bytes: usize,
    reps: u32,
    out_dir: PathBuf,
    scaling: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            records: DEFAULT_RECORDS,
            page_size: DEFAULT_PAGE_SIZE,
            record_bytes: DEFAULT_RECORD_BYTES,
            reps: DEFAULT_REPS,
            out_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results"),
            scaling: true,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("`{arg}` needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                // `cargo bench` passes `--bench` to every bench binary.
                "--bench" => {}
                "--records" => options.records = value()?.parse()?,
                "--page-size" => options.page_size = value()?.parse()?,
                "--record-bytes" => options.record_bytes = value()?.parse()?,
                "--reps" => options.reps = value()?.parse::<u32>()?.max(1),
                "--out" => options.out_dir = PathBuf::from(value()?),
                "--no-scaling" => options.scaling = false,
                "--help" | "-h" => {
                    println!(
                        "throughput [--records N] [--page-size N] [--record-bytes N] [--reps N] [--out DIR] [--no-scaling]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument `{other}`; try --help"),
            }
        }
        if options.records == 0 || options.page_size == 0 {
            bail!("--records and --page-size must be positive");
        }
        Ok(options)
    }
}

// ---------------------------------------------------------------------------------------------
// The native baseline
// ---------------------------------------------------------------------------------------------

/// What the baseline makes durable after each page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Nothing: the OS writes the output back when it likes.
    None,
    /// The page's JSON lines (`fdatasync`), as Sluice's sink does.
    Output,
    /// The output, then a small position file: what an exact resume needs, as Sluice's
    /// checkpoint, synced as sled syncs its log (`sync_file_range`).
    OutputAndPosition,
}

/// The baseline: same client, same page loop; parse each page, write each record as a JSON
/// line, make the page durable (when `fsync`). Returns the records written.
async fn native_sync(
    client: &reqwest::Client,
    url: &str,
    page_size: u64,
    out: &Path,
    durability: Durability,
) -> Result<u64> {
    let mut file = std::fs::File::create(out)?;
    let mut position = match durability {
        Durability::OutputAndPosition => Some(std::fs::File::create(out.with_extension("pos"))?),
        _ => None,
    };
    let mut lines = Vec::new();
    let (mut offset, mut total) = (0u64, 0u64);
    loop {
        let mut response = client
            .get(url)
            .query(&[("limit", page_size), ("offset", offset)])
            .header("accept", "application/json")
            .send()
            .await?
            .error_for_status()?;
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        let count = native_page(&body, &mut lines)? as u64;
        file.write_all(&lines)?;
        if durability != Durability::None {
            file.sync_data()?;
        }
        total += count;
        offset += count;
        if let Some(position) = &mut position {
            // The least a native client must persist to resume exactly: where the output
            // ends and which offset to request next. Written in place and synced the way
            // sled syncs its log on Linux (sync_file_range), so both sides pay the same.
            let bytes = file.stream_position()?;
            let line = format!("{bytes:020} {offset:020}\n");
            position.seek(std::io::SeekFrom::Start(0))?;
            position.write_all(line.as_bytes())?;
            sys::sync_file_range(position, line.len())?;
        }
        if count < page_size {
            return Ok(total);
        }
    }
}

/// `--native-child URL OUT PAGE_SIZE`: the baseline as a process of its own.
fn native_child_main(args: &[String]) -> Result<()> {
    let [url, out, page_size] = args else {
        bail!("--native-child URL OUT PAGE_SIZE");
    };
    let page_size = page_size.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let records = runtime.block_on(async {
        let client = reqwest::Client::new();
        native_sync(
            &client,
            url,
            page_size,
            Path::new(out),
            Durability::OutputAndPosition,
        )
        .await
    })?;
    println!("{records}");
    Ok(())
}

/// Parses a page and writes its records as JSON lines: the work the guest does per page, done
/// the same way (each record's own bytes, borrowed from the body, copied as one line; only a
/// record with line breaks in it is re-serialised).
fn native_page(body: &[u8], lines: &mut Vec<u8>) -> Result<usize> {
    #[derive(Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        data: Vec<&'a serde_json::value::RawValue>,
    }
    let page: Page<'_> = serde_json::from_slice(body)?;
    lines.clear();
    lines.reserve(body.len());
    for record in &page.data {
        let raw = record.get();
        if raw.contains(['\n', '\r']) {
            let value: Value = serde_json::from_str(raw)?;
            serde_json::to_writer(&mut *lines, &value)?;
        } else {
            lines.extend_from_slice(raw.as_bytes());
        }
        lines.push(b'\n');
    }
    Ok(page.data.len())
}

// ---------------------------------------------------------------------------------------------
// Sluice
// ---------------------------------------------------------------------------------------------

/// One in-process sync with `sluice_host::sync::run` into a fresh directory under `dir`.
async fn sluice_sync(
    runtime: &Runtime,
    connector: &Connector,
    url: &str,
    page_size: u64,
    dir: &Path,
) -> Result<u64> {
    sluice_sync_streams(runtime, connector, url, page_size, 1, None, dir).await
}

/// [`sluice_sync`] of a connection with `streams` streams synced at once.
async fn sluice_sync_streams(
    runtime: &Runtime,
    connector: &Connector,
    url: &str,
    page_size: u64,
    streams: usize,
    commit_every_ms: Option<u64>,
    dir: &Path,
) -> Result<u64> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let connection = Connection::parse(
        &connection_toml(url, page_size, streams, commit_every_ms)?,
        &dir.join("bench.toml"),
    )?;
    let options = RunOptions {
        state_dir: dir.join("state"),
        output_dir: dir.join("output"),
        ..RunOptions::default()
    };
    let summary = sync::run(runtime, connector, &connection, &options).await?;
    Ok(summary.streams.iter().map(|stream| stream.records).sum())
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

/// Resident memory of this process now, from `/proc/self/statm`.
fn current_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn measure_in_process<F: std::future::Future<Output = Result<u64>>>(sync: F) -> Result<Run> {
    let before = sys::current();
    let started = Instant::now();
    let records = sync.await?;
    let wall = started.elapsed();
    let cpu = sys::current().cpu.saturating_sub(before.cpu);
    Ok(Run {
        records,
        wall,
        cpu,
        peak_rss_kib: None,
    })
}

/// Measures `sync` in-process, with this process's peak RSS during it and that peak's growth
/// over the RSS before it (both MiB). The kernel's peak is reset first (`clear_refs` 5).
async fn measure_rss<F: std::future::Future<Output = Result<u64>>>(
    sync: F,
) -> Result<(Run, f64, f64)> {
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = current_rss_bytes();
    let run = measure_in_process(sync).await?;
    let peak = peak_rss_kib(std::process::id()).context("no VmHWM for this process")?;
    let peak_bytes = peak * 1024;
    Ok((
        run,
        peak_bytes as f64 / (1024.0 * 1024.0),
        peak_bytes.saturating_sub(before) as f64 / (1024.0 * 1024.0),
    ))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn bench_main(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(bench(options))
}

/// Records synced at each scaling point: enough pages to measure, bounded for small pages.
fn scaling_records(options: &Options, page_size: u64) -> u64 {
    (page_size * 200)
        .clamp(20_000, 200_000)
        .min(options.records)
}

async fn bench(options: Options) -> Result<()> {
    let mut report = Report::default();
    let scratch = tempfile::tempdir()?;
    let scratch = scratch.path();
    let small_records = options.records.min(20_000);
    let mut datasets = vec![(options.record_bytes, options.records)];
    if options.scaling {
        for &size in SCALING_RECORD_BYTES {
            if size != options.record_bytes {
                datasets.push((size, small_records));
            }
        }
    }
    let api = Api::start(&datasets)?;
    let url = api.items_url(options.record_bytes, options.records);

    say!(report, "# Sluice throughput benchmark");
    say!(
        report,
        "workload: {} records of {} bytes, pages of {}, offset pagination, loopback API in its own process",
        options.records,
        options.record_bytes,
        options.page_size
    );
    say!(
        report,
        "machine: {} cores; sluice-host {}; release build",
        std::thread::available_parallelism().map_or(0, usize::from),
        env!("CARGO_PKG_VERSION")
    );
    say!(
        report,
        "baseline: native Rust, reqwest + serde_json, sequential page loop, records copied as JSON lines"
    );
    say!(
        report,
        "Sluice makes each page durable (output fdatasync), then commits a sled checkpoint (log"
    );
    say!(
        report,
        "written out with sync_file_range), while the next request and the guest's parse run."
    );
    say!(
        report,
        "The baseline with the same durability fdatasyncs its output, then writes a position file"
    );
    say!(
        report,
        "the same way; it is also shown with the output fdatasync only and with nothing synced."
    );
    say!(report);

    // Component load and instantiate.
    let cache_dir = scratch.join("cache");
    let mut cold = Vec::new();
    for _ in 0..3 {
        let runtime = Runtime::with_cache_dir(None)?;
        let started = Instant::now();
        Connector::load(&runtime, "rest")?;
        cold.push(started.elapsed());
    }
    let runtime = Runtime::with_cache_dir(Some(cache_dir.clone()))?;
    let started = Instant::now();
    let connector = Connector::load(&runtime, "rest")?;
    let first_with_cache = started.elapsed();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let runtime = Runtime::with_cache_dir(Some(cache_dir.clone()))?;
        let started = Instant::now();
        Connector::load(&runtime, "rest")?;
        cached.push(started.elapsed());
    }
    let limits = Limits::default();
    let mut instantiate = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let session = connector
            .session(&runtime, &limits, sluice_host::connector::now_ms())
            .await?;
        instantiate.push(started.elapsed());
        drop(session);
    }
    say!(report, "## Component (bundled `rest`)");
    say!(
        report,
        "load, cold compile:        {:>8.1} ms (median of 3)",
        micros(median(cold)) / 1e3
    );
    say!(
        report,
        "load, first with cache:    {:>8.1} ms (compiles and writes the cache)",
        micros(first_with_cache) / 1e3
    );
    say!(
        report,
        "load, from on-disk cache:  {:>8.1} ms (median of 5)",
        micros(median(cached)) / 1e3
    );
    say!(
        report,
        "instantiate (new store):   {:>8.1} µs (median of 200)",
        micros(median(instantiate))
    );
    say!(report);

    // The main workload, in-process, alternating.
    let client = reqwest::Client::new();
    let mut native_runs = Vec::new();
    let mut output_only_runs = Vec::new();
    let mut sluice_runs = Vec::new();
    let mut nofsync_runs = Vec::new();
    let mut grouped_runs = Vec::new();
    let out = scratch.join("native.jsonl");
    let native = |durability| native_sync(&client, &url, options.page_size, &out, durability);
    for rep in 0..options.reps {
        native_runs.push(measure_in_process(native(Durability::OutputAndPosition)).await?);
        let dir = scratch.join("sluice");
        sluice_runs.push(
            measure_in_process(sluice_sync(
                &runtime,
                &connector,
                &url,
                options.page_size,
                &dir,
            ))
            .await?,
        );
        output_only_runs.push(measure_in_process(native(Durability::Output)).await?);
        if rep == 0 {
            nofsync_runs.push(measure_in_process(native(Durability::None)).await?);
            let dir = scratch.join("sluice-grouped");
            grouped_runs.push(
                measure_in_process(sluice_sync_streams(
                    &runtime,
                    &connector,
                    &url,
                    options.page_size,
                    1,
                    Some(GROUP_COMMIT_MS),
                    &dir,
                ))
                .await?,
            );
        }
    }
    for run in native_runs.iter().chain(&sluice_runs) {
        if run.records != options.records {
            bail!(
                "a sync wrote {} records, not {}",
                run.records,
                options.records
            );
        }
    }
    let native = best(&native_runs);
    let sluice = best(&sluice_runs);
    let output_only = best(&output_only_runs);
    let nofsync = best(&nofsync_runs);
    let grouped = best(&grouped_runs);
    say!(
        report,
        "## In-process, {} records (best of {})",
        options.records,
        options.reps
    );
    say!(
        report,
        "{:<44} {:>10} {:>7} {:>7} {:>13}",
        "",
        "records/s",
        "wall s",
        "CPU s",
        "Sluice/this"
    );
    for (name, run) in [
        ("Sluice (sync::run, rest connector)", sluice),
        ("native, same durability (output + position)", native),
        ("native, output fdatasync only", output_only),
        ("native, nothing synced", nofsync),
        ("Sluice, commit once a second, prefetch", grouped),
    ] {
        say!(
            report,
            "{:<44} {:>10.0} {:>7.2} {:>7.2} {:>13.2}",
            name,
            run.records_per_sec(),
            run.wall.as_secs_f64(),
            run.cpu.as_secs_f64(),
            sluice.records_per_sec() / run.records_per_sec()
        );
    }
    say!(
        report,
        "ratio Sluice committing once a second/native with nothing synced: records/s {:.2}",
        grouped.records_per_sec() / nofsync.records_per_sec()
    );
    say!(
        report,
        "ratio Sluice/native, same durability: records/s {:.2}, CPU s {:.2}",
        sluice.records_per_sec() / native.records_per_sec(),
        sluice.cpu.as_secs_f64() / native.cpu.as_secs_f64()
    );
    say!(
        report,
        "ratio Sluice/native, output fdatasync only: records/s {:.2}, CPU s {:.2}",
        sluice.records_per_sec() / output_only.records_per_sec(),
        sluice.cpu.as_secs_f64() / output_only.cpu.as_secs_f64()
    );
    say!(report);

    // The same as processes: the real CLI against the baseline binary.
    let cli_cache = scratch.join("cli-cache");
    let conn_path = scratch.join("bench.toml");
    std::fs::write(
        &conn_path,
        connection_toml(&url, options.page_size, 1, None)?,
    )?;
    let sluice_bin = env!("CARGO_BIN_EXE_sluice");
    let spec_time = |label: &str| -> Result<Duration> {
        let started = Instant::now();
        let status = Command::new(sluice_bin)
            .args(["spec", "--connector", "rest"])
            .env("SLUICE_CACHE_DIR", &cli_cache)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("`sluice spec` ({label}) failed");
        }
        Ok(started.elapsed())
    };
    let cli_cold = spec_time("cold")?;
    let cli_warm = median(vec![
        spec_time("cached")?,
        spec_time("cached")?,
        spec_time("cached")?,
    ]);
    let mut cli_runs = Vec::new();
    let mut child_native_runs = Vec::new();
    for _ in 0..options.reps {
        let out = scratch.join("native-child.jsonl");
        child_native_runs.push(measure_child(
            Command::new(std::env::current_exe()?)
                .args([
                    "--native-child".as_ref(),
                    url.as_ref(),
                    out.as_os_str(),
                    options.page_size.to_string().as_ref(),
                ])
                .stdout(Stdio::null()),
            options.records,
        )?);
        let dir = scratch.join("cli");
        let _ = std::fs::remove_dir_all(&dir);
        cli_runs.push(measure_child(
            Command::new(sluice_bin)
                .args(["--quiet", "run", "--connector", "rest", "--config"])
                .arg(&conn_path)
                .arg("--state")
                .arg(dir.join("state"))
                .arg("--output")
                .arg(dir.join("output"))
                .env("SLUICE_CACHE_DIR", &cli_cache)
                .stdout(Stdio::null()),
            options.records,
        )?);
        let written = std::fs::read(dir.join("output/items.jsonl"))?
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count() as u64;
        if written != options.records {
            bail!(
                "`sluice run` wrote {written} records, not {}",
                options.records
            );
        }
    }
    let (child_native, cli) = (best(&child_native_runs), best(&cli_runs));
    say!(
        report,
        "## As processes: `sluice run` vs the baseline binary, {} records (best of {})",
        options.records,
        options.reps
    );
    say!(
        report,
        "{:<34} {:>12} {:>9} {:>10} {:>14}",
        "",
        "records/s",
        "wall s",
        "CPU s",
        "peak RSS MiB"
    );
    for (name, run) in [("native process", child_native), ("`sluice run`", cli)] {
        say!(
            report,
            "{:<34} {:>12.0} {:>9.2} {:>10.2} {:>14.1}",
            name,
            run.records_per_sec(),
            run.wall.as_secs_f64(),
            run.cpu.as_secs_f64(),
            mib(run.peak_rss_kib.unwrap_or(0))
        );
    }
    say!(
        report,
        "ratio sluice run/native: records/s {:.2}, CPU s {:.2}, peak RSS {:.2}",
        cli.records_per_sec() / child_native.records_per_sec(),
        cli.cpu.as_secs_f64() / child_native.cpu.as_secs_f64(),
        cli.peak_rss_kib.unwrap_or(0) as f64 / child_native.peak_rss_kib.unwrap_or(1) as f64
    );
    say!(
        report,
        "`sluice spec` process: {:.1} ms cold (compiles), {:.1} ms with the on-disk cache",
        micros(cli_cold) / 1e3,
        micros(cli_warm) / 1e3
    );
    say!(report);

    // Where a page's time goes, outside the guest.
    let durable = durable_costs(scratch, options.record_bytes, options.page_size).await?;
    let per_page = |run: Run| micros(run.wall / pages(options.records, options.page_size));
    say!(report, "## Per page of {} records", options.page_size);
    say!(
        report,
        "wall per page: Sluice {:.0} µs; native {:.0} µs (output + position), {:.0} µs (output), {:.0} µs (no fdatasync)",
        per_page(sluice),
        per_page(native),
        per_page(output_only),
        per_page(nofsync)
    );
    say!(
        report,
        "alone: Sluice's sink append + fdatasync {:.0} µs; sled checkpoint commit + flush {:.0} µs",
        micros(durable.sink),
        micros(durable.checkpoint)
    );
    say!(report);

    // Guest time per page.
    say!(
        report,
        "## Guest `next-page` vs native parse + JSON lines, per page"
    );
    say!(
        report,
        "{:<10} {:>8} {:>12} {:>12} {:>12} {:>8}",
        "page",
        "records",
        "guest µs",
        "native µs",
        "overhead µs",
        "ratio"
    );
    let connection = Connection::parse(
        &connection_toml(&url, options.page_size, 1, None)?,
        &scratch.join("bench.toml"),
    )?;
    for (label, bytes, iterations) in [
        ("10 KB", 10_000, 400),
        ("100 KB", 100_000, 100),
        ("1 MB", 1_000_000, 20),
    ] {
        let page = guest_page_cost(
            &runtime,
            &connector,
            &connection,
            options.record_bytes,
            bytes,
            iterations,
        )
        .await?;
        say!(
            report,
            "{:<10} {:>8} {:>12.0} {:>12.0} {:>12.0} {:>8.2}",
            label,
            page.records,
            micros(page.guest),
            micros(page.native),
            micros(page.guest) - micros(page.native),
            page.guest.as_secs_f64() / page.native.as_secs_f64()
        );
    }
    say!(report);

    // Memory per connection.
    let memory =
        memory_per_connection(&runtime, &connector, &connection, options.record_bytes).await?;
    say!(
        report,
        "## Memory per connection ({CONNECTIONS} sessions held at once)"
    );
    say!(
        report,
        "instantiated: {:.0} KiB each; after one page of 100 records: {:.0} KiB each",
        memory.instantiated as f64 / 1024.0,
        memory.after_page as f64 / 1024.0
    );
    say!(report);

    if options.scaling {
        say!(
            report,
            "## Scaling: records/s against page size ({}-byte records, in-process)",
            options.record_bytes
        );
        say!(
            report,
            "{:>6} {:>9} {:>12} {:>12} {:>7}",
            "page",
            "records",
            "native",
            "Sluice",
            "ratio"
        );
        let mut points = Vec::new();
        for &page_size in SCALING_PAGE_SIZES {
            let count = scaling_records(&options, page_size);
            let url = api.items_url(options.record_bytes, count);
            let (native, sluice) =
                side_by_side(&client, &runtime, &connector, &url, page_size, scratch).await?;
            say!(
                report,
                "{:>6} {:>9} {:>12.0} {:>12.0} {:>7.2}",
                page_size,
                count,
                native,
                sluice,
                sluice / native
            );
            points.push((page_size, native, sluice));
        }
        say!(report);
        say!(
            report,
            "## Scaling: records/s and MB/s against record size (pages of {}, in-process)",
            options.page_size
        );
        say!(
            report,
            "{:>7} {:>9} {:>12} {:>12} {:>10} {:>10} {:>7}",
            "bytes",
            "records",
            "native",
            "Sluice",
            "native MB/s",
            "Sluice MB/s",
            "ratio"
        );
        for &size in SCALING_RECORD_BYTES {
            let count = if size == options.record_bytes {
                options.records.min(small_records)
            } else {
                small_records
            };
            let url = api.items_url(size, count);
            let (native, sluice) = side_by_side(
                &client,
                &runtime,
                &connector,
                &url,
                options.page_size,
                scratch,
            )
            .await?;
            say!(
                report,
                "{:>7} {:>9} {:>12.0} {:>12.0} {:>10.1} {:>10.1} {:>7.2}",
                size,
                count,
                native,
                sluice,
                native * size as f64 / 1e6,
                sluice * size as f64 / 1e6,
                sluice / native
            );
        }
        say!(report);
        say!(
            report,
            "## Scaling: streams of one connection (`[sync] concurrent_streams`) and concurrent connections ({}-byte records, pages of {}, in-process)",
            options.record_bytes,
            options.page_size
        );
        say!(
            report,
            "{:<22} {:>9} {:>12} {:>14} {:>18}",
            "shape",
            "records",
            "records/s",
            "peak RSS MiB",
            "RSS growth MiB"
        );
        let url = api.items_url(options.record_bytes, small_records);
        for (label, connections, streams) in [
            ("1 connection, 1 stream", 1, 1),
            ("1 connection, 2 streams", 1, 2),
            ("1 connection, 4 streams", 1, 4),
            ("2 connections", 2, 1),
            ("4 connections", 4, 1),
            ("8 connections", 8, 1),
        ] {
            let dirs: Vec<PathBuf> = (0..connections)
                .map(|i| scratch.join("scaling").join(i.to_string()))
                .collect();
            let (run, peak, growth) = measure_rss(async {
                let syncs = dirs.iter().map(|dir| {
                    sluice_sync_streams(
                        &runtime,
                        &connector,
                        &url,
                        options.page_size,
                        streams,
                        None,
                        dir,
                    )
                });
                let records = futures_util::future::try_join_all(syncs).await?;
                Ok(records.iter().sum())
            })
            .await?;
            say!(
                report,
                "{:<22} {:>9} {:>12.0} {:>14.1} {:>18.1}",
                label,
                run.records,
                run.records_per_sec(),
                peak,
                growth
            );
        }
        say!(report);
        std::fs::create_dir_all(&options.out_dir)?;
        let chart = options.out_dir.join("throughput.svg");
        draw_chart(&chart, &points, options.record_bytes)?;
        say!(report, "chart: {}", shown_path(&chart));
    }
    say!(
        report,
        "command: cargo bench -p sluice-host --bench throughput{}",
        if options.records == DEFAULT_RECORDS {
            String::new()
        } else {
            format!(" -- --records {}", options.records)
        }
    );
    std::fs::create_dir_all(&options.out_dir)?;
    std::fs::write(options.out_dir.join("latest.txt"), &report.0)?;
    drop(api);
    Ok(())
}

fn shown_path(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let full = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    full.strip_prefix(&root)
        .map_or_else(|_| full.display().to_string(), |p| p.display().to_string())
}

fn pages(records: u64, page_size: u64) -> u32 {
    u32::try_from(records / page_size + 1).unwrap_or(u32::MAX)
}

/// Best-of-two records/s of native and Sluice on `url`, alternating.
async fn side_by_side(
    client: &reqwest::Client,
    runtime: &Runtime,
    connector: &Connector,
    url: &str,
    page_size: u64,
    scratch: &Path,
) -> Result<(f64, f64)> {
    let (mut native, mut sluice) = (0f64, 0f64);
    for _ in 0..2 {
        let out = scratch.join("native.jsonl");
        let run = measure_in_process(native_sync(
            client,
            url,
            page_size,
            &out,
            Durability::OutputAndPosition,
        ))
        .await?;
        native = native.max(run.records_per_sec());
        let dir = scratch.join("sluice");
        let run = measure_in_process(sluice_sync(runtime, connector, url, page_size, &dir)).await?;
        sluice = sluice.max(run.records_per_sec());
    }
    Ok((native, sluice))
}

struct DurableCosts {
    sink: Duration,
    checkpoint: Duration,
}

/// The cost of making one page durable, and of committing one checkpoint, each alone.
async fn durable_costs(
    scratch: &Path,
    record_bytes: usize,
    page_size: u64,
) -> Result<DurableCosts> {
    let dir = scratch.join("durable");
    let _ = std::fs::remove_dir_all(&dir);
    let dataset = Dataset::render(record_bytes, page_size);
    let mut lines = Vec::new();
    native_page(&dataset.page(page_size, 0, page_size), &mut lines)?;
    let lines = String::from_utf8(lines)?;
    let rounds = 300u32;
    let mut sink = JsonlSink::open(&dir.join("out.jsonl"), 0)?;
    let started = Instant::now();
    for _ in 0..rounds {
        sink.append_durably(&lines)?;
    }
    let sink_cost = started.elapsed() / rounds;

    let store = CheckpointStore::open(&dir.join("state"))?;
    let key = StreamKey::new("bench", "items");
    let started = Instant::now();
    for round in 0..u64::from(rounds) {
        let checkpoint = Checkpoint {
            mode: SyncMode::FullRefresh,
            state: Some("{\"cursor\":null}".to_owned()),
            pending: Some(Next::Done),
            context: RunContext {
                run_id: "bench".to_owned(),
                started_at_ms: 0,
            },
            output: SinkPosition {
                offset_bytes: round * 40_000,
                records: round * page_size,
                dead_letter_bytes: 0,
            },
            committed_at_ms: round,
        };
        store.commit(&key, &checkpoint).await?;
    }
    let checkpoint = started.elapsed() / rounds;
    Ok(DurableCosts {
        sink: sink_cost,
        checkpoint,
    })
}

struct PageCost {
    records: usize,
    guest: Duration,
    native: Duration,
}

fn page_body(record_bytes: usize, bytes: usize) -> Vec<u8> {
    let count = (bytes / (record_bytes + 1)).max(1) as u64;
    Dataset::render(record_bytes, count).page(count, 0, count)
}

/// Median guest time of `next-page` on a page of about `bytes` bytes, against native parsing.
async fn guest_page_cost(
    runtime: &Runtime,
    connector: &Connector,
    connection: &Connection,
    record_bytes: usize,
    bytes: usize,
    iterations: usize,
) -> Result<PageCost> {
    let body = page_body(record_bytes, bytes);
    let mut lines = Vec::new();
    let records = native_page(&body, &mut lines)?;
    let mut native = Vec::new();
    for _ in 0..iterations {
        let started = Instant::now();
        native_page(&body, &mut lines)?;
        native.push(started.elapsed());
    }

    let limits = connection.limits.clone();
    let context = RunContext {
        run_id: "bench".to_owned(),
        started_at_ms: 0,
    };
    let mut session = connector.session(runtime, &limits, 0).await?;
    let config = connection.config_json();
    let Next::Fetch(request) = session.begin(config, "items", None, &context).await? else {
        bail!("the connector did not ask for a first page");
    };
    let mut guest = Vec::new();
    for _ in 0..iterations {
        let response = HttpResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.clone(),
            url: request.url.clone(),
        };
        let started = Instant::now();
        let page = session
            .next_page(config, "items", None, &context, &request, response)
            .await?;
        guest.push(started.elapsed());
        if page.records.len() < body.len() / 2 {
            bail!("the guest returned too little");
        }
    }
    Ok(PageCost {
        records,
        guest: median(guest),
        native: median(native),
    })
}

struct Memory {
    instantiated: u64,
    after_page: u64,
}

/// Resident memory added per session: instantiated, then after one page of 100 records.
async fn memory_per_connection(
    runtime: &Runtime,
    connector: &Connector,
    connection: &Connection,
    record_bytes: usize,
) -> Result<Memory> {
    let limits = connection.limits.clone();
    let context = RunContext {
        run_id: "bench".to_owned(),
        started_at_ms: 0,
    };
    let config = connection.config_json();
    let body = Dataset::render(record_bytes, 100).page(100, 0, 100);
    let before = current_rss_bytes();
    let mut sessions = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        sessions.push(connector.session(runtime, &limits, 0).await?);
    }
    let instantiated = current_rss_bytes().saturating_sub(before) / CONNECTIONS as u64;
    for session in &mut sessions {
        let Next::Fetch(request) = session.begin(config, "items", None, &context).await? else {
            bail!("the connector did not ask for a first page");
        };
        let response = HttpResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.clone(),
            url: request.url.clone(),
        };
        session
            .next_page(config, "items", None, &context, &request, response)
            .await?;
    }
    let after_page = current_rss_bytes().saturating_sub(before) / CONNECTIONS as u64;
    drop(sessions);
    Ok(Memory {
        instantiated,
        after_page,
    })
}

/// Records/s against page size, Sluice and native, as an SVG line chart.
fn draw_chart(path: &Path, points: &[(u64, f64, f64)], record_bytes: usize) -> Result<()> {
    use plotters::prelude::*;

    let max = points
        .iter()
        .map(|&(_, native, sluice)| native.max(sluice))
        .fold(1.0, f64::max)
        * 1.15;
    let min_page = points.first().map_or(1, |point| point.0) as f64;
    let max_page = points.last().map_or(10, |point| point.0) as f64;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("records/s against page size ({record_bytes}-byte records, loopback API)"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((min_page * 0.8..max_page * 1.25).log_scale(), 0.0..max)?;
    chart
        .configure_mesh()
        .x_desc("records per page")
        .y_desc("records/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()?;
    let series = |pick: fn(&(u64, f64, f64)) -> f64| {
        points
            .iter()
            .map(move |point| (point.0 as f64, pick(point)))
            .collect::<Vec<_>>()
    };
    let native = series(|point| point.1);
    let sluice = series(|point| point.2);
    chart
        .draw_series(LineSeries::new(native.clone(), BLUE.stroke_width(2)))?
        .label("native (reqwest + serde_json)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart.draw_series(
        native
            .iter()
            .map(|&point| Circle::new(point, 4, BLUE.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(sluice.clone(), RED.stroke_width(2)))?
        .label("Sluice (rest connector in the sandbox)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart.draw_series(
        sluice
            .iter()
            .map(|&point| Circle::new(point, 4, RED.filled())),
    )?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
