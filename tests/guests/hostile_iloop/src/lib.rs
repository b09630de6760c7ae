//! Hostile guest: spins forever in the export named by its config, `{"loop_in": "begin" |
//! "next_page" | "discover" | "spec", "url": "http://…"}`. Otherwise it is a valid connector
//! with one stream, `items`, that fetches `url` once and emits the JSON array (or object) it
//! gets.
//!
//! `spec` takes no config, so `"loop_in": "spec"` takes effect only on an instance that was
//! handed that config by an earlier call (`check`, `discover`, `begin` or `next_page`).
//! `hostile_iloop_spec` spins in `spec` unconditionally.

use std::sync::Mutex;

use serde::Deserialize;
use sluice_sdk::prelude::*;

/// The guest.
pub struct Iloop;

/// Where to spin, and what to fetch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The export that never returns.
    #[serde(default)]
    pub loop_in: Option<Export>,
    /// What `begin` fetches.
    #[serde(default)]
    pub url: Option<String>,
}

/// An export to spin in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Export {
    /// `spec` (see the crate docs).
    Spec,
    /// `discover`.
    Discover,
    /// `begin`.
    Begin,
    /// `next-page`.
    NextPage,
}

/// The `loop_in` of the last config this instance saw, for `spec`.
static LAST_LOOP_IN: Mutex<Option<Export>> = Mutex::new(None);

/// Remember `config` for a later `spec` on this instance.
fn remember(config: &Config) {
    if let Ok(mut last) = LAST_LOOP_IN.lock() {
        *last = config.loop_in;
    }
}

/// Remember `config`, then spin if it names `export`.
fn spin_if(config: &Config, export: Export) {
    remember(config);
    if config.loop_in == Some(export) {
        spin();
    }
}

/// Never return, never allocate, never call the host.
fn spin() -> ! {
    let mut turns: u64 = 0;
    loop {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
}

impl Connector for Iloop {
    type Config = Config;
    type State = Value;

    fn spec() -> Spec {
        if LAST_LOOP_IN
            .lock()
            .is_ok_and(|last| *last == Some(Export::Spec))
        {
            spin();
        }
        Spec::new(
            "hostile-iloop",
            "0.1.0",
            "Spins forever where its config says",
        )
    }

    fn check(config: &Config) -> Result<()> {
        remember(config);
        Ok(())
    }

    fn discover(config: &Config) -> Result<Catalog> {
        spin_if(config, Export::Discover);
        let catalog = Catalog::new().with_stream(StreamInfo::new("items"));
        Ok(match &config.url {
            Some(url) => catalog.with_allowed_host(sluice_sdk::url::allowed_host(url)?),
            None => catalog,
        })
    }

    fn begin(config: &Config, _: &str, _: Value, _: &RunContext) -> Result<Next> {
        spin_if(config, Export::Begin);
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| Error::invalid_config("`url` is missing"))?;
        Ok(Next::Fetch(Request::get(url)))
    }

    fn next_page(
        config: &Config,
        _: &str,
        _: Value,
        _: &RunContext,
        _: &Request,
        response: &Response,
    ) -> Result<Page<Value>> {
        spin_if(config, Export::NextPage);
        let body = response.ok()?.json_value()?;
        let page = match &body {
            Value::Array(records) => Page::new().with_records(records)?,
            _ => Page::new().with_records([&body])?,
        };
        Ok(page.with_state(json!({"pages": 1})))
    }
}

sluice_sdk::export_connector!(Iloop);
