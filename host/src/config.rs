//! The operator's connection file (TOML): the connector's own config under `[config]`, and the
//! operator's settings in their own tables (`[network]`, `[limits]`, `[http]`, `[auth]`).
//!
//! Raw serde structs reject unknown keys; [`Connection`] holds the validated result. This
//! module reads files and nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::http::{HttpSettings, NetworkConfig, TlsConfig};
use crate::protocol::AuthScheme;
use crate::sandbox::Limits;
use crate::secrets::{AuthConfig, scheme_name};

/// Errors in a connection file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read connection file `{}`: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (part of the message, so not also a `source`).
        error: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("connection file `{}` is invalid: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        detail: String,
    },
    /// The `[config]` table does not match the connector's JSON schema.
    #[error(
        "[config] in `{}` is invalid for connector `{connector}`:\n  {}\nfix these fields (see `sluice spec --connector {connector}` for the schema)",
        path.display(),
        problems.join("\n  ")
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// The connector.
        connector: String,
        /// One line per problem, each naming the JSON path of the field.
        problems: Vec<String>,
    },
    /// The `[auth]` table configures a scheme the connector does not support.
    #[error(
        "[auth] in `{}` has `type = \"{configured}\"`, which connector `{connector}` does not \
         support; use one of: {}",
        path.display(),
        if supported.is_empty() { "none (remove the [auth] table: the connector sends no credential)".to_owned() } else { supported.join(", ") }
    )]
    UnsupportedAuth {
        /// The file.
        path: PathBuf,
        /// The connector.
        connector: String,
        /// The configured `type`.
        configured: &'static str,
        /// The `type` values the connector supports.
        supported: Vec<&'static str>,
    },
    /// The connector's own schema is not a valid JSON Schema.
    #[error("connector `{connector}` declares an invalid config schema: {detail}")]
    BadSchema {
        /// The connector.
        connector: String,
        /// The compiler's message.
        detail: String,
    },
}

/// The connection file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    /// Name of the connection: namespaces its checkpoints. Defaults to the file's stem.
    name: Option<String>,
    /// The connector's own config, passed to it as JSON.
    #[serde(default)]
    config: toml::Table,
    /// Egress settings.
    network: Option<NetworkConfig>,
    /// Sandbox limits.
    #[serde(default)]
    limits: Limits,
    /// HTTP transport settings.
    #[serde(default)]
    http: HttpSettings,
    /// The credential the host applies to the connector's requests.
    auth: Option<AuthConfig>,
    /// Client certificate and extra trusted CAs.
    tls: Option<TlsConfig>,
    /// Per-stream settings, by stream name.
    #[serde(default)]
    streams: BTreeMap<String, StreamSettings>,
    /// How often progress is committed.
    #[serde(default)]
    checkpoint: CheckpointSettings,
    /// How the streams of a run are scheduled.
    #[serde(default)]
    sync: SyncSettings,
}

/// How the streams of one run are scheduled: `[sync]` in the connection file.
///
/// ```toml
/// [sync]
/// concurrent_streams = 4   # sync up to 4 streams at once (default 1: one after the other)
/// prefetch = true          # send the guessed next page's request while the connector parses
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Streams synced at once. Their requests share the connection's rate limits; each has
    /// its own guest instance, output file and checkpoint.
    pub concurrent_streams: u32,
    /// Whether to send a guessed next request while the guest parses a page: for offset and
    /// page-number pagination (`GET`s that differ in one rising number), the request one step
    /// on. Its response is used only if the connector asks for exactly that request; otherwise
    /// it is dropped, so it costs one extra request at the end of each such stream (and counts
    /// against the rate limits). Off by default.
    pub prefetch: bool,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            concurrent_streams: 1,
            prefetch: false,
        }
    }
}

/// How often a stream's progress is committed (output made durable, then the checkpoint
/// written): `[checkpoint]` in the connection file.
///
/// Exactness does not depend on it: whatever lies past the last checkpoint is cut off on the
/// next start and fetched again. Committing less often saves an fsync per page on small, fast
/// pages at the price of re-fetching more after a crash.
///
/// ```toml
/// [checkpoint]
/// every_pages = 50     # commit after at most 50 pages ...
/// every_ms = 1000      # ... or once a second has passed since the last commit
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointSettings {
    /// Commit after at most this many pages (default 1: every page).
    pub every_pages: u64,
    /// Also commit once this many milliseconds have passed since the last commit, even while
    /// waiting for the next page (default 0: no time trigger).
    pub every_ms: u64,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            every_pages: 1,
            every_ms: 0,
        }
    }
}

