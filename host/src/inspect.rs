//! `sluice inspect`: what a connector is (its spec), what it imports and exports, and, given a
//! connection file, what it declares (hosts and streams). Loading runs every check a sync would
//! (header, size, compile budget, imports), so a refused component is reported the same way.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Connection;
use crate::connector::Connector;
use crate::protocol::{Catalog, Spec};
use crate::sandbox::{self, Limits, Runtime};

/// What `sluice inspect` reports about a connector.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// What the operator passed (bundled name or path).
    pub source: String,
    /// The connector's spec.
    pub spec: Spec,
    /// Interfaces the component imports (each one the host provides).
    pub imports: Vec<String>,
    /// Names the component exports.
    pub exports: Vec<String>,
    /// Hosts and streams it declares under the connection's config, when one was given.
    pub catalog: Option<Catalog>,
}

/// Loads `source` and asks it for its spec and, with a `connection`, its catalog. Each guest
/// call runs under the connection's limits (the defaults without one).
pub async fn inspect(
    runtime: &Runtime,
    source: &str,
    connection: Option<&Connection>,
) -> Result<Inspection, sandbox::Error> {
    let connector = Connector::load(runtime, source)?;
    let defaults = Limits::default();
    let limits = connection.map_or(&defaults, |connection| &connection.limits);
    let spec = connector.spec(runtime, limits).await?;
    let catalog = match connection {
        Some(connection) => Some(
            connector
                .discover(runtime, limits, connection.config_json())
                .await?,
        ),
        None => None,
    };
    Ok(Inspection {
        source: source.to_owned(),
        spec,
        imports: connector.imports().to_vec(),
        exports: connector.exports().to_vec(),
        catalog,
    })
}

/// The human-readable form of an [`Inspection`].
pub fn render(inspection: &Inspection) -> String {
    let mut out = String::new();
    let spec = &inspection.spec;
    let _ = writeln!(
        out,
        "{} {} ({})",
        spec.name, spec.version, inspection.source
    );
    if !spec.description.is_empty() {
        let _ = writeln!(out, "  {}", spec.description);
    }
    let _ = writeln!(out, "Exports: {}", inspection.exports.join(", "));
    let _ = writeln!(out, "Imports ({}):", inspection.imports.len());
    for import in &inspection.imports {
        let _ = writeln!(out, "  {import}");
    }
    match &inspection.catalog {
        Some(catalog) => {
            let hosts = if catalog.allowed_hosts.is_empty() {
                "(none)".to_owned()
            } else {
                catalog.allowed_hosts.join(", ")
            };
            let _ = writeln!(out, "Declared hosts: {hosts}");
            let _ = writeln!(out, "Streams:");
            for stream in &catalog.streams {
                let _ = writeln!(
                    out,
                    "  {}{}",
                    stream.name,
                    stream
                        .cursor_field
                        .as_deref()
                        .map(|field| format!(" (incremental on {field})"))
                        .unwrap_or_default()
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "Declared hosts and streams depend on the config: pass --config to list them."
            );
        }
    }
    out
}
