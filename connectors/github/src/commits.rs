//! The `commits` stream: the commits of the repository's default branch, incremental on the
//! committer date.
//!
//! `GET /repos/{owner}/{repo}/commits?per_page=100[&since=…]`, paged by the `Link` header,
//! newest first. GitHub's `since` keeps commits whose committer date is at or after it, so the
//! commit at the saved cursor comes back and is dropped ([`Watermark::admit`]). The cursor is
//! the highest committer date emitted, promoted when the stream is complete.
//!
//! A commit's committer date is set when it is made, not when it reaches the branch: a branch
//! merged (not rebased) long after its commits were made brings commits dated before the
//! cursor, and an incremental read does not see them. Run with `--full-refresh` to read the
//! whole history again when that matters.

use sluice_sdk::prelude::*;

use crate::api::{self, PAGE_SIZE};
use crate::config::Config;

/// The stream's name.
pub const STREAM: &str = "commits";

/// JSON pointer to the cursor field: the committer date.
pub const CURSOR_FIELD: &str = "/commit/committer/date";

/// The first request: commits since the saved cursor, else since `start_date`.
pub fn first_request(config: &Config, state: &Watermark) -> Result<Request> {
    let since = match state.cursor_param() {
        Some(cursor) => Some(cursor),
        None => config.start_timestamp()?,
    };
    Ok(api::repo_request(config, "commits")?
        .query("per_page", PAGE_SIZE)
        .query_opt("since", since))
}

/// Turn one page of commits into records, advancing the committer-date watermark.
pub fn read_page(
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    let body = response.ok()?.json_value()?;
    let commits = json::records_at(&body, "")?;
    let next =
        paginate::LinkHeader::new().next(&PageInfo::new(request, response, commits.len()))?;
    let mut page = Page::new();
    for commit in commits
        .iter()
        .filter(|commit| state.admit(commit, CURSOR_FIELD))
    {
        api::push(&mut page, "a commit", commit)?;
    }
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}

/// The JSON Schema of a commit: the fields this connector relies on and the common ones.
pub fn schema() -> Value {
    let person = json!({
        "type": ["object", "null"],
        "properties": {
            "name": {"type": "string"},
            "email": {"type": "string"},
            "date": {"type": "string", "format": "date-time"}
        }
    });
    json!({
        "type": "object",
        "required": ["sha", "commit"],
        "properties": {
            "sha": {"type": "string"},
            "node_id": {"type": "string"},
            "commit": {
                "type": "object",
                "required": ["committer"],
                "properties": {
                    "message": {"type": "string"},
                    "author": person.clone(),
                    "committer": person
                }
            },
            "author": {"type": ["object", "null"]},
            "committer": {"type": ["object", "null"]},
            "parents": {"type": "array"},
            "html_url": {"type": "string"}
        },
        "additionalProperties": true
    })
}
