//! Reading one stream: the first request, and what a response turns into.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

use crate::config::{Config, StreamConfig};

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
pub fn read_page(
    stream: &StreamConfig,
    mut state: Watermark,
    request: &Request,
    response: &Response,
) -> Result<Page<Watermark>> {
    let body = response.ok()?.json_value()?;
    let records = json::records_at(&body, &stream.records)?;
    let mut info = PageInfo::new(request, response, records.len()).with_body(&body);
    if let Some(last) = records.last() {
        info = info.with_last_record(last);
    }
    let next = stream.pagination.strategy().next(&info)?;

    let mut page = Page::new();
    let boundary = stream.boundary();
    for record in records {
        let new = match &stream.incremental {
            Some(incremental) => state.admit_at(record, &incremental.field, &boundary),
            None => true,
        };
        if new {
            page.push_value(record).map_err(|_| {
                Error::unexpected_response(format!(
                    "a record at `{}` is {}, expected an object",
                    stream.records,
                    json::describe(record)
                ))
            })?;
        }
    }
    if next.is_none() {
        state.finish();
    }
    Ok(page.with_state(state).with_next(next))
}
