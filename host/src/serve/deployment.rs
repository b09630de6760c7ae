//! The deployment file of `sluice serve`: tenants, their connections, secrets, caps and
//! schedules, validated as a whole before anything runs.
//!
//! Isolation is decided here, at load: a connection names secrets only as
//! `{ secret = "NAME" }`, looked up in its own tenant's `[tenants.T.secrets]` and in the
//! platform `[secrets]` granted to that tenant, never anyone else's; no two tenants' private
//! secrets may read the same variable or file; outputs are confined to the tenant's directory;
//! and state lives in the tenant's namespace of the checkpoint store.
//!
//! ```toml
//! state_dir = "/var/lib/sluice/state"
//! output_dir = "/var/lib/sluice/output"
//! max_concurrent_syncs = 8
//!
//! [control]
//! listen = "127.0.0.1:7979"
//! token = { env = "SLUICE_CONTROL_TOKEN" }
//!
//! [secrets]                              # platform credentials, granted per tenant
//! github_app = { env = "GITHUB_APP_TOKEN" }
//!
//! [rate_budgets."api.github.com"]        # per credential, shared by whoever uses it
//! requests = 5000
//! per_seconds = 3600
//!
//! [tenants.acme]
//! grants = ["github_app"]
//! max_concurrent_syncs = 2
//! max_guest_memory_mib = 512
//!
//! [tenants.acme.connections.issues]
//! connector = "github"
//! schedule = { every = "15m" }
//! config = { repository = "acme/widgets" }
//! auth = { type = "bearer", token = { secret = "github_app" } }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::schedule::Schedule;
use crate::config::Connection;
use crate::rate_limit::Rate;
use crate::secrets::{Secret, SecretRef};

/// Default address of the control API: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7979";
/// Default cap on syncs running at once, over all tenants.
pub const DEFAULT_MAX_CONCURRENT_SYNCS: usize = 8;
/// Default cap on one tenant's syncs running at once.
pub const DEFAULT_TENANT_CONCURRENT_SYNCS: usize = 2;
/// Default cap on one tenant's guest memory, summed over its running syncs, in MiB.
pub const DEFAULT_TENANT_GUEST_MEMORY_MIB: u64 = 1024;
/// Default time a running sync gets to reach its next checkpoint on shutdown, in seconds.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

/// Fields of `[auth]` and `[tls]` that hold secrets and must be `{ secret = "NAME" }`.
const SECRET_FIELDS: &[&str] = &[
    "key",
    "token",
    "password",
    "client_secret",
    "refresh_token",
    "client_key",
];
/// Fields that may be a secret reference or written inline (identifiers, not secrets).
const MAYBE_SECRET_FIELDS: &[&str] = &["username", "client_id"];

/// Why a deployment file cannot be used. Every message names the file and the place in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read the deployment file `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("deployment file `{}` is invalid: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its place.
        detail: String,
    },
    /// A value is not allowed; `at` names the table or key.
    #[error("deployment file `{}`, {at}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where, e.g. "tenant `acme` connection `issues`".
        at: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A secret (the control token) could not be read.
    #[error("deployment file `{}`, {at}: {source}", path.display())]
    Secret {
        /// The file.
        path: PathBuf,
        /// Which secret.
        at: String,
        /// Why.
        #[source]
        source: crate::secrets::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    state_dir: Option<PathBuf>,
    output_dir: Option<PathBuf>,
    max_concurrent_syncs: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    control: RawControl,
    #[serde(default)]
    secrets: BTreeMap<String, SecretRef>,
    #[serde(default)]
    rate_budgets: BTreeMap<String, RawBudget>,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    listen: Option<String>,
    token: SecretRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    requests: u32,
    per_seconds: Option<u32>,
    burst: Option<u32>,
    max_wait_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    control_token: Option<SecretRef>,
    max_concurrent_syncs: Option<usize>,
    max_guest_memory_mib: Option<u64>,
    max_guest_cpu_ms_per_sync: Option<u64>,
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretRef>,
    #[serde(default)]
    connections: BTreeMap<String, toml::Table>,
}

