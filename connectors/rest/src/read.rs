//! Reading one stream: the first request, and what a response turns into.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

use crate::config::{Config, PaginationConfig, StreamConfig};

/// The first request of `stream`: its URL, static params and headers, the saved cursor when
/// the stream is incremental, and the first page's parameters.
pub fn first_request(config: &Config, stream: &StreamConfig, state: &Watermark) -> Request {
    let mut request = Request::get(url::join(&config.base_url, &stream.path))
        .with_authentication(config.auth)
        .headers(config.headers.clone());
    if request.header_value("accept").is_none() {
        request = request.header("accept", "application/json");
    }
    for (name, value) in &stream.params {
        // `Config::validate` admits only scalars, which all have a query form.
        if let Some(value) = json::query_value(value) {
            request = request.query(name.as_str(), value);
        }
    }
    if let (Some(incremental), Some(cursor)) =
        (&stream.incremental, state.filter_param(&stream.boundary()))
    {
        request = request.replace_query(&incremental.param, cursor);
    }
    stream.pagination.strategy().first(request)
}

/// Turn the response to `request` into a page.
///
/// Records come from the array at `stream.records`. In an incremental stream, a record whose
/// field is below the cursor saved by the last complete run (minus the lookback) is dropped,
/// and one exactly at it is dropped only if its tie-breaker key was emitted at that value
/// before (see [`sluice_sdk::incremental::Boundary`]); the state carries the highest value
/// emitted so far and becomes the new cursor when the last page is read.
///
/// The body is parsed once and each record is copied to the page as the API sent it
/// ([`Response::json_records`], [`Page::push_raw`]): only the fields the connector reads (the
/// incremental field and tie-breaker, the keyset field of the last record) are parsed.
pub fn read_page(
    stream: &StreamConfig,
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    let response = response.ok()?;
    let body = response.json_records(&stream.records)?;
    let records = &body.records;
    let pagination = stream.pagination.strategy();

    // The paginator sees the body without the records, unless its cursor lies among them.
    let whole;
    let mut info = PageInfo::new(request, response, records.len());
    info = match next_cursor_within_records(stream) {
        true => {
            whole = response.json_value()?;
            info.with_body(&whole)
        }
        false => info.with_body(&body.rest),
    };
    let last;
    if let (Pagination::Keyset(_), Some(record)) = (&pagination, records.last()) {
        last = parse_record(record)?;
        info = info.with_last_record(&last);
    }
    let next = pagination.next(&info)?;

    let mut page = Page::with_capacity(response.body.len());
    let boundary = stream.boundary();
    let cursor = stream.incremental.as_ref().map(|incremental| {
        let field = json::Pointer::new(&incremental.field);
        let tie_breaker = boundary.tie_breaker.as_deref().map(json::Pointer::new);
        (field, tie_breaker)
    });
    for record in records {
        let new = match &cursor {
            Some((field, Some(tie_breaker))) => {
                let [value, key] = json::values_at(record.get(), [field, tie_breaker])?;
                state.admit_found_at(value.as_ref(), key, &boundary)
            }
            Some((field, None)) => {
                let [value] = json::values_at(record.get(), [field])?;
                state.admit_found_at(value.as_ref(), None, &boundary)
            }
            None => true,
        };
        if new {
            page.push_raw(record).map_err(|_| {
                Error::unexpected_response(format!(
                    "a record at `{}` is {}, expected an object",
                    stream.records,
                    json::describe_raw(record)
                ))
            })?;
        }
    }
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}

/// Whether the cursor of cursor pagination is read from inside the records, which
/// [`RawRecords::rest`](json::RawRecords::rest) holds as an empty array.
fn next_cursor_within_records(stream: &StreamConfig) -> bool {
    let PaginationConfig::Cursor { next_cursor, .. } = &stream.pagination else {
        return false;
    };
    // Both are checked pointers: prefixes of tokens are prefixes of the text up to a `/`.
    let records = stream.records.as_str();
    records.is_empty()
        || next_cursor
            .strip_prefix(records)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// One raw record as a `Value`: valid JSON already, unless nested too deeply to build.
fn parse_record(record: &json::RawValue) -> Result<Value> {
    serde_json::from_str(record.get())
        .map_err(|error| Error::unexpected_response(format!("a record is not valid JSON: {error}")))
}
