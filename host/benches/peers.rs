//! Sluice against the Python ingestion tools, on the same work, measured side by side in one run.
//!
//! ```sh
//! cargo bench -p sluice-host --bench peers                      # 500,000 records
//! cargo bench -p sluice-host --bench peers -- --records 50000   # a quicker run
//! ```
//!
//! The loopback API of the `throughput` bench (this binary again, as a child process with
//! `--serve`) serves `--records` records of about 400 bytes in `{"data": [...]}` pages of 100,
//! with `limit`/`offset` pagination. Each of these then reads all of them, as a child process
//! whose wall time, CPU seconds (`wait4`) and peak RSS are measured:
//!
//! - `sluice run` with the bundled `rest` connector, making every page durable (the default),
//!   and again committing once a second (`[checkpoint] every_ms = 1000`) with `[sync] prefetch`;
//! - a hand-written Python loop with `requests` (`peers/requests_loop.py`);
//! - Airbyte's declarative (low-code) CDK: a manifest (`peers/airbyte_manifest.yaml`) run
//!   through the CDK's own `read` entry point (`peers/airbyte_source.py`);
//! - dlt's `rest_api` source and a full `pipeline.run` into the `filesystem` destination as
//!   JSON lines (`peers/dlt_pipeline.py`);
//! - a Singer SDK tap with one `RESTStream` (`peers/singer_tap.py`).
//!
//! Each Python tool gets a venv of its own under `$CARGO_TARGET_TMPDIR/peers-venv/<tool>`,
//! installed once from `peers/requirements-<tool>.txt` (exact pins). Without `python3`, only
//! Sluice is measured. Every tool's output is read back and must hold each record id from 1 to
//! `--records` exactly once, or the bench fails: a tool that stopped early would fake a speed.
//! The table is printed and written to `<out>/peers.txt` (default `<out>` =
//! `host/benches/results`).
//!
//! Not part of `cargo test`: it asserts nothing about time.

#[path = "common/api.rs"]
mod api;
#[allow(
    dead_code,
    reason = "getrusage and sync_file_range serve the throughput bench; this one measures children"
)]
#[path = "common/measure.rs"]
mod measure;
#[path = "common/report.rs"]
mod report;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use api::{Api, connection_toml, serve_main};
use measure::{Run, best, measure_child};
use report::{Report, say};

/// The issue's workload: 500,000 records of about 400 bytes in pages of 100.
const DEFAULT_RECORDS: u64 = 500_000;
const PAGE_SIZE: u64 = 100;
const RECORD_BYTES: usize = 400;
/// Runs of each Python tool; the best is reported. One by default: they take minutes.
const DEFAULT_REPS: u32 = 1;
/// Runs of each `sluice run` row; the best is reported.
const DEFAULT_SLUICE_REPS: u32 = 3;
/// The commit interval of the group-commit row (`[checkpoint] every_ms`).
const GROUP_COMMIT_MS: u64 = 1000;
/// Lines of a failed tool's stderr shown in the error.
const STDERR_TAIL_LINES: usize = 40;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--serve") => serve_main(&args[1..]),
        _ => bench(Options::parse(&args)?),
    }
}