/// A validated deployment.
#[derive(Debug)]
pub struct Deployment {
    /// The file it was read from (re-read on reload).
    pub path: PathBuf,
    /// Directory of the shared checkpoint store (one namespace per tenant).
    pub state_dir: PathBuf,
    /// Root of the outputs: `<output_dir>/<tenant>/<connection or output>/<stream>.jsonl`.
    pub output_dir: PathBuf,
    /// Cap on syncs running at once, over all tenants.
    pub max_concurrent_syncs: usize,
    /// Time a running sync gets on shutdown to reach its next checkpoint.
    pub shutdown_grace: Duration,
    /// The control API.
    pub control: ControlSettings,
    /// Rate budget per upstream host (`host` or `host:port`), applied per credential.
    pub rate_budgets: BTreeMap<String, Budget>,
    /// The tenants, by name.
    pub tenants: BTreeMap<String, Tenant>,
}

/// Where the control API listens and the token that opens all of it.
#[derive(Debug)]
pub struct ControlSettings {
    /// Listening address.
    pub listen: SocketAddr,
    /// The operator's token: every tenant, every call.
    pub token: Secret,
}

/// A per-credential rate budget for one upstream host.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The rate.
    pub rate: Rate,
    /// Longest a request waits for the budget before failing.
    pub max_wait_ms: u64,
}

/// One tenant: caps and connections.
#[derive(Debug)]
pub struct Tenant {
    /// Tenant name.
    pub name: String,
    /// A token that opens the control API for this tenant only.
    pub control_token: Option<Secret>,
    /// Cap on this tenant's syncs running at once.
    pub max_concurrent_syncs: usize,
    /// Cap on the guest memory of this tenant's running syncs together, in bytes: a sync counts
    /// its `max_memory_bytes` while it runs.
    pub max_guest_memory_bytes: u64,
    /// Guest CPU budget of each sync of this tenant, in milliseconds (lowers a connection's
    /// `guest_cpu_budget_ms`).
    pub max_guest_cpu_ms_per_sync: Option<u64>,
    /// The connections, by name.
    pub connections: BTreeMap<String, Arc<Job>>,
}

/// One scheduled connection of a tenant.
#[derive(Debug)]
pub struct Job {
    /// The tenant.
    pub tenant: String,
    /// Connection name (unique within the tenant).
    pub name: String,
    /// Bundled connector name or path of a `.wasm` component.
    pub connector: String,
    /// The connection, with secret references resolved to the tenant's sources.
    pub connection: Connection,
    /// When it runs by itself; `None` runs only when triggered through the control API.
    pub schedule: Option<Schedule>,
    /// Streams to sync; empty means all.
    pub streams: Vec<String>,
    /// Output directory of this connection.
    pub output_dir: PathBuf,
    /// Which credential it sends: rate budgets are shared per (host, credential).
    pub credential: String,
}

impl Deployment {
    /// Reads and validates the deployment file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates a deployment file's text; `path` names it in errors, and relative
    /// directories in it are relative to the file's directory.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let raw: RawDeployment = toml::from_str(text).map_err(|error| Error::Parse {
            path: path.to_owned(),
            detail: error.to_string().trim_end().to_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |at: &str, reason: String| Error::Invalid {
            path: path.to_owned(),
            at: at.to_owned(),
            reason,
        };