/// How the operator wants one stream synced: `[streams.<name>]` in the connection file.
///
/// ```toml
/// [streams.orders]
/// sync_mode = "incremental_dedup"   # full_refresh | incremental | incremental_dedup
/// schema_policy = "dead_letter"     # warn (default) | dead_letter | fail
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// The sync mode; by default incremental when the stream supports it, else full refresh.
    pub sync_mode: Option<StreamMode>,
    /// What happens to a record that does not match the stream's schema.
    #[serde(default)]
    pub schema_policy: SchemaPolicy,
}

/// The sync modes an operator can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// Read everything every time; the output is replaced by each complete read. An interrupted
    /// read resumes mid-pagination.
    FullRefresh,
    /// Read only what is new since the saved cursor and append it.
    Incremental,
    /// Like `incremental`, and keep one record per primary key in the output: the latest.
    IncrementalDedup,
}

/// What the host does with a record that does not conform to its stream's schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaPolicy {
    /// Keep it and report the drift (log and run summary).
    #[default]
    Warn,
    /// Write it to `<stream>.dead_letter.jsonl` with the reason instead of the output.
    DeadLetter,
    /// Fail the stream; the last checkpoint is kept.
    Fail,
}

/// A validated connection file.
#[derive(Debug)]
pub struct Connection {
    /// Connection name (namespaces checkpoints).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// The connector's config as JSON.
    pub connector_config: serde_json::Value,
    config_json: String,
    /// Egress settings.
    pub network: NetworkConfig,
    /// Sandbox limits.
    pub limits: Limits,
    /// HTTP transport settings.
    pub http: HttpSettings,
    /// Credential configuration (secrets are resolved when a sync starts).
    pub auth: Option<AuthConfig>,
    /// `[tls]`: client certificate and extra trusted CAs (files are read when a sync starts).
    pub tls: TlsConfig,
    /// `[streams.<name>]`: per-stream sync mode and schema policy.
    pub streams: BTreeMap<String, StreamSettings>,
    /// `[checkpoint]`: how often progress is committed.
    pub checkpoint: CheckpointSettings,
    /// `[sync]`: how the streams of a run are scheduled.
    pub sync: SyncSettings,
}