/// Command-line options of the benchmark.
struct Options {
    records: u64,
    reps: u32,
    sluice_reps: u32,
    tools: Vec<Tool>,
    out_dir: PathBuf,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options = Options {
            records: DEFAULT_RECORDS,
            reps: DEFAULT_REPS,
            sluice_reps: DEFAULT_SLUICE_REPS,
            tools: Tool::ALL.to_vec(),
            out_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results"),
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
                "--reps" => options.reps = value()?.parse::<u32>()?.max(1),
                "--sluice-reps" => options.sluice_reps = value()?.parse::<u32>()?.max(1),
                "--tools" => options.tools = Tool::parse_list(&value()?)?,
                "--out" => options.out_dir = PathBuf::from(value()?),
                "--help" | "-h" => {
                    println!(
                        "peers [--records N] [--reps N] [--sluice-reps N] [--tools requests,airbyte,dlt,singer|none] [--out DIR]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument `{other}`; try --help"),
            }
        }
        if options.records == 0 {
            bail!("--records must be positive");
        }
        Ok(options)
    }

    /// The command that repeats this run.
    fn command(&self) -> String {
        let mut args = Vec::new();
        if self.records != DEFAULT_RECORDS {
            args.push(format!("--records {}", self.records));
        }
        if self.reps != DEFAULT_REPS {
            args.push(format!("--reps {}", self.reps));
        }
        if self.sluice_reps != DEFAULT_SLUICE_REPS {
            args.push(format!("--sluice-reps {}", self.sluice_reps));
        }
        if self.tools != Tool::ALL {
            let names: Vec<&str> = self.tools.iter().map(|tool| tool.name()).collect();
            args.push(format!(
                "--tools {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(",")
                }
            ));
        }
        let mut command = "cargo bench -p sluice-host --bench peers".to_owned();
        if !args.is_empty() {
            command += " -- ";
            command += &args.join(" ");
        }
        command
    }
}

// ---------------------------------------------------------------------------------------------
// The Python tools
// ---------------------------------------------------------------------------------------------

/// A Python tool measured against Sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Requests,
    Airbyte,
    Dlt,
    Singer,
}

impl Tool {
    const ALL: [Tool; 4] = [Tool::Requests, Tool::Airbyte, Tool::Dlt, Tool::Singer];

    /// The name of its venv and requirements file, and in `--tools`.
    fn name(self) -> &'static str {
        match self {
            Tool::Requests => "requests",
            Tool::Airbyte => "airbyte",
            Tool::Dlt => "dlt",
            Tool::Singer => "singer",
        }
    }

    /// Its row in the table.
    fn label(self) -> &'static str {
        match self {
            Tool::Requests => "Python requests loop",
            Tool::Airbyte => "Airbyte declarative CDK",
            Tool::Dlt => "dlt rest_api -> filesystem",
            Tool::Singer => "Singer SDK tap",
        }
    }

    /// The distribution whose version the report names.
    fn package(self) -> &'static str {
        match self {
            Tool::Requests => "requests",
            Tool::Airbyte => "airbyte-cdk",
            Tool::Dlt => "dlt",
            Tool::Singer => "singer-sdk",
        }
    }

    fn parse_list(list: &str) -> Result<Vec<Tool>> {
        if list == "none" {
            return Ok(Vec::new());
        }
        list.split(',')
            .map(|name| {
                Tool::ALL
                    .into_iter()
                    .find(|tool| tool.name() == name.trim())
                    .with_context(|| {
                        format!("unknown tool `{name}`; expected requests, airbyte, dlt or singer")
                    })
            })
            .collect()
    }
}

/// The directory of the Python scripts and requirements files.
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers")
}

