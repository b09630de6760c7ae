//! Reading Algolia's `search_by_date`: page numbers inside windows of time.
//!
//! `GET /api/v1/search_by_date?tags=<tag>&hitsPerPage=100&page=0[&query=…][&numericFilters=…]`
//! answers `{"hits": [...], "nbHits": N, "page": P, "nbPages": K, "hitsPerPage": 100, ...}`,
//! newest first, pages numbered from 0. Items created while a sync pages move every later hit
//! one place back: a hit can be read twice, never skipped; the next sync reads the new items.
//!
//! Algolia serves at most the first 1,000 hits of a search (`nbPages` stops there while
//! `nbHits` counts them all). When the last page of a search is reached and `nbHits` says there
//! is more (or the page is full and `exhaustiveNbHits` is false, i.e. `nbHits` is only an
//! estimate), the connector starts a new window: the same search with
//! `created_at_i<=<oldest created_at_i read>`, from page 0. Hits of that boundary second that
//! were already read come back once more (duplicates by `objectID`, never gaps). The request
//! carries the whole position (window and page), as the host resumes by re-sending it.
//!
//! Incremental: the state is a [`Watermark`] on `created_at_i`. Every request of a sync filters
//! `created_at_i>cursor` (or `created_at_i>=<start_date>` on a first run); the cursor becomes
//! the highest `created_at_i` emitted when the stream is complete. Items edited after creation
//! (points, comment counts) are not re-read; `--full-refresh` reads them again.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

use crate::config::Config;

/// JSON pointer to the cursor field.
pub const CURSOR_FIELD: &str = "/created_at_i";

/// The attribute the numeric filters compare.
const CREATED: &str = "created_at_i";

/// Algolia's search-result decoration, not part of an item: dropped from records.
const HIGHLIGHT: &str = "_highlightResult";

/// The first request of the stream with Algolia tag `tag`.
pub fn first_request(config: &Config, tag: &str, state: &Watermark) -> Result<Request> {
    let request = Request::get(url::join(&config.base_url, "api/v1/search_by_date"))
        .query("tags", tag)
        .query_opt("query", config.query.as_deref())
        .query("hitsPerPage", config.hits_per_page)
        .query("page", 0);
    Ok(request.query_opt("numericFilters", filters(config, state, None)?))
}

/// The upper end of a window: `created_at_i<=N` (inclusive) or `created_at_i<N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Upper {
    at: i64,
    inclusive: bool,
}

/// `numericFilters`: the lower bound from the state (or `start_date`) and the window's upper
/// bound, comma-separated (Algolia ANDs them); `None` when there is neither.
fn filters(config: &Config, state: &Watermark, upper: Option<Upper>) -> Result<Option<String>> {
    let lower = match state.cursor_param() {
        Some(cursor) => Some(format!("{CREATED}>{cursor}")),
        None => config
            .start_epoch_secs()?
            .map(|s| format!("{CREATED}>={s}")),
    };
    let upper = upper.map(|u| match u.inclusive {
        true => format!("{CREATED}<={}", u.at),
        false => format!("{CREATED}<{}", u.at),
    });
    let parts: Vec<String> = lower.into_iter().chain(upper).collect();
    Ok((!parts.is_empty()).then(|| parts.join(",")))
}

/// The window's upper bound in `request`, if it has one.
fn upper_of(request: &Request) -> Option<Upper> {
    let filters = request.query_param("numericFilters")?;
    filters.split(',').find_map(|filter| {
        let filter = filter.trim().strip_prefix(CREATED)?;
        let (inclusive, at) = match filter.strip_prefix("<=") {
            Some(at) => (true, at),
            None => (false, filter.strip_prefix('<')?),
        };
        Some(Upper {
            at: at.trim().parse().ok()?,
            inclusive,
        })
    })
}

