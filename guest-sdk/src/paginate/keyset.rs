//! Keyset pagination: the next page starts after the last record of this one
//! (`?since_id=<id of the last record>`).

use super::{PageInfo, Paginate, count};
use crate::{Error, Request, Result, json};

/// Keyset ("seek") pagination: the next request sends the value at JSON pointer `field` of the
/// page's **last** record as query parameter `param` (e.g. `since_id=<last id>`), so each page
/// asks for the records after the previous one. The first request is the request as given (plus
/// `limit_param=page_size` when both are set). An empty page is the last, and so is a page with
/// fewer than `page_size` records when the size is known.
///
/// # When it is exact
///
/// Keyset pagination loses nothing and repeats nothing only if `field` is **unique** and the
/// API returns records **sorted by it**, with `param` meaning "strictly after": ids with
/// `since_id`, or timestamps whose values are all distinct with an `updated_after`-style
/// filter. If several records share one value (typically an `updated_at`) and a page ends among
/// them, a strictly-after filter skips the rest of them: those records are lost. For shared
/// timestamps, page with [`Offset`](super::Offset) or [`PageNumber`](super::PageNumber)
/// inside one run and make the *run* incremental with a lookback and a tie-breaker
/// ([`crate::incremental::Boundary`]).
///
/// The connector must hand the page's last record to the paginator
/// ([`PageInfo::with_last_record`]), taken before any filtering.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let pages = paginate::Keyset::new("since_id", "/id").with_limit_param("limit", 2);
/// let first = pages.first(Request::get("https://api.example.com/items"));
/// assert_eq!(first.full_url(), "https://api.example.com/items?limit=2");
///
/// let records = [json!({"id": 7}), json!({"id": 9})];
/// let ok = Response::new(200);
/// let page = PageInfo::new(&first, &ok, records.len()).with_last_record(&records[1]);
/// let next = pages.next(&page)?.unwrap();
/// assert_eq!(next.full_url(), "https://api.example.com/items?limit=2&since_id=9");
///
/// let short = PageInfo::new(&next, &ok, 1).with_last_record(&records[0]);
/// assert_eq!(pages.next(&short)?, None, "a short page is the last");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    /// Query parameter carrying the key of the last record seen (e.g. `since_id`).
    pub param: String,
    /// JSON pointer to the key in a record (e.g. `/id`).
    pub field: String,
    /// Query parameter carrying the page size, if the API takes one.
    pub limit_param: Option<String>,
    /// Records per page, when known: a shorter page is the last. Unknown, only an empty page
    /// ends the stream (one more request).
    pub page_size: Option<u64>,
}

impl Keyset {
    /// Send the value at JSON pointer `field` of the last record as query parameter `param`.
    pub fn new(param: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            field: field.into(),
            limit_param: None,
            page_size: None,
        }
    }

    /// The API returns at most `size` records per page, without being told.
    pub fn with_page_size(mut self, size: u64) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Ask for pages of `size` records with query parameter `param`.
    pub fn with_limit_param(mut self, param: impl Into<String>, size: u64) -> Self {
        self.limit_param = Some(param.into());
        self.page_size = Some(size);
        self
    }
}

