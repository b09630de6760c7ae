//! Following the next page named in a response header.
//!
//! Two shapes are common. Some APIs send the whole next URL (`X-Next-Page-Url:
//! https://api.example.com/items?after=abc`): the next request goes there, relative URLs
//! resolved against the URL that answered, with the headers and credential of the request
//! before it; the URL carries the whole query. Others send a token (`X-Next-Page: 3`, Azure
//! DevOps' `x-ms-continuationtoken: …`): the next request is the same request with the token
//! in `next_param`. Either way an absent or empty header ends the stream, and so does a next
//! page equal to the current one (an API repeating itself would otherwise loop forever).

use sluice_sdk::prelude::*;
use sluice_sdk::url;

use crate::config::Config;

/// The request for the page after `response`, or `None` on the last page.
pub fn next_request(
    config: &Config,
    request: &Request,
    response: &Response,
) -> Result<Option<Request>> {
    let Some(value) = response
        .header(&config.next_header)
        .map(str::trim)
        .filter(|value| !value.is_empty())
    else {
        return Ok(None);
    };
    match &config.next_param {
        Some(param) => {
            if request.query_param(param).as_deref() == Some(value) {
                return Ok(None);
            }
            Ok(Some(request.clone().replace_query(param, value)))
        }
        None => {
            let sent = request.full_url();
            let base = match response.url.is_empty() {
                true => sent.as_str(),
                false => response.url.as_str(),
            };
            let target = url::resolve(base, value);
            if !target.starts_with("http://") && !target.starts_with("https://") {
                return Err(Error::unexpected_response(format!(
                    "the `{}` header is `{value}`, not an http(s) URL; if it holds a token, set `next_param`",
                    config.next_header
                )));
            }
            if target == sent {
                return Ok(None);
            }
            let mut next = request.clone();
            next.url = target;
            next.query.clear();
            Ok(Some(next))
        }
    }
}
