//! The `issues` stream: every issue (and pull request) of a repository, oldest update first.
//!
//! `GET /repos/{owner}/{repo}/issues?state=all&sort=updated&direction=asc&per_page=100[&since=…]`,
//! paged by the `Link` header. GitHub's `since` is inclusive, so the issue at the saved
//! `updated_at` comes back and is dropped ([`Watermark::admit`]). GitHub counts pull requests
//! as issues; they are kept, recognisable by their `pull_request` field.

use sluice_sdk::prelude::*;

use crate::api::{self, PAGE_SIZE};
use crate::config::Config;

/// The stream's name.
pub const STREAM: &str = "issues";

/// JSON pointer to the cursor field.
pub const CURSOR_FIELD: &str = "/updated_at";

/// The first request: issues updated since the saved cursor, else since `start_date`.
pub fn first_request(config: &Config, state: &Watermark) -> Result<Request> {
    let since = match state.cursor_param() {
        Some(cursor) => Some(cursor),
        None => config.start_timestamp()?,
    };
    Ok(api::repo_request(config, "issues")?
        .query("state", "all")
        .query("sort", "updated")
        .query("direction", "asc")
        .query("per_page", PAGE_SIZE)
        .query_opt("since", since))
}

/// Turn one page of issues into records, advancing the `updated_at` watermark.
pub fn read_page(
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    let body = response.ok()?.json_value()?;
    let issues = json::records_at(&body, "")?;
    let next = paginate::LinkHeader::new().next(&PageInfo::new(request, response, issues.len()))?;
    let mut page = Page::new();
    for issue in issues
        .iter()
        .filter(|issue| state.admit(issue, CURSOR_FIELD))
    {
        api::push(&mut page, "an issue", issue)?;
    }
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}

/// The JSON Schema of an issue: the fields this connector relies on and the common ones;
/// GitHub sends many more.
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
            "body": {"type": ["string", "null"]},
            "user": {"type": ["object", "null"]},
            "labels": {"type": "array"},
            "assignees": {"type": "array"},
            "comments": {"type": "integer"},
            "html_url": {"type": "string"},
            "created_at": timestamp.clone(),
            "updated_at": timestamp,
            "closed_at": maybe_timestamp,
            "pull_request": {"type": "object", "description": "Present when the issue is a pull request"}
        },
        "additionalProperties": true
    })
}
