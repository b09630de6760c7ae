//! Connection files (TOML) for tests, and `rest` connector configs for the mock's endpoints.
//!
//! A [`Connection`] is built as JSON (which is what connector configs are) and rendered to
//! TOML: `[config]`, `[network]`, `[limits]`, `[auth]`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::mock::MockApi;

/// A connection file being built.
#[derive(Debug, Clone)]
pub struct Connection {
    doc: Map<String, Value>,
}

impl Connection {
    /// A connection whose `[config]` is `config` (a JSON object).
    pub fn new(config: Value) -> Self {
        assert!(config.is_object(), "connector config must be an object");
        let mut doc = Map::new();
        doc.insert("config".to_owned(), config);
        Self { doc }
    }

    fn table(&mut self, name: &str) -> &mut Map<String, Value> {
        self.doc
            .entry(name)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("sections are tables")
    }

    /// `[network] allow_private_networks = true` (needed to reach the mock on 127.0.0.1).
    pub fn allow_private_networks(mut self) -> Self {
        self.table("network")
            .insert("allow_private_networks".to_owned(), Value::Bool(true));
        self
    }

    /// `[network] allowed_hosts = [...]` (narrows the connector's declared hosts).
    pub fn allowed_hosts(mut self, hosts: &[&str]) -> Self {
        self.table("network")
            .insert("allowed_hosts".to_owned(), json!(hosts));
        self
    }

    /// `[limits] max_memory_bytes = ..`.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.table("limits")
            .insert("max_memory_bytes".to_owned(), json!(bytes));
        self
    }

    /// `[limits] guest_call_timeout_ms = ..`.
    pub fn guest_call_timeout_ms(mut self, ms: u64) -> Self {
        self.table("limits")
            .insert("guest_call_timeout_ms".to_owned(), json!(ms));
        self
    }

    /// `[auth] type = "bearer"`, `token = { env = VAR }`.
    pub fn bearer_from_env(mut self, var: &str) -> Self {
        let auth = self.table("auth");
        auth.insert("type".to_owned(), json!("bearer"));
        auth.insert("token".to_owned(), json!({ "env": var }));
        self
    }

    /// Sets `key` in section `section` to an arbitrary value.
    pub fn set(mut self, section: &str, key: &str, value: Value) -> Self {
        self.table(section).insert(key.to_owned(), value);
        self
    }

    /// Mutable access to the `[config]` table.
    pub fn config_mut(&mut self) -> &mut Map<String, Value> {
        self.table("config")
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.doc).expect("connection renders as TOML (no JSON nulls)")
    }

    /// Writes the TOML to `dir/connection.toml` and returns that path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        self.write_as(&dir.join("connection.toml"))
    }

    /// Writes the TOML to `path` and returns it.
    pub fn write_as(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.to_toml())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path.to_path_buf()
    }
}

/// The mock's pagination styles for the generic dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `/offset/items`, `limit` + `offset`, records at `/data`.
    Offset,
    /// `/page/items`, `page` + `per_page`, records at `/data`.
    Page,
    /// `/cursor/items`, `cursor` from `/next`, records at `/data`.
    Cursor,
    /// `/link/items`, `Link: rel="next"`, bare array.
    Link,
    /// `/none/items`, one bare array.
    None,
}

impl Style {
    /// Every style.
    pub const ALL: [Style; 5] = [
        Style::Offset,
        Style::Page,
        Style::Cursor,
        Style::Link,
        Style::None,
    ];

    /// The `type` value in the `rest` connector's pagination config.
    pub const fn name(self) -> &'static str {
        match self {
            Style::Offset => "offset",
            Style::Page => "page",
            Style::Cursor => "cursor",
            Style::Link => "link",
            Style::None => "none",
        }
    }

    /// Path of the mock endpoint.
    pub fn path(self) -> String {
        format!("/{}/items", self.name())
    }

    /// JSON pointer to the records in a response body.
    pub const fn records_pointer(self) -> &'static str {
        match self {
            Style::Offset | Style::Page | Style::Cursor => "/data",
            Style::Link | Style::None => "",
        }
    }

    /// The `rest` connector's `pagination` table for this endpoint. Cursor and `Link` pagination
    /// take no page size; [`Style::params`] sets it as a static query parameter instead.
    pub fn pagination(self, page_size: u64) -> Value {
        match self {
            Style::Offset => json!({
                "type": "offset",
                "limit_param": "limit",
                "offset_param": "offset",
                "page_size": page_size,
            }),
            Style::Page => json!({
                "type": "page",
                "page_param": "page",
                "limit_param": "per_page",
                "page_size": page_size,
            }),
            Style::Cursor => json!({
                "type": "cursor",
                "cursor_param": "cursor",
                "next_cursor": "/next",
            }),
            Style::Link => json!({ "type": "link" }),
            Style::None => json!({ "type": "none" }),
        }
    }

    /// Static query parameters the stream needs for pages of `page_size`.
    pub fn params(self, page_size: u64) -> Value {
        match self {
            Style::Cursor => json!({ "limit": page_size }),
            Style::Link => json!({ "per_page": page_size }),
            Style::Offset | Style::Page | Style::None => json!({}),
        }
    }

    /// Requests a complete sync of `records` records needs with pages of `page_size`: one per
    /// page, and for the styles that stop only on a short page, one more (empty) request when
    /// the last page is exactly full.
    pub fn expected_requests(self, records: u64, page_size: u64) -> u64 {
        match self {
            Style::None => 1,
            Style::Cursor | Style::Link => records.div_ceil(page_size).max(1),
            Style::Offset | Style::Page => records / page_size + 1,
        }
    }
}

/// A `rest` stream named `name` reading the mock's `style` endpoint with pages of `page_size`.
pub fn rest_stream(name: &str, style: Style, page_size: u64) -> Value {
    json!({
        "name": name,
        "path": style.path(),
        "records": style.records_pointer(),
        "params": style.params(page_size),
        "primary_key": "/id",
        "pagination": style.pagination(page_size),
    })
}

/// Adds `incremental = { field, param }` to a stream built by [`rest_stream`].
pub fn incremental(mut stream: Value, field: &str, param: &str) -> Value {
    stream["incremental"] = json!({ "field": field, "param": param });
    stream
}

/// A `rest` connection to `mock` with `streams`, loopback allowed.
pub fn rest_connection(mock: &MockApi, streams: Vec<Value>) -> Connection {
    Connection::new(json!({ "base_url": mock.base_url(), "streams": streams }))
        .allow_private_networks()
}