        let listen = raw.control.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(
                "[control] listen",
                format!("`{listen}` is not an address such as `127.0.0.1:7979`"),
            )
        })?;
        let token = raw
            .control
            .token
            .resolve()
            .map_err(|source| Error::Secret {
                path: path.to_owned(),
                at: "[control] token".to_owned(),
                source,
            })?;

        let max_concurrent_syncs = raw
            .max_concurrent_syncs
            .unwrap_or(DEFAULT_MAX_CONCURRENT_SYNCS);
        if max_concurrent_syncs == 0 {
            return Err(invalid(
                "max_concurrent_syncs",
                "it must be at least 1".into(),
            ));
        }

        let mut rate_budgets = BTreeMap::new();
        for (host, budget) in raw.rate_budgets {
            let at = format!("[rate_budgets.\"{host}\"]");
            if host.is_empty() || host.contains(['/', ' ']) {
                return Err(invalid(
                    &at,
                    "name the host as in URLs: `api.github.com` or `127.0.0.1:8080`".into(),
                ));
            }
            let rate = Rate::new(
                budget.requests,
                budget.per_seconds.unwrap_or(1),
                budget.burst.unwrap_or(1),
            )
            .ok_or_else(|| {
                invalid(
                    &at,
                    "`requests`, `per_seconds` and `burst` must be at least 1".into(),
                )
            })?;
            rate_budgets.insert(
                host.to_ascii_lowercase(),
                Budget {
                    rate,
                    max_wait_ms: budget
                        .max_wait_ms
                        .unwrap_or(crate::rate_limit::DEFAULT_MAX_WAIT_MS),
                },
            );
        }

        for name in raw.secrets.keys() {
            check_name(name).map_err(|reason| invalid(&format!("[secrets] `{name}`"), reason))?;
        }
        check_private_secrets_are_private(&raw.tenants, &raw.secrets)
            .map_err(|(at, reason)| invalid(&at, reason))?;

        let mut tenants = BTreeMap::new();
        for (name, tenant) in raw.tenants {
            let at = format!("[tenants.{name}]");
            check_name(&name).map_err(|reason| invalid(&at, reason))?;
            let tenant = Tenant::build(
                &name,
                tenant,
                &raw.secrets,
                base,
                &raw_output(&raw.output_dir, base),
            )
            .map_err(|(at, reason)| invalid(&at, reason))?;
            tenants.insert(name, tenant);
        }

        Ok(Self {
            path: path.to_owned(),
            state_dir: resolve_dir(raw.state_dir, base, ".sluice/serve/state"),
            output_dir: raw_output(&raw.output_dir, base),
            max_concurrent_syncs,
            shutdown_grace: Duration::from_secs(
                raw.shutdown_grace_secs
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
            control: ControlSettings { listen, token },
            rate_budgets,
            tenants,
        })
    }

    /// Every connection of every tenant.
    pub fn jobs(&self) -> impl Iterator<Item = &Arc<Job>> {
        self.tenants
            .values()
            .flat_map(|tenant| tenant.connections.values())
    }
}

fn raw_output(dir: &Option<PathBuf>, base: &Path) -> PathBuf {
    resolve_dir(dir.clone(), base, ".sluice/serve/output")
}

/// `dir` relative to `base`, or `base/default`.
fn resolve_dir(dir: Option<PathBuf>, base: &Path, default: &str) -> PathBuf {
    let dir = dir.unwrap_or_else(|| PathBuf::from(default));
    if dir.is_absolute() {
        dir
    } else {
        base.join(dir)
    }
}

/// Names of tenants, connections and secrets end up in paths, store trees and metric labels:
/// lowercase letters, digits, `-` and `_`, starting with a letter or digit, at most 64 bytes.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit"
        ))
    }
}

/// Where a secret is read from, for comparing sources; `None` for inline values.
fn source_of(secret: &SecretRef) -> Option<String> {
    match secret {
        SecretRef::Env { env } => Some(format!("environment variable `{env}`")),
        SecretRef::File { file } => Some(format!("file `{}`", file.display())),
        SecretRef::Literal(_) => None,
    }
}

/// A tenant's private secrets must not read the same variable or file as another tenant's
/// private secret or a platform secret: sharing goes through `[secrets]` and `grants`, visibly.
fn check_private_secrets_are_private(
    tenants: &BTreeMap<String, RawTenant>,
    platform: &BTreeMap<String, SecretRef>,
) -> Result<(), (String, String)> {
    let mut owners: HashMap<String, String> = HashMap::new();
    for (name, secret) in platform {
        if let Some(source) = source_of(secret) {
            owners.insert(source, format!("platform secret `{name}`"));
        }
    }
    for (tenant, raw) in tenants {
        for (name, secret) in &raw.secrets {
            let Some(source) = source_of(secret) else {
                continue;
            };
            let owner = format!("secret `{name}` of tenant `{tenant}`");
            if let Some(other) = owners.get(&source)
                && !other.ends_with(&format!("of tenant `{tenant}`"))
            {
                return Err((
                    format!("[tenants.{tenant}.secrets] `{name}`"),
                    format!(
                        "it reads {source}, which {other} also reads; a tenant's secrets are its own — declare a shared credential once under [secrets] and grant it with `grants`"
                    ),
                ));
            }
            owners.insert(source, owner);
        }
    }
    Ok(())
}

