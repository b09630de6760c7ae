//! `sluice demo`: starts the bundled demo API on 127.0.0.1, writes a connection file for the
//! bundled `rest` connector, syncs, and explains what happened. Each further run adds new
//! orders to the API first, so the second run shows an incremental sync.

mod api;

use std::path::Path;

use anyhow::{Context, Result};

use crate::checkpoint::{CheckpointStore, StreamKey};
use crate::cli::render_summary;
use crate::config::Connection;
use crate::sync::{self, RunOptions, Start};
use crate::{Connector, Runtime};

pub use api::DemoApi;

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