/// One page of `search_by_date`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchPage {
    /// The items, newest first.
    hits: Vec<Value>,
    /// How many items match the search (all of them, beyond what can be paged).
    nb_hits: u64,
    /// This page's number, from 0.
    page: u64,
    /// How many pages can be read (at most 1,000 hits' worth).
    nb_pages: u64,
    /// Hits per page.
    hits_per_page: u64,
    /// Whether `nbHits` is exact; Algolia estimates it for large result sets.
    #[serde(default = "exact")]
    exhaustive_nb_hits: bool,
}

const fn exact() -> bool {
    true
}

/// Turn one page into records and the request for the next page or window.
pub fn read_page(
    config: &Config,
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    let search: SearchPage = response.ok()?.json()?;
    let mut page = Page::new();
    let mut oldest: Option<i64> = None;
    for hit in &search.hits {
        let Value::Object(fields) = hit else {
            return Err(Error::unexpected_response(format!(
                "a hit is {}, expected an object",
                json::describe(hit)
            )));
        };
        if let Some(created) = fields.get(CREATED).and_then(Value::as_i64) {
            oldest = Some(oldest.map_or(created, |o| o.min(created)));
        }
        if state.admit(hit, CURSOR_FIELD) {
            let mut record = fields.clone();
            record.remove(HIGHLIGHT);
            page.push(&record)?;
        }
    }
    let next = next_request(config, &state, request, &search, oldest)?;
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}

fn next_request(
    config: &Config,
    state: &Watermark,
    request: &Request,
    search: &SearchPage,
    oldest: Option<i64>,
) -> Result<Option<Request>> {
    if search.hits.is_empty() {
        return Ok(None);
    }
    if search.page + 1 < search.nb_pages {
        return Ok(Some(request.clone().replace_query("page", search.page + 1)));
    }
    // What this search let us read: the full pages before this one, and this one.
    let read = search
        .page
        .saturating_mul(search.hits_per_page)
        .saturating_add(u64::try_from(search.hits.len()).unwrap_or(u64::MAX));
    // An estimated `nbHits` may be too low: a full last page is reason enough to look further.
    let full = u64::try_from(search.hits.len()).unwrap_or(u64::MAX) >= search.hits_per_page;
    let more = search.nb_hits > read || (!search.exhaustive_nb_hits && full);
    let (true, Some(oldest)) = (more, oldest) else {
        return Ok(None);
    };
    // The next window ends at the oldest second read, inclusive so that no item of that second
    // is lost; if that is where this window already ended, exclusive, so that it moves on.
    let current = upper_of(request);
    let upper = match current {
        Some(Upper {
            at,
            inclusive: true,
        }) if at == oldest => Upper {
            at: oldest,
            inclusive: false,
        },
        _ => Upper {
            at: oldest,
            inclusive: true,
        },
    };
    if current == Some(upper) {
        return Ok(None);
    }
    let filters = filters(config, state, Some(upper))?.unwrap_or_default();
    Ok(Some(
        request
            .clone()
            .replace_query("numericFilters", filters)
            .replace_query("page", 0),
    ))
}

/// The JSON Schema of a hit: the fields Algolia's HN index has for every kind of item.
pub fn schema() -> Value {
    let maybe_string = json!({"type": ["string", "null"]});
    let maybe_integer = json!({"type": ["integer", "null"]});
    json!({
        "type": "object",
        "required": ["objectID", "created_at_i"],
        "properties": {
            "objectID": {"type": "string", "description": "The Hacker News item id"},
            "created_at": {"type": "string", "format": "date-time"},
            "created_at_i": {"type": "integer", "description": "Seconds since the Unix epoch"},
            "author": {"type": "string"},
            "title": maybe_string.clone(),
            "url": maybe_string.clone(),
            "story_text": maybe_string.clone(),
            "comment_text": maybe_string.clone(),
            "points": maybe_integer.clone(),
            "num_comments": maybe_integer.clone(),
            "story_id": maybe_integer.clone(),
            "parent_id": maybe_integer,
            "story_title": maybe_string,
            "_tags": {"type": "array", "items": {"type": "string"}}
        },
        "additionalProperties": true
    })
}