impl Tenant {
    fn build(
        name: &str,
        raw: RawTenant,
        platform: &BTreeMap<String, SecretRef>,
        base: &Path,
        output_root: &Path,
    ) -> Result<Self, (String, String)> {
        let at = format!("[tenants.{name}]");
        for grant in &raw.grants {
            if !platform.contains_key(grant) {
                return Err((
                    at.clone(),
                    format!(
                        "`grants` names `{grant}`, which is not under [secrets]; declare it there first"
                    ),
                ));
            }
        }
        for secret in raw.secrets.keys() {
            check_name(secret).map_err(|reason| (format!("{at} secrets"), reason))?;
        }
        let max_concurrent_syncs = raw
            .max_concurrent_syncs
            .unwrap_or(DEFAULT_TENANT_CONCURRENT_SYNCS);
        if max_concurrent_syncs == 0 {
            return Err((
                format!("{at} max_concurrent_syncs"),
                "it must be at least 1".into(),
            ));
        }
        let memory_mib = raw
            .max_guest_memory_mib
            .unwrap_or(DEFAULT_TENANT_GUEST_MEMORY_MIB);
        let max_guest_memory_bytes = memory_mib.saturating_mul(1024 * 1024);
        let control_token = raw
            .control_token
            .as_ref()
            .map(SecretRef::resolve)
            .transpose()
            .map_err(|error| (format!("{at} control_token"), error.to_string()))?;
        let secrets = SecretScope {
            tenant: name,
            own: &raw.secrets,
            platform,
            grants: &raw.grants,
        };
        let tenant_output = output_root.join(name);
        let mut connections = BTreeMap::new();
        for (connection, table) in raw.connections {
            let at = format!("tenant `{name}` connection `{connection}`");
            check_name(&connection).map_err(|reason| (at.clone(), reason))?;
            let job = Job::build(name, &connection, table, &secrets, base, &tenant_output)
                .map_err(|reason| (at.clone(), reason))?;
            if job.connection.limits.max_memory_bytes > max_guest_memory_bytes {
                return Err((
                    at,
                    format!(
                        "its [limits] max_memory_bytes ({}) is above the tenant's max_guest_memory_mib ({memory_mib} MiB), so it could never run; lower one or raise the other",
                        job.connection.limits.max_memory_bytes
                    ),
                ));
            }
            let mut job = job;
            if let Some(cap) = raw.max_guest_cpu_ms_per_sync {
                let budget = &mut job.connection.limits.guest_cpu_budget_ms;
                *budget = (*budget).min(cap);
            }
            connections.insert(connection, Arc::new(job));
        }
        Ok(Self {
            name: name.to_owned(),
            control_token,
            max_concurrent_syncs,
            max_guest_memory_bytes,
            max_guest_cpu_ms_per_sync: raw.max_guest_cpu_ms_per_sync,
            connections,
        })
    }
}

/// The secrets one tenant's connections may name.
struct SecretScope<'a> {
    tenant: &'a str,
    own: &'a BTreeMap<String, SecretRef>,
    platform: &'a BTreeMap<String, SecretRef>,
    grants: &'a [String],
}