/// `python3 --version`, or `None` when there is no `python3`.
fn system_python() -> Option<String> {
    let output = Command::new("python3").arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The venv of `tool`, created and installed from its requirements file unless a previous run
/// did so from the same file (the marker holds the file's text). Returns its `python`.
fn ensure_venv(tool: Tool) -> Result<PathBuf> {
    let requirements = peers_dir().join(format!("requirements-{}.txt", tool.name()));
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("peers-venv")
        .join(tool.name());
    let python = venv.join("bin/python");
    let marker = venv.join(".sluice-installed");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    println!(
        "installing {} into {} (once) ...",
        requirements.display(),
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    run_setup(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run_setup(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
    )?;
    std::fs::write(&marker, wanted)?;
    Ok(python)
}

/// Runs a setup command; on failure, stops with everything it printed.
fn run_setup(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("starting {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The installed version of `tool`'s package, as its venv's Python reports it.
fn installed_version(python: &Path, tool: Tool) -> Result<String> {
    let output = Command::new(python)
        .arg("-c")
        .arg(format!(
            "import importlib.metadata as m; print(m.version({:?}))",
            tool.package()
        ))
        .output()?;
    if !output.status.success() {
        bail!("no version of `{}` in {}", tool.package(), python.display());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

// ---------------------------------------------------------------------------------------------
// One measured run of each tool
// ---------------------------------------------------------------------------------------------

/// What one run reads from the API.
struct Work<'a> {
    records: u64,
    /// `http://127.0.0.1:PORT`
    base_url: &'a str,
    /// `/400/N/items`
    path: &'a str,
    scratch: &'a Path,
}

impl Work<'_> {
    fn url(&self) -> String {
        format!("{}{}", self.base_url, self.path)
    }
}

/// The variables a measured child keeps from this process's environment; it gets no other.
/// The environment this bench runs in (cargo's, and whatever the shell had) would otherwise
/// change what is measured: `PYTHONUNBUFFERED` makes Python write every line with a system
/// call of its own, and `requests` scans the whole environment for proxies on every request.
const KEPT_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

/// Runs `command` as a measured child, in an environment of [`KEPT_ENV`] and what `command`
/// sets, its stdout into `stdout` (or nowhere) and its stderr into `<dir>/stderr.log`, whose
/// tail a failure shows.
fn measure(command: &mut Command, dir: &Path, stdout: Option<&Path>) -> Result<Run> {
    flush_page_cache()?;
    let stderr_path = dir.join("stderr.log");
    let set: Vec<(std::ffi::OsString, std::ffi::OsString)> = command
        .get_envs()
        .filter_map(|(key, value)| Some((key.to_owned(), value?.to_owned())))
        .collect();
    command.env_clear();
    for name in KEPT_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(set);
    command
        .stdin(Stdio::null())
        .stdout(match stdout {
            Some(path) => Stdio::from(File::create(path)?),
            None => Stdio::null(),
        })
        .stderr(Stdio::from(File::create(&stderr_path)?));
    measure_child(command, 0).with_context(|| {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        format!(
            "its stderr ended with:\n{}",
            lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
        )
    })
}

/// Writes earlier runs' unsynced output back now, not during the next run (`sync`; skipped
/// where there is no such command).
fn flush_page_cache() -> Result<()> {
    match Command::new("sync").status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("`sync` failed ({status})"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// A fresh directory for one run.
fn fresh_dir(work: &Work<'_>, name: &str) -> Result<PathBuf> {
    let dir = work.scratch.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `sluice run` of the `rest` connection in `config`.
fn run_sluice(work: &Work<'_>, config: &Path, cache: &Path, name: &str) -> Result<Run> {
    let dir = fresh_dir(work, name)?;
    let mut run = measure(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--quiet", "run", "--connector", "rest", "--config"])
            .arg(config)
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--output")
            .arg(dir.join("output"))
            .env("SLUICE_CACHE_DIR", cache),
        &dir,
        None,
    )?;
    run.records = check_ids(
        "`sluice run`",
        work.records,
        ids_in_lines(&dir.join("output/items.jsonl"), plain_id)?,
    )?;
    std::fs::remove_dir_all(&dir)?;
    Ok(run)
}

fn run_tool(tool: Tool, python: &Path, work: &Work<'_>) -> Result<Run> {
    let dir = fresh_dir(work, tool.name())?;
    let scripts = peers_dir();
    let page_size = PAGE_SIZE.to_string();
    let mut command = Command::new(python);
    let out = dir.join("out.jsonl");
    let (mut run, ids) = match tool {
        Tool::Requests => {
            command
                .arg(scripts.join("requests_loop.py"))
                .arg(work.url())
                .arg(&page_size)
                .arg(&out);
            let run = measure(&mut command, &dir, None)?;
            (run, ids_in_lines(&out, plain_id)?)
        }
        Tool::Airbyte => {
            let config = dir.join("config.json");
            std::fs::write(&config, tool_config(work)?)?;
            let catalog = dir.join("catalog.json");
            std::fs::write(
                &catalog,
                serde_json::json!({ "streams": [{
                    "stream": {
                        "name": "items",
                        "json_schema": { "type": "object" },
                        "supported_sync_modes": ["full_refresh"],
                    },
                    "sync_mode": "full_refresh",
                    "destination_sync_mode": "overwrite",
                }]})
                .to_string(),
            )?;
            command
                .arg(scripts.join("airbyte_source.py"))
                .arg("read")
                .arg("--config")
                .arg(&config)
                .arg("--catalog")
                .arg(&catalog);
            let run = measure(&mut command, &dir, Some(&out))?;
            (run, ids_in_lines(&out, airbyte_record_id)?)
        }
        Tool::Dlt => {
            command
                .arg(scripts.join("dlt_pipeline.py"))
                .arg(work.base_url)
                .arg(work.path)
                .arg(&page_size)
                .arg(&dir)
                // No usage report to dlt's servers (unreachable here anyway).
                .env("RUNTIME__DLTHUB_TELEMETRY", "false");
            let run = measure(&mut command, &dir, None)?;
            (run, dlt_ids(&dir.join("data/peers/items"))?)
        }
        Tool::Singer => {
            let config = dir.join("config.json");
            std::fs::write(&config, tool_config(work)?)?;
            command
                .arg(scripts.join("singer_tap.py"))
                .arg("--config")
                .arg(&config);
            let run = measure(&mut command, &dir, Some(&out))?;
            (run, ids_in_lines(&out, singer_record_id)?)
        }
    };
    run.records = check_ids(tool.label(), work.records, ids)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(run)
}

/// The config of the Airbyte source and the Singer tap.
fn tool_config(work: &Work<'_>) -> Result<String> {
    Ok(serde_json::to_string(&serde_json::json!({
        "base_url": work.base_url,
        "path": work.path,
        "page_size": PAGE_SIZE,
    }))?)
}

// ---------------------------------------------------------------------------------------------
// Reading the outputs back
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Id {
    id: u64,
}

/// A record as a JSON line: `{"id": ..., ...}`.
fn plain_id(line: &str) -> Result<Option<u64>> {
    Ok(Some(serde_json::from_str::<Id>(line)?.id))
}

/// An Airbyte protocol message: `{"type": "RECORD", "record": {"data": {"id": ...}}}` or another
/// type (LOG, TRACE, STATE).
fn airbyte_record_id(line: &str) -> Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Message {
        #[serde(rename = "type")]
        kind: String,
        record: Option<Record>,
    }
    #[derive(Deserialize)]
    struct Record {
        data: Id,
    }
    let message: Message = serde_json::from_str(line)?;
    match (message.kind.as_str(), message.record) {
        ("RECORD", Some(record)) => Ok(Some(record.data.id)),
        ("RECORD", None) => bail!("a RECORD message without a record"),
        _ => Ok(None),
    }
}

/// A Singer message: `{"type": "RECORD", "record": {"id": ...}}` or another type (SCHEMA, STATE).
fn singer_record_id(line: &str) -> Result<Option<u64>> {
    #[derive(Deserialize)]
    struct Message {
        #[serde(rename = "type")]
        kind: String,
        record: Option<Id>,
    }
    let message: Message = serde_json::from_str(line)?;
    match (message.kind.as_str(), message.record) {
        ("RECORD", Some(record)) => Ok(Some(record.id)),
        ("RECORD", None) => bail!("a RECORD message without a record"),
        _ => Ok(None),
    }
}

/// The record ids in the lines of `path`, as `id` reads them from each line.
fn ids_in_lines(path: &Path, id: fn(&str) -> Result<Option<u64>>) -> Result<Vec<u64>> {
    let file = File::open(path).with_context(|| format!("no output at {}", path.display()))?;
    ids_in_reader(BufReader::new(file), id).with_context(|| format!("reading {}", path.display()))
}

fn ids_in_reader(reader: impl BufRead, id: fn(&str) -> Result<Option<u64>>) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        if let Some(id) = id(&line).with_context(|| format!("line {}", index + 1))? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The ids in the `items` table's files of dlt's `filesystem` destination (JSON lines,
/// gzip-compressed by default).
fn dlt_ids(table_dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    let entries = std::fs::read_dir(table_dir)
        .with_context(|| format!("no dlt table at {}", table_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.to_string_lossy();
        let file = File::open(&path)?;
        let reader: Box<dyn Read> = if name.ends_with(".jsonl.gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else if name.ends_with(".jsonl") {
            Box::new(file)
        } else {
            bail!("unexpected file {} in dlt's table", path.display());
        };
        ids.extend(
            ids_in_reader(BufReader::new(reader), plain_id)
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok(ids)
}

/// Checks that `ids` holds each id from 1 to `records` exactly once; returns their number.
fn check_ids(who: &str, records: u64, ids: Vec<u64>) -> Result<u64> {
    if ids.len() as u64 != records {
        bail!(
            "{who} wrote {} records, not {records}: its speed would be fake",
            ids.len()
        );
    }
    let mut seen = vec![false; records as usize];
    for id in ids {
        match id
            .checked_sub(1)
            .and_then(|index| seen.get_mut(index as usize))
        {
            Some(slot) if !*slot => *slot = true,
            Some(_) => bail!("{who} wrote record {id} twice"),
            None => bail!("{who} wrote record {id}, which the API does not serve"),
        }
    }
    Ok(records)
}

// ---------------------------------------------------------------------------------------------
// The bench
// ---------------------------------------------------------------------------------------------

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): whether something else ran beside
/// the bench on this machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            fields.join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn bench(options: Options) -> Result<()> {
    let mut report = Report::default();
    let scratch = tempfile::tempdir()?;
    let scratch = scratch.path();

    // The Python tools' venvs, before anything is measured.
    let python_version = system_python();
    let mut tools = Vec::new();
    match &python_version {
        Some(_) => {
            for &tool in &options.tools {
                let python = ensure_venv(tool)?;
                let version = installed_version(&python, tool)?;
                tools.push((tool, python, version));
            }
        }
        None => println!("notice: no `python3` on PATH: measuring Sluice only"),
    }

    let api = Api::start(&[(RECORD_BYTES, options.records)])?;
    let url = url::Url::parse(&api.items_url(RECORD_BYTES, options.records))?;
    let base_url = url.origin().ascii_serialization();
    let work = Work {
        records: options.records,
        base_url: &base_url,
        path: url.path(),
        scratch,
    };

    // Sluice's two connections, and its component cache filled as a user's would be.
    let durable_config = scratch.join("durable.toml");
    std::fs::write(
        &durable_config,
        connection_toml(url.as_str(), PAGE_SIZE, 1, None)?,
    )?;
    let grouped_config = scratch.join("grouped.toml");
    std::fs::write(
        &grouped_config,
        connection_toml(url.as_str(), PAGE_SIZE, 1, Some(GROUP_COMMIT_MS))?,
    )?;
    let cache = scratch.join("cache");
    run_setup(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["spec", "--connector", "rest"])
            .env("SLUICE_CACHE_DIR", &cache),
    )?;

    say!(report, "# Sluice against Python ingestion tools");
    say!(
        report,
        "workload: {} records of {} bytes, pages of {}, offset pagination, loopback API in its own process",
        options.records,
        RECORD_BYTES,
        PAGE_SIZE
    );
    say!(
        report,
        "machine: {} cores; sluice-host {} (release build); {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        env!("CARGO_PKG_VERSION"),
        python_version.as_deref().unwrap_or("no python3")
    );
    if !tools.is_empty() {
        let versions: Vec<String> = tools
            .iter()
            .map(|(tool, _, version)| format!("{} {version}", tool.package()))
            .collect();
        say!(report, "tools: {}", versions.join(", "));
    }
    say!(
        report,
        "Each tool is a child process: wall time, CPU s (user + system, wait4), peak RSS (VmHWM)."
    );
    say!(
        report,
        "Sluice's first row fdatasyncs its output and commits a checkpoint every page (its default);"
    );
    say!(
        report,
        "the second commits once a second and prefetches. The Python tools sync nothing. Every output is read back:"
    );
    say!(
        report,
        "each record id 1..{} exactly once. `sync` runs (untimed) before each run. Each runs with",
        options.records
    );
    say!(
        report,
        "only {} of this environment; Python with its defaults (buffered stdout, .pyc files).",
        KEPT_ENV.join(", ")
    );
    say!(report);

    let load_before = load_average();
    let rows = [
        "`sluice run`, every page durable",
        "`sluice run`, once a second + prefetch",
    ];
    let mut durable_runs = Vec::new();
    let mut grouped_runs = Vec::new();
    let mut tool_runs: Vec<Vec<Run>> = vec![Vec::new(); tools.len()];
    for rep in 0..options.sluice_reps.max(options.reps) {
        if rep < options.sluice_reps {
            println!("{} (run {}) ...", rows[0], rep + 1);
            durable_runs.push(run_sluice(&work, &durable_config, &cache, "sluice")?);
            println!("{} (run {}) ...", rows[1], rep + 1);
            grouped_runs.push(run_sluice(
                &work,
                &grouped_config,
                &cache,
                "sluice-grouped",
            )?);
        }
        if rep < options.reps {
            for ((tool, python, _), runs) in tools.iter().zip(&mut tool_runs) {
                println!("{} (run {}) ...", tool.label(), rep + 1);
                let run = run_tool(*tool, python, &work)
                    .with_context(|| format!("{} failed", tool.label()))?;
                println!(
                    "  {:.0} records/s, {:.1} s",
                    run.records_per_sec(),
                    run.wall.as_secs_f64()
                );
                runs.push(run);
            }
        }
    }
    drop(api);
    let load_after = load_average();

    let durable = best(&durable_runs);
    let grouped = best(&grouped_runs);
    say!(
        report,
        "## {} records; best of {} for Sluice, of {} for each Python tool",
        options.records,
        options.sluice_reps,
        options.reps
    );
    say!(
        report,
        "{:<40} {:>10} {:>8} {:>7} {:>9}   {}",
        "",
        "records/s",
        "wall s",
        "CPU s",
        "peak RSS",
        "Sluice is N× faster (every page durable / once a second)"
    );
    let row = |report: &mut Report, name: &str, run: Run, ratios: bool| {
        let ratio = if ratios {
            format!(
                "{:.1}× / {:.1}×",
                durable.records_per_sec() / run.records_per_sec(),
                grouped.records_per_sec() / run.records_per_sec()
            )
        } else {
            String::new()
        };
        say!(
            report,
            "{:<40} {:>10.0} {:>8.2} {:>7.2} {:>5.0} MiB   {}",
            name,
            run.records_per_sec(),
            run.wall.as_secs_f64(),
            run.cpu.as_secs_f64(),
            run.peak_rss_kib.unwrap_or(0) as f64 / 1024.0,
            ratio
        );
    };
    row(&mut report, rows[0], durable, false);
    row(&mut report, rows[1], grouped, false);
    for ((tool, _, _), runs) in tools.iter().zip(&tool_runs) {
        row(&mut report, tool.label(), best(runs), true);
    }
    say!(report);
    say!(
        report,
        "load average (1, 5, 15 min) before the runs: {load_before}; after: {load_after}"
    );
    say!(report, "command: {}", options.command());
    std::fs::create_dir_all(&options.out_dir)?;
    let out = options.out_dir.join("peers.txt");
    std::fs::write(&out, &report.0)?;
    println!("written to {}", out.display());
    Ok(())
}
