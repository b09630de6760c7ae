//! What every GitHub stream shares: the request GitHub asks clients to send, and the
//! `owner/name` path prefix.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

use crate::config::Config;

/// The largest page GitHub serves.
pub const PAGE_SIZE: u32 = 100;

/// The REST API version this connector is written against.
pub const API_VERSION: &str = "2022-11-28";

/// A `GET` of `path` under the repository (`repos/{owner}/{name}/{path}`), with the headers
/// GitHub asks clients to send and the connection's credential.
pub fn repo_request(config: &Config, path: &str) -> Result<Request> {
    let (owner, name) = config.owner_and_name()?;
    let url = url::join(&config.base_url, &format!("repos/{owner}/{name}/{path}"));
    Ok(Request::get(url)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", API_VERSION)
        .header("User-Agent", "sluice")
        .authenticated())
}

/// Add `record` to `page`, or explain that GitHub sent something other than an object
/// (`what` names the record with its article: `"an issue"`).
pub fn push(page: &mut Page<Watermark>, what: &str, record: &Value) -> Result<()> {
    page.push_value(record).map_err(|_| {
        Error::unexpected_response(format!(
            "{what} is {}, expected an object",
            json::describe(record)
        ))
    })
}