impl SecretScope<'_> {
    /// The source of secret `name` and the credential identity it stands for.
    fn lookup(&self, name: &str) -> Result<(&SecretRef, String), String> {
        if let Some(secret) = self.own.get(name) {
            return Ok((secret, format!("tenant/{}/{name}", self.tenant)));
        }
        if self.grants.iter().any(|grant| grant == name)
            && let Some(secret) = self.platform.get(name)
        {
            return Ok((secret, format!("platform/{name}")));
        }
        let mut known: Vec<&str> = self.own.keys().map(String::as_str).collect();
        known.extend(self.grants.iter().map(String::as_str));
        Err(format!(
            "names secret `{name}`, which is not one of tenant `{}`'s secrets ({}); declare it under [tenants.{}.secrets] or grant a platform secret with `grants`",
            self.tenant,
            if known.is_empty() {
                "it has none".to_owned()
            } else {
                known.join(", ")
            },
            self.tenant
        ))
    }
}

impl Job {
    fn build(
        tenant: &str,
        name: &str,
        mut table: toml::Table,
        secrets: &SecretScope<'_>,
        base: &Path,
        tenant_output: &Path,
    ) -> Result<Self, String> {
        let connector = match table.remove("connector") {
            Some(toml::Value::String(connector)) => connector,
            Some(_) => return Err("`connector` must be a string".into()),
            None => {
                return Err(
                    "has no `connector`: name a bundled one (`rest`, `github`) or a `.wasm` path"
                        .into(),
                );
            }
        };
        let connector = if connector.ends_with(".wasm") && Path::new(&connector).is_relative() {
            base.join(connector).to_string_lossy().into_owned()
        } else {
            connector
        };
        let schedule = table
            .remove("schedule")
            .map(|value| {
                Schedule::deserialize(value).map_err(|error| format!("`schedule`: {error}"))
            })
            .transpose()?;
        let streams = match table.remove("streams") {
            None => Vec::new(),
            Some(value) => Vec::<String>::deserialize(value)
                .map_err(|_| "`streams` must be a list of stream names".to_owned())?,
        };
        let output = match table.remove("output") {
            None => PathBuf::from(name),
            Some(toml::Value::String(output)) => confined(&output)?,
            Some(_) => return Err("`output` must be a string".into()),
        };
        if table.contains_key("name") {
            return Err("`name` is not set here: the connection's key is its name".into());
        }

        let mut credentials = Vec::new();
        for section in ["auth", "tls"] {
            if let Some(toml::Value::Table(section_table)) = table.get_mut(section) {
                resolve_secret_refs(section, section_table, secrets, &mut credentials)?;
            }
        }
        credentials.sort();
        credentials.dedup();
        let credential = if credentials.is_empty() {
            format!("tenant/{tenant}/anonymous")
        } else {
            credentials.join("+")
        };

        table.insert("name".into(), toml::Value::String(name.to_owned()));
        let text = toml::to_string(&table).map_err(|error| error.to_string())?;
        let connection = Connection::parse(&text, Path::new(&format!("{tenant}/{name}")))
            .map_err(|error| error.to_string())?;
        Ok(Self {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            connector,
            connection,
            schedule,
            streams,
            output_dir: tenant_output.join(output),
            credential,
        })
    }
}

/// `secret` written back as TOML, as a connection file would have it.
fn secret_ref_value(secret: &SecretRef) -> toml::Value {
    let table = |key: &str, value: String| {
        toml::Value::Table(toml::Table::from_iter([(
            key.to_owned(),
            toml::Value::String(value),
        )]))
    };
    match secret {
        SecretRef::Env { env } => table("env", env.clone()),
        SecretRef::File { file } => table("file", file.to_string_lossy().into_owned()),
        SecretRef::Literal(value) => toml::Value::String(value.clone()),
    }
}

/// A relative path inside the tenant's output directory, or why it is not one.
fn confined(output: &str) -> Result<PathBuf, String> {
    let path = Path::new(output);
    let inside = !output.is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    if inside {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "`output = \"{output}\"` must be a relative path inside the tenant's output directory (no `..`, no leading `/`)"
        ))
    }
}