impl Connection {
    /// Reads and parses the connection file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses a connection file's text; `path` names it in errors and gives the default name.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let raw: RawConnection = toml::from_str(text).map_err(|error| Error::Parse {
            path: path.to_owned(),
            detail: error.to_string().trim_end().to_owned(),
        })?;
        let name = match raw.name {
            Some(name) => name,
            None => path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "default".to_owned()),
        };
        if name.is_empty() || name.contains('/') {
            return Err(Error::Parse {
                path: path.to_owned(),
                detail: format!("`name = {name:?}` must be non-empty and contain no `/`"),
            });
        }
        let connector_config = serde_json::to_value(&raw.config).map_err(|error| Error::Parse {
            path: path.to_owned(),
            detail: format!("[config] cannot be expressed as JSON: {error}"),
        })?;
        let config_json = connector_config.to_string();
        if raw.sync.concurrent_streams == 0 {
            return Err(Error::Parse {
                path: path.to_owned(),
                detail: "[sync] concurrent_streams = 0: it must be at least 1 (1 syncs the streams one after the other)"
                    .to_owned(),
            });
        }
        if raw.checkpoint.every_pages == 0 {
            return Err(Error::Parse {
                path: path.to_owned(),
                detail:
                    "[checkpoint] every_pages = 0: it must be at least 1 (1 commits every page)"
                        .to_owned(),
            });
        }
        Ok(Self {
            name,
            path: path.to_owned(),
            connector_config,
            config_json,
            network: raw.network.unwrap_or_default(),
            limits: raw.limits,
            http: raw.http,
            auth: raw.auth,
            tls: raw.tls.unwrap_or_default(),
            streams: raw.streams,
            checkpoint: raw.checkpoint,
            sync: raw.sync,
        })
    }

    /// The operator's settings for `stream` (defaults when it has no `[streams.<name>]`).
    pub fn stream_settings(&self, stream: &str) -> StreamSettings {
        self.streams.get(stream).cloned().unwrap_or_default()
    }

    /// The connector's config as JSON text, as the guest receives it.
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// Checks that the `[auth]` scheme is one the connector lists in its spec. A connection
    /// without `[auth]` for a connector that lists schemes is allowed (some APIs have public
    /// endpoints) but logs a warning.
    pub fn check_auth_scheme(
        &self,
        connector: &str,
        supported: &[AuthScheme],
    ) -> Result<(), Error> {
        let names = || {
            supported
                .iter()
                .map(|s| scheme_name(*s))
                .collect::<Vec<_>>()
        };
        match &self.auth {
            Some(auth) if !supported.contains(&auth.scheme()) => Err(Error::UnsupportedAuth {
                path: self.path.clone(),
                connector: connector.to_owned(),
                configured: auth.type_name(),
                supported: names(),
            }),
            Some(_) => Ok(()),
            None => {
                // Many APIs (and the generic `rest` connector) work without credentials, so
                // this is worth a note, not a warning on every run.
                if !supported.is_empty() {
                    tracing::info!(
                        connector,
                        supported = %names().join(", "),
                        "The connection has no [auth] table although the connector supports credentials; requests go out unauthenticated."
                    );
                }
                Ok(())
            }
        }
    }

    /// Checks the connector config against the JSON schema the connector declared, listing
    /// every problem with the JSON path of the offending field.
    pub fn validate_config(
        &self,
        connector: &str,
        schema: &serde_json::Value,
    ) -> Result<(), Error> {
        let validator = jsonschema::validator_for(schema).map_err(|error| Error::BadSchema {
            connector: connector.to_owned(),
            detail: error.to_string(),
        })?;
        let problems: Vec<String> = validator
            .iter_errors(&self.connector_config)
            .map(|error| {
                let at = error.instance_path.to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("at `{at}`: {error}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Schema {
                path: self.path.clone(),
                connector: connector.to_owned(),
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_table_becomes_json_and_name_defaults_to_the_file_stem() {
        let connection = Connection::parse(
            "[config]\nbase_url = \"http://x\"\n[[config.streams]]\nname = \"a\"\n",
            Path::new("dir/orders.toml"),
        )
        .unwrap();
        assert_eq!(connection.name, "orders");
        assert_eq!(
            connection.config_json(),
            r#"{"base_url":"http://x","streams":[{"name":"a"}]}"#
        );
    }

    #[test]
    fn unknown_tables_are_refused_with_their_name() {
        let error = Connection::parse("[limit]\nx = 1\n", Path::new("c.toml")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("unknown field `limit`"), "{message}");
        assert!(message.contains("c.toml"), "{message}");
    }

    #[test]
    fn schema_problems_name_the_field() {
        let connection =
            Connection::parse("[config]\ncount = \"three\"\n", Path::new("c.toml")).unwrap();
        let schema = serde_json::json!({
            "type": "object",
            "required": ["base_url"],
            "properties": { "count": { "type": "integer" } }
        });
        let message = connection
            .validate_config("rest", &schema)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("invalid for connector `rest`"),
            "{message}"
        );
        assert!(message.contains("at `/count`"), "{message}");
        assert!(message.contains("base_url"), "{message}");
    }

    #[test]
    fn unsupported_auth_scheme_is_named_with_the_fix() {
        let connection = Connection::parse(
            "[auth]\ntype = \"basic\"\nusername = \"u\"\npassword = { env = \"P\" }\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let message = connection
            .check_auth_scheme(
                "github",
                &[AuthScheme::Bearer, AuthScheme::Oauth2RefreshToken],
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "[auth] in `c.toml` has `type = \"basic\"`, which connector `github` does not support; \
             use one of: bearer, oauth2_refresh_token"
        );
        let message = connection
            .check_auth_scheme("open", &[])
            .unwrap_err()
            .to_string();
        assert!(
            message.ends_with(
                "use one of: none (remove the [auth] table: the connector sends no credential)"
            ),
            "{message}"
        );
        assert!(
            connection
                .check_auth_scheme("rest", &[AuthScheme::Basic])
                .is_ok()
        );
        let bare = Connection::parse("", Path::new("c.toml")).unwrap();
        assert!(bare.check_auth_scheme("rest", &[AuthScheme::Basic]).is_ok());
    }

    #[test]
    fn missing_file_names_the_path() {
        let message = Connection::load(Path::new("/nonexistent/conn.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("cannot read connection file `/nonexistent/conn.toml`"),
            "{message}"
        );
    }
}
