//! Stripe's list API, shared by every stream.
//!
//! `GET /v1/{objects}?limit=100[&created[gt]=<cursor> | &created[gte]=<start>][&starting_after=<id>]`
//! answers `{"object": "list", "data": [...], "has_more": bool, "url": "/v1/{objects}"}`,
//! newest first. The next page asks for `starting_after=<id of the last object>` while
//! `has_more` is true. Objects created during a sync land before the first page, so they never
//! disturb the pages after it; the next sync reads them.
//!
//! Incremental: the state is a [`Watermark`] on `created` (seconds since the epoch). A sync
//! sends `created[gt]=<cursor>`, so only newer objects come back; the cursor becomes the
//! highest `created` emitted once the stream is complete. An object created later within the
//! same second as the cursor is missed: Stripe's `created` has no finer resolution.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

use crate::config::Config;

/// JSON pointer to the cursor field.
pub const CURSOR_FIELD: &str = "/created";

/// The query parameter of the page position.
const STARTING_AFTER: &str = "starting_after";

/// The first request of the list at `path` (e.g. `v1/customers`): newer than the saved
/// cursor, else created at or after `start_date`.
pub fn first_request(config: &Config, path: &str, state: &Watermark) -> Result<Request> {
    let mut request = Request::get(url::join(&config.base_url, path))
        .query("limit", config.page_size)
        .authenticated();
    request = match (state.cursor_param(), config.start_epoch_secs()?) {
        (Some(cursor), _) => request.query("created[gt]", cursor),
        (None, Some(start)) => request.query("created[gte]", start),
        (None, None) => request,
    };
    if let Some(version) = &config.api_version {
        request = request.header("Stripe-Version", version.clone());
    }
    if let Some(account) = &config.account {
        request = request.header("Stripe-Account", account.clone());
    }
    Ok(request)
}

/// A Stripe list response.
#[derive(Deserialize)]
struct List {
    /// Always `"list"`.
    object: String,
    /// The objects of this page, newest first.
    data: Vec<Value>,
    /// Whether there are more objects after the last one.
    has_more: bool,
}

/// Turn one page of a list into records and the request for the next page.
pub fn read_page(
    what: &str,
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    check_status(response)?;
    let list: List = response.json()?;
    if list.object != "list" {
        return Err(Error::unexpected_response(format!(
            "expected a list object, found `\"object\": \"{}\"`",
            list.object
        )));
    }
    let mut page = Page::new();
    for object in &list.data {
        if state.admit(object, CURSOR_FIELD) {
            page.push_value(object).map_err(|_| {
                Error::unexpected_response(format!(
                    "an item of the {what} list is {}, expected an object",
                    json::describe(object)
                ))
            })?;
        }
    }
    let next = match (list.has_more, list.data.last()) {
        (true, Some(last)) => {
            let id = last.get("id").and_then(Value::as_str).ok_or_else(|| {
                Error::unexpected_response(format!(
                    "the last item of the {what} list has no string `id` to continue after"
                ))
            })?;
            Some(request.clone().replace_query(STARTING_AFTER, id))
        }
        _ => None,
    };
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}

/// Stripe's error body, `{"error": {"type": ..., "message": ...}}`, as an error that says what
/// Stripe said; any other failure as the SDK words it.
fn check_status(response: &Response) -> Result<()> {
    if response.is_success() {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Body {
        error: StripeError,
    }
    #[derive(Deserialize)]
    struct StripeError {
        #[serde(rename = "type")]
        kind: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(&response.body) {
        Ok(Body {
            error:
                StripeError {
                    kind,
                    message: Some(message),
                },
        }) => Err(Error::unexpected_response(format!(
            "Stripe answered HTTP {} ({}): {message}",
            response.status,
            kind.as_deref().unwrap_or("error")
        ))),
        _ => response.ok().map(drop),
    }
}