/// Replaces each `{ secret = "NAME" }` in `table` (the `[auth]` or `[tls]` table) with the
/// tenant's source for it, and refuses secrets written any other way.
fn resolve_secret_refs(
    section: &str,
    table: &mut toml::Table,
    secrets: &SecretScope<'_>,
    credentials: &mut Vec<String>,
) -> Result<(), String> {
    for (key, value) in table.iter_mut() {
        let at = format!("[{section}] {key}");
        let secret_field = SECRET_FIELDS.contains(&key.as_str());
        let maybe_secret = MAYBE_SECRET_FIELDS.contains(&key.as_str());
        match value {
            toml::Value::Table(inner) if inner.len() == 1 && inner.contains_key("secret") => {
                let Some(toml::Value::String(name)) = inner.get("secret") else {
                    return Err(format!("{at}: `secret` must be a string"));
                };
                let (source, credential) = secrets.lookup(name).map_err(|e| format!("{at} {e}"))?;
                if secret_field {
                    credentials.push(credential);
                }
                *value = secret_ref_value(source);
            }
            toml::Value::Table(inner)
                if inner.contains_key("env") || inner.contains_key("file") =>
            {
                return Err(format!(
                    "{at}: a deployment names secrets as `{{ secret = \"NAME\" }}`, declared under [tenants.<tenant>.secrets], never as `env` or `file` directly"
                ));
            }
            toml::Value::String(_) if secret_field => {
                return Err(format!(
                    "{at}: write `{{ secret = \"NAME\" }}` and declare the value under [tenants.<tenant>.secrets], not inline"
                ));
            }
            _ if secret_field && !maybe_secret => {
                return Err(format!("{at}: must be `{{ secret = \"NAME\" }}`"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
[control]
listen = "127.0.0.1:0"
token = "operator-token"

[secrets]
github_app = { env = "SLUICE_TEST_GITHUB_APP" }

[rate_budgets."api.github.com"]
requests = 10
per_seconds = 60
"#;

    fn parse(tenants: &str) -> Result<Deployment, Error> {
        Deployment::parse(
            &format!("{HEAD}\n{tenants}"),
            Path::new("/etc/sluice/deploy.toml"),
        )
    }

    fn error(tenants: &str) -> String {
        parse(tenants).unwrap_err().to_string()
    }

    const ACME: &str = r#"
[tenants.acme]
grants = ["github_app"]
max_concurrent_syncs = 3
[tenants.acme.secrets]
stripe = { env = "SLUICE_TEST_ACME_STRIPE" }
[tenants.acme.connections.issues]
connector = "github"
schedule = { every = "15m" }
config = { owner = "acme", repo = "widgets" }
auth = { type = "bearer", token = { secret = "github_app" } }
[tenants.acme.connections.payments]
connector = "rest"
output = "billing/stripe"
config = { base_url = "https://api.stripe.com", streams = [] }
auth = { type = "bearer", token = { secret = "stripe" } }
"#;

    #[test]
    fn a_valid_deployment_resolves_secrets_outputs_and_credentials() {
        let deployment = parse(ACME).unwrap();
        assert_eq!(
            deployment.state_dir,
            Path::new("/etc/sluice/.sluice/serve/state")
        );
        assert_eq!(
            deployment.max_concurrent_syncs,
            DEFAULT_MAX_CONCURRENT_SYNCS
        );
        let acme = &deployment.tenants["acme"];
        assert_eq!(acme.max_concurrent_syncs, 3);
        let issues = &acme.connections["issues"];
        assert_eq!(issues.connection.name, "issues");
        assert_eq!(issues.credential, "platform/github_app");
        assert!(matches!(
            issues.connection.auth,
            Some(crate::secrets::AuthConfig::Bearer { token: SecretRef::Env { ref env } })
                if env == "SLUICE_TEST_GITHUB_APP"
        ));
        assert!(
            matches!(issues.schedule, Some(Schedule::Every(d)) if d == Duration::from_secs(900))
        );
        let payments = &acme.connections["payments"];
        assert_eq!(payments.credential, "tenant/acme/stripe");
        assert_eq!(
            payments.output_dir,
            Path::new("/etc/sluice/.sluice/serve/output/acme/billing/stripe")
        );
        assert!(payments.schedule.is_none());
        assert_eq!(
            deployment.rate_budgets["api.github.com"].rate.requests(),
            10
        );
    }

    #[test]
    fn a_connection_cannot_name_another_tenants_secret() {
        let message = error(&format!(
            "{ACME}\n[tenants.globex.connections.steal]\nconnector = \"rest\"\nconfig = {{}}\nauth = {{ type = \"bearer\", token = {{ secret = \"stripe\" }} }}\n"
        ));
        assert!(
            message.contains("tenant `globex` connection `steal`")
                && message.contains(
                    "names secret `stripe`, which is not one of tenant `globex`'s secrets"
                ),
            "{message}"
        );
    }

    #[test]
    fn a_platform_secret_needs_a_grant() {
        let message = error(
            "[tenants.globex.connections.gh]\nconnector = \"github\"\nconfig = {}\nauth = { type = \"bearer\", token = { secret = \"github_app\" } }\n",
        );
        assert!(message.contains("names secret `github_app`"), "{message}");
        let message = error("[tenants.globex]\ngrants = [\"nope\"]\n");
        assert!(
            message.contains("`grants` names `nope`, which is not under [secrets]"),
            "{message}"
        );
    }

    #[test]
    fn secrets_are_only_named_never_read_directly() {
        for auth in [
            "{ type = \"bearer\", token = { env = \"HOME\" } }",
            "{ type = \"bearer\", token = { file = \"/etc/shadow\" } }",
            "{ type = \"bearer\", token = \"inline\" }",
        ] {
            let message = error(&format!(
                "[tenants.globex.connections.c]\nconnector = \"rest\"\nconfig = {{}}\nauth = {auth}\n"
            ));
            assert!(message.contains("[auth] token"), "{auth}: {message}");
            assert!(
                message.contains("{ secret = \"NAME\" }"),
                "{auth}: {message}"
            );
        }
    }

    #[test]
    fn two_tenants_cannot_read_the_same_secret_source() {
        let message = error(&format!(
            "{ACME}\n[tenants.globex.secrets]\nmine = {{ env = \"SLUICE_TEST_ACME_STRIPE\" }}\n"
        ));
        assert!(
            message.contains("[tenants.globex.secrets] `mine`")
                && message.contains("secret `stripe` of tenant `acme` also reads"),
            "{message}"
        );
        let message =
            error("[tenants.globex.secrets]\nmine = { env = \"SLUICE_TEST_GITHUB_APP\" }\n");
        assert!(
            message.contains("platform secret `github_app`"),
            "{message}"
        );
    }

    #[test]
    fn outputs_stay_inside_the_tenant_directory() {
        for output in ["../acme", "/tmp/x", "a/../../b", ""] {
            let message = error(&format!(
                "[tenants.globex.connections.c]\nconnector = \"rest\"\nconfig = {{}}\noutput = \"{output}\"\n"
            ));
            assert!(
                message.contains("must be a relative path inside"),
                "{output}: {message}"
            );
        }
    }

    #[test]
    fn names_caps_and_schedules_are_checked() {
        assert!(error("[tenants.\"Acme Corp\"]\n").contains("is not a valid name"));
        assert!(error("[tenants.a.connections.c]\nconfig = {}\n").contains("has no `connector`"));
        assert!(
            error("[tenants.a.connections.c]\nconnector = \"rest\"\nconfig = {}\nschedule = { every = \"soon\" }\n")
                .contains("`schedule`")
        );
        let message = error(
            "[tenants.a]\nmax_guest_memory_mib = 16\n[tenants.a.connections.c]\nconnector = \"rest\"\nconfig = {}\nlimits = { max_memory_bytes = 33554432 }\n",
        );
        assert!(message.contains("could never run"), "{message}");
    }

    #[test]
    fn the_tenant_cpu_cap_lowers_each_sync_budget() {
        let deployment = parse("[tenants.a]\nmax_guest_cpu_ms_per_sync = 50\n[tenants.a.connections.c]\nconnector = \"rest\"\nconfig = {}\n").unwrap();
        assert_eq!(
            deployment.tenants["a"].connections["c"]
                .connection
                .limits
                .guest_cpu_budget_ms,
            50
        );
    }
}
