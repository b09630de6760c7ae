//! `sluice demo`: starts the bundled demo API on 127.0.0.1, writes a connection file for the
//! bundled `rest` connector, syncs, and explains what happened. Each further run adds new
//! orders to the API first, so the second run shows an incremental sync.
//!
//! `sluice demo --serve` only starts the demo API and keeps it running until Ctrl-C or SIGTERM,
//! so that a connector of one's own (e.g. one made by `sluice new`, which reads `/v1/items` as
//! generated) has an API to sync on this machine.

mod api;

use std::path::Path;

use anyhow::{Context, Result};

use crate::checkpoint::{CheckpointStore, StreamKey};
use crate::cli::render_summary;
use crate::config::Connection;
use crate::sync::{self, RunOptions, Start};
use crate::{Connector, Runtime};

pub use api::{DEFAULT_ITEMS_LIMIT, DemoApi, ITEMS, MAX_ITEMS_LIMIT, item};

/// Orders in the demo shop on the first run.
pub const INITIAL_ORDERS: u64 = 500;
/// Orders added before each later run.
pub const NEW_ORDERS_PER_RUN: u64 = 25;
/// Port the demo API prefers, so an interrupted demo can resume against the same URLs.
pub const DEMO_PORT: u16 = 47_878;

/// Runs the demo in `dir` (created if needed), reporting each sync's progress to `progress`.
pub async fn run(dir: &Path, progress: Option<crate::progress::SharedProgress>) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the demo directory `{}`", dir.display()))?;
    let orders = next_order_count(dir)?;
    let api = DemoApi::start(orders, DEMO_PORT)
        .await
        .context("cannot start the demo API on 127.0.0.1")?;
    let connection_path = dir.join("connection.toml");
    std::fs::write(&connection_path, connection_file(&api.base_url()))
        .with_context(|| format!("cannot write `{}`", connection_path.display()))?;

    println!(
        "Demo API on {} serving {} customers, {} orders and {} events.",
        api.base_url(),
        api::CUSTOMERS,
        orders,
        api::EVENTS
    );
    println!(
        "Syncing with the bundled `rest` connector (config: {}) ...\n",
        connection_path.display()
    );

    let runtime = Runtime::new()?;
    let connector = Connector::load(&runtime, "rest")?;
    let connection = Connection::load(&connection_path)?;
    let options = RunOptions {
        state_dir: dir.join("state"),
        output_dir: dir.join("output"),
        streams: Vec::new(),
        full_refresh: false,
        progress,
        ..Default::default()
    };
    let summary = sync::run(&runtime, &connector, &connection, &options).await?;
    print!("{}", render_summary(&summary));

    let orders_stream = summary
        .streams
        .iter()
        .find(|stream| stream.name == "orders");
    let cursor = saved_cursor(&options.state_dir, &connection.name, "orders")?;
    println!();
    match orders_stream.map(|stream| stream.start) {
        Some(Start::Incremental) => println!(
            "Incremental sync: `orders` resumed from its saved cursor and fetched only the {} orders added since the last run (now at {}).",
            orders_stream.map_or(0, |stream| stream.records),
            cursor.as_deref().unwrap_or("?")
        ),
        Some(Start::Resumed) => println!(
            "Resumed: the previous demo was interrupted mid-sync; it continued from its last checkpoint without duplicating output."
        ),
        _ => println!(
            "First run: every stream was read in full. `orders` saved its cursor ({}); run `sluice demo` again and it fetches only new orders.",
            cursor.as_deref().unwrap_or("none")
        ),
    }
    println!(
        "Output: {}/<stream>.jsonl    Checkpoints: {}    Inspect them with `sluice state list --state {}`.",
        options.output_dir.display(),
        options.state_dir.display(),
        options.state_dir.display()
    );
    Ok(())
}

/// `sluice demo --serve`: serves the demo API on `port` of 127.0.0.1 (`0`: any free port;
/// `None`: [`DEMO_PORT`] if it is free, otherwise any free port) until Ctrl-C or SIGTERM.
///
/// The first line on stdout is `Demo API listening on http://127.0.0.1:PORT/v1`; the endpoints
/// follow. Signal handlers are installed before that line is printed, so a supervisor that
/// reads it can stop the API with SIGTERM at once.
pub async fn serve(port: Option<u16>) -> Result<()> {
    let mut stop = Termination::install()?;
    let api = match port {
        None => DemoApi::start(INITIAL_ORDERS, DEMO_PORT).await,
        Some(port) => DemoApi::start_on(INITIAL_ORDERS, port).await,
    }
    .with_context(|| match port {
        Some(port) if port != 0 => format!(
            "cannot serve the demo API on 127.0.0.1:{port}; pick another `--port`, or `--port 0` for any free port"
        ),
        _ => "cannot start the demo API on 127.0.0.1".to_owned(),
    })?;
    print!("{}", serve_banner(&api.base_url()));
    stop.wait().await;
    println!("Demo API stopped.");
    Ok(())
}