impl Paginate for Keyset {
    fn first(&self, request: Request) -> Request {
        match (&self.limit_param, self.page_size) {
            (Some(param), Some(size)) => request.replace_query(param, size),
            _ => request,
        }
    }

    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>> {
        let records = count(page.records);
        if records == 0 || self.page_size.is_some_and(|size| records < size) {
            return Ok(None);
        }
        let last = page.last_record.ok_or_else(|| {
            Error::bug(
                "keyset pagination needs the page's last record: use `PageInfo::with_last_record`",
            )
        })?;
        let key = match json::pointer(last, &self.field) {
            None | Some(serde_json::Value::Null) => {
                return Err(Error::unexpected_response(format!(
                    "the last record of the page has no `{}`; keyset pagination on `{}` needs it in every record",
                    self.field, self.param
                )));
            }
            Some(value @ (serde_json::Value::String(_) | serde_json::Value::Number(_))) => {
                json::query_value(value).unwrap_or_default()
            }
            Some(other) => {
                return Err(Error::unexpected_response(format!(
                    "`{}` of the last record of the page is {}, expected a string or a number",
                    self.field,
                    json::describe(other)
                )));
            }
        };
        if page.request.query_param(&self.param).as_deref() == Some(key.as_str()) {
            return Err(Error::unexpected_response(format!(
                "the page sent with `{param}={key}` ends with a record whose `{field}` is {key} again: \
                 the API did not move past it (does it filter by `{param}`, strictly after, sorted by `{field}`?)",
                param = self.param,
                field = self.field,
            )));
        }
        Ok(Some(page.request.clone().replace_query(&self.param, key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response;
    use serde_json::{Value, json};

    fn pages() -> Keyset {
        Keyset::new("since_id", "/id").with_limit_param("limit", 3)
    }

    fn next(pages: &Keyset, request: &Request, records: &[Value]) -> Result<Option<Request>> {
        let response = Response::new(200);
        let mut page = PageInfo::new(request, &response, records.len());
        if let Some(last) = records.last() {
            page = page.with_last_record(last);
        }
        pages.next(&page)
    }

    fn ids(ids: &[u64]) -> Vec<Value> {
        ids.iter()
            .map(|id| json!({"id": id, "name": "x"}))
            .collect()
    }

    #[test]
    fn first_request_is_as_given_plus_the_limit() {
        let given = Request::get("https://h/x")
            .query("q", "a")
            .query("limit", 9);
        assert_eq!(
            pages().first(given.clone()).full_url(),
            "https://h/x?q=a&limit=3"
        );
        // No limit parameter: the request as given, even with a known size.
        let plain = Keyset::new("since_id", "/id").with_page_size(3);
        assert_eq!(plain.first(given.clone()), given);
        // A saved position (e.g. an incremental cursor) in the first request is kept.
        let resumed = pages().first(Request::get("https://h/x").query("since_id", 40));
        assert_eq!(resumed.full_url(), "https://h/x?since_id=40&limit=3");
    }

    #[test]
    fn walks_by_the_last_key_until_a_short_page() {
        let first = pages().first(Request::get("https://h/x"));
        let second = next(&pages(), &first, &ids(&[1, 2, 5])).unwrap().unwrap();
        assert_eq!(second.full_url(), "https://h/x?limit=3&since_id=5");
        let third = next(&pages(), &second, &ids(&[6, 8, 9])).unwrap().unwrap();
        assert_eq!(third.full_url(), "https://h/x?limit=3&since_id=9");
        assert_eq!(next(&pages(), &third, &ids(&[10, 11])).unwrap(), None);
        assert_eq!(next(&pages(), &third, &[]).unwrap(), None);
    }

    #[test]
    fn without_a_page_size_only_an_empty_page_ends() {
        let pages = Keyset::new("after", "/meta/key");
        let first = pages.first(Request::get("https://h/x"));
        let one = [json!({"meta": {"key": "2024-01-01T00:00:00Z"}})];
        let second = next(&pages, &first, &one).unwrap().unwrap();
        assert_eq!(
            second.query_param("after").as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(next(&pages, &second, &[]).unwrap(), None);
    }

    #[test]
    fn a_last_record_without_a_usable_key_is_an_unexpected_response() {
        let request = Request::get("https://h/x");
        let full = |last: Value| vec![json!({"id": 1}), json!({"id": 2}), last];
        assert_eq!(
            next(&pages(), &request, &full(json!({"name": "no id"}))).unwrap_err(),
            Error::UnexpectedResponse(
                "the last record of the page has no `/id`; keyset pagination on `since_id` needs it in every record"
                    .into()
            )
        );
        assert!(matches!(
            next(&pages(), &request, &full(json!({"id": null}))).unwrap_err(),
            Error::UnexpectedResponse(_)
        ));
        assert_eq!(
            next(&pages(), &request, &full(json!({"id": [3]}))).unwrap_err(),
            Error::UnexpectedResponse(
                "`/id` of the last record of the page is an array, expected a string or a number"
                    .into()
            )
        );
    }

    #[test]
    fn an_api_ignoring_the_key_is_an_error_not_a_loop() {
        let request = Request::get("https://h/x").query("since_id", 3);
        let err = next(&pages(), &request, &ids(&[1, 2, 3])).unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedResponse(m) if m.contains("did not move past it")),
            "{err:?}"
        );
    }

    #[test]
    fn a_full_page_without_its_last_record_is_a_bug() {
        let request = Request::get("https://h/x");
        let err = pages()
            .next(&PageInfo::new(&request, &Response::new(200), 3))
            .unwrap_err();
        assert!(matches!(err, Error::ConnectorBug(_)), "{err:?}");
        // A short page needs no last record: it is the end either way.
        assert_eq!(
            pages()
                .next(&PageInfo::new(&request, &Response::new(200), 2))
                .unwrap(),
            None
        );
    }

    #[test]
    fn pagination_dispatches_to_keyset() {
        let strategy = super::super::Pagination::Keyset(pages());
        let first = strategy.first(Request::get("https://h/x"));
        assert_eq!(first.query_param("limit").as_deref(), Some("3"));
        let second = next_of(&strategy, &first, &ids(&[4, 5, 6]));
        assert_eq!(second.query_param("since_id").as_deref(), Some("6"));
    }

    fn next_of(
        strategy: &super::super::Pagination,
        request: &Request,
        records: &[Value],
    ) -> Request {
        let response = Response::new(200);
        let page = PageInfo::new(request, &response, records.len())
            .with_last_record(records.last().unwrap());
        strategy.next(&page).unwrap().unwrap()
    }
}
