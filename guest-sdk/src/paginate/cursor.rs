//! Cursor pagination: the body says where the next page starts.

use super::{PageInfo, Paginate};
use crate::{Error, Request, Result, json};

/// Cursor-from-body pagination: the next request sends the value found at JSON pointer
/// `next_cursor` in the body as query parameter `cursor_param`. A missing, `null` or empty
/// cursor ends the stream, and so does a cursor equal to the one just sent (an API that
/// repeats itself would otherwise loop forever).
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let pages = paginate::Cursor::new("cursor", "/meta/next");
/// let first = pages.first(Request::get("https://api.example.com/events"));
/// let body = json!({"data": [{"id": 1}], "meta": {"next": "abc"}});
/// let ok = Response::new(200);
/// let next = pages.next(&PageInfo::new(&first, &ok, 1).with_body(&body))?.unwrap();
/// assert_eq!(next.full_url(), "https://api.example.com/events?cursor=abc");
///
/// let last = json!({"data": [], "meta": {"next": null}});
/// assert_eq!(pages.next(&PageInfo::new(&next, &ok, 0).with_body(&last))?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Query parameter carrying the cursor.
    pub cursor_param: String,
    /// JSON pointer to the next cursor in the response body.
    pub next_cursor: String,
}

impl Cursor {
    /// Send the cursor found at JSON pointer `next_cursor` as query parameter `cursor_param`.
    pub fn new(cursor_param: impl Into<String>, next_cursor: impl Into<String>) -> Self {
        Self {
            cursor_param: cursor_param.into(),
            next_cursor: next_cursor.into(),
        }
    }
}

impl Paginate for Cursor {
    fn first(&self, request: Request) -> Request {
        request
    }

    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>> {
        let body = page.body.ok_or_else(|| {
            Error::bug("cursor pagination needs the parsed body: use `PageInfo::with_body`")
        })?;
        let cursor = match json::pointer(body, &self.next_cursor) {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(value @ (serde_json::Value::String(_) | serde_json::Value::Number(_))) => {
                json::query_value(value).unwrap_or_default()
            }
            Some(other) => {
                return Err(Error::unexpected_response(format!(
                    "the next cursor at `{}` is {}, expected a string or a number",
                    self.next_cursor,
                    json::describe(other)
                )));
            }
        };
        if cursor.is_empty()
            || page.request.query_param(&self.cursor_param).as_deref() == Some(&cursor)
        {
            return Ok(None);
        }
        Ok(Some(
            page.request
                .clone()
                .replace_query(&self.cursor_param, cursor),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response;
    use serde_json::json;

    fn next(body: serde_json::Value, request: &Request) -> Result<Option<Request>> {
        Cursor::new("after", "/next")
            .next(&PageInfo::new(request, &Response::new(200), 1).with_body(&body))
    }

    #[test]
    fn stops_on_missing_null_empty_or_repeated_cursor() {
        let request = Request::get("https://h/x").query("after", "c1");
        assert_eq!(next(json!({}), &request).unwrap(), None);
        assert_eq!(next(json!({"next": null}), &request).unwrap(), None);
        assert_eq!(next(json!({"next": ""}), &request).unwrap(), None);
        assert_eq!(next(json!({"next": "c1"}), &request).unwrap(), None);
    }

    #[test]
    fn follows_string_and_number_cursors() {
        let request = Request::get("https://h/x").query("after", "c1");
        let second = next(json!({"next": "c2"}), &request).unwrap().unwrap();
        assert_eq!(second.query, vec![("after".to_owned(), "c2".to_owned())]);
        let third = next(json!({"next": 17}), &second).unwrap().unwrap();
        assert_eq!(third.query_param("after").as_deref(), Some("17"));
    }

    #[test]
    fn rejects_structured_cursors_and_missing_bodies() {
        let request = Request::get("https://h/x");
        assert_eq!(
            next(json!({"next": {"a": 1}}), &request).unwrap_err(),
            Error::UnexpectedResponse(
                "the next cursor at `/next` is an object, expected a string or a number".into()
            )
        );
        let without_body = Cursor::new("after", "/next")
            .next(&PageInfo::new(&request, &Response::new(200), 1))
            .unwrap_err();
        assert!(matches!(without_body, Error::ConnectorBug(_)));
    }
}
