//! The `pulls` stream: every pull request of a repository, most recently updated first.
//!
//! `GET /repos/{owner}/{repo}/pulls?state=all&sort=updated&direction=desc&per_page=100`, paged
//! by the `Link` header. The endpoint has no `since` filter, so incremental reads walk the list
//! newest update first and stop at the first pull request updated at or before the saved
//! cursor (or before `start_date` on a first run): everything after it is older still.
//!
//! Why descending and not ascending: a pull request updated while a sync pages through the
//! list moves to the front. Walking newest first, that move can only push an already-read pull
//! request onto a later page (read twice, harmless) and never hides an unread one; the moved
//! pull request itself is newer than the cursor this run saves, so the next run reads it.
//! Walking oldest first without a server-side filter, the same move would shift every later
//! pull request one place back, and one per moved pull request would be skipped. The cursor
//! saved at the end is the highest `updated_at` emitted ([`Watermark`]), which is the first
//! pull request of the first page.

use sluice_sdk::prelude::*;

use crate::api::{self, PAGE_SIZE};
use crate::config::Config;

/// The stream's name.
pub const STREAM: &str = "pulls";

/// JSON pointer to the cursor field.
pub const CURSOR_FIELD: &str = "/updated_at";

/// The first request: the most recently updated pull requests, any state.
pub fn first_request(config: &Config) -> Result<Request> {
    Ok(api::repo_request(config, "pulls")?
        .query("state", "all")
        .query("sort", "updated")
        .query("direction", "desc")
        .query("per_page", PAGE_SIZE))
}

/// Turn one page of pull requests into records, stopping at the first one already read (or
/// older than `start_date` on a first run).
pub fn read_page(
    config: &Config,
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    let body = response.ok()?.json_value()?;
    let pulls = json::records_at(&body, "")?;
    // `start_date` only bounds a first run; afterwards the cursor does.
    let start = match state.cursor() {
        None => config.start_timestamp()?,
        Some(_) => None,
    };
    let mut page = Page::new();
    let mut reached_read = false;
    for pull in pulls {
        let before_start = match (&start, json::pointer(pull, CURSOR_FIELD)) {
            (Some(start), Some(Value::String(updated))) => updated < start,
            _ => false,
        };
        if before_start || !state.admit(pull, CURSOR_FIELD) {
            reached_read = true;
            break;
        }
        api::push(&mut page, "a pull request", pull)?;
    }
    let next = match reached_read {
        true => None,
        false => {
            paginate::LinkHeader::new().next(&PageInfo::new(request, response, pulls.len()))?
        }
    };
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}

/// The JSON Schema of a pull request: the fields this connector relies on and the common
/// ones; GitHub sends many more.
pub fn schema() -> Value {
    let timestamp = json!({"type": "string", "format": "date-time"});
    let maybe_timestamp = json!({"type": ["string", "null"], "format": "date-time"});
    json!({
        "type": "object",
        "required": ["id", "number", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "node_id": {"type": "string"},
            "number": {"type": "integer"},
            "title": {"type": "string"},
            "state": {"type": "string", "enum": ["open", "closed"]},
            "draft": {"type": "boolean"},
            "body": {"type": ["string", "null"]},
            "user": {"type": ["object", "null"]},
            "labels": {"type": "array"},
            "head": {"type": "object"},
            "base": {"type": "object"},
            "merge_commit_sha": {"type": ["string", "null"]},
            "html_url": {"type": "string"},
            "created_at": timestamp.clone(),
            "updated_at": timestamp,
            "closed_at": maybe_timestamp.clone(),
            "merged_at": maybe_timestamp
        },
        "additionalProperties": true
    })
}