/// What `sluice demo --serve` prints once it listens on `base_url` (`http://127.0.0.1:PORT`).
fn serve_banner(base_url: &str) -> String {
    format!(
        "Demo API listening on {base_url}/v1\n\
         \x20 GET /v1/items?limit=&since_id=&cursor=   {items} items, {{\"data\": [...], \"next\": <cursor> | null}}: what a `sluice new` connector reads as generated\n\
         \x20 GET /v1/customers?page=&per_page=        {customers} customers, {{\"customers\": [...]}}\n\
         \x20 GET /v1/orders?limit=&offset=&since_id=  {orders} orders, {{\"data\": [...]}}\n\
         \x20 GET /v1/events?cursor=                   {events} events, {{\"events\": [...], \"next_cursor\": <cursor> | null}}\n\
         A connection file for it needs `base_url = \"{base_url}/v1\"` and, under [network], \
         `allow_private_networks = true`. Stop it with Ctrl-C.\n",
        items = ITEMS,
        customers = api::CUSTOMERS,
        orders = INITIAL_ORDERS,
        events = api::EVENTS,
    )
}

/// Ctrl-C and SIGTERM, listened for from the moment [`Termination::install`] returns.
struct Termination {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Termination {
    #[cfg(unix)]
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Self> {
        Ok(Self {})
    }

    /// Returns when either signal arrives.
    #[cfg(unix)]
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    /// Returns on Ctrl-C.
    #[cfg(not(unix))]
    async fn wait(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The number of orders the API serves this run: the initial count, plus a batch for each
/// earlier run recorded in `dir`.
fn next_order_count(dir: &Path) -> Result<u64> {
    let marker = dir.join("demo-api-orders");
    let orders = match std::fs::read_to_string(&marker) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(|previous| previous + NEW_ORDERS_PER_RUN)
            .unwrap_or(INITIAL_ORDERS),
        Err(_) => INITIAL_ORDERS,
    };
    std::fs::write(&marker, orders.to_string())
        .with_context(|| format!("cannot write `{}`", marker.display()))?;
    Ok(orders)
}

fn saved_cursor(state_dir: &Path, connection: &str, stream: &str) -> Result<Option<String>> {
    let store = CheckpointStore::open(state_dir)?;
    Ok(store
        .load(&StreamKey::new(connection, stream))?
        .and_then(|checkpoint| checkpoint.state))
}

fn connection_file(base_url: &str) -> String {
    format!(
        r#"# Written by `sluice demo`: the bundled `rest` connector against the demo API.
name = "demo"

[config]
base_url = "{base_url}"

[[config.streams]]
name = "customers"
path = "/v1/customers"
records = "/customers"
primary_key = "/id"
pagination = {{ type = "page", page_param = "page", limit_param = "per_page", page_size = 50 }}

[[config.streams]]
name = "orders"
path = "/v1/orders"
records = "/data"
primary_key = "/id"
pagination = {{ type = "offset", limit_param = "limit", offset_param = "offset", page_size = 100 }}
incremental = {{ field = "/id", param = "since_id" }}

[[config.streams]]
name = "events"
path = "/v1/events"
records = "/events"
primary_key = "/id"
pagination = {{ type = "cursor", cursor_param = "cursor", next_cursor = "/next_cursor" }}

[network]
# The demo API runs on this machine; real APIs never need this.
allow_private_networks = true
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serve_banner_starts_with_the_base_url_and_names_every_endpoint() {
        let banner = serve_banner("http://127.0.0.1:4000");
        let mut lines = banner.lines();
        assert_eq!(
            lines.next(),
            Some("Demo API listening on http://127.0.0.1:4000/v1")
        );
        for endpoint in ["/v1/items?", "/v1/customers?", "/v1/orders?", "/v1/events?"] {
            assert!(banner.contains(endpoint), "{endpoint} missing in\n{banner}");
        }
        assert!(banner.contains("250 items"), "{banner}");
        assert!(
            banner.contains(r#"base_url = "http://127.0.0.1:4000/v1""#),
            "{banner}"
        );
        assert!(banner.contains("allow_private_networks = true"), "{banner}");
    }

    #[test]
    fn demo_serve_flags_are_documented_and_checked() {
        use clap::{CommandFactory, Parser};

        use crate::cli::Cli;
        let mut cli = Cli::command();
        let demo = cli.find_subcommand_mut("demo").unwrap();
        let help = demo.render_long_help().to_string();
        for text in [
            "--serve",
            "--port <PORT>",
            "SIGTERM",
            &DEMO_PORT.to_string(),
        ] {
            assert!(help.contains(text), "no {text:?} in\n{help}");
        }
        Cli::try_parse_from(["sluice", "demo", "--serve", "--port", "0"]).unwrap();
        Cli::try_parse_from(["sluice", "demo", "--serve"]).unwrap();
        // --port only with --serve; --dir is for the sync, not the server.
        assert!(Cli::try_parse_from(["sluice", "demo", "--port", "0"]).is_err());
        assert!(Cli::try_parse_from(["sluice", "demo", "--serve", "--dir", "x"]).is_err());
        assert!(Cli::try_parse_from(["sluice", "demo", "--serve", "--port", "70000"]).is_err());
    }
}
