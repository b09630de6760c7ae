//! Offset pagination: `limit=N&offset=K`, stopping at the first short page.

use super::{PageInfo, Paginate, count, number_param};
use crate::{Request, Result};

/// `limit`/`offset` pagination. The first request asks for `offset=0`; each next one advances
/// the offset of the request that produced the page by the number of records it returned. A
/// page with fewer than `page_size` records (including an empty one) is the last.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let pages = paginate::Offset::new("limit", "offset", 100);
/// let first = pages.first(Request::get("https://api.example.com/users"));
/// assert_eq!(first.full_url(), "https://api.example.com/users?limit=100&offset=0");
/// let next = pages.next(&PageInfo::new(&first, &Response::new(200), 100))?.unwrap();
/// assert_eq!(next.query_param("offset").as_deref(), Some("100"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    /// Query parameter carrying the page size.
    pub limit_param: String,
    /// Query parameter carrying the offset of the first record.
    pub offset_param: String,
    /// Records asked for per page.
    pub page_size: u64,
}

impl Offset {
    /// Pages of `page_size` records, with the size in `limit_param` and the offset in
    /// `offset_param`.
    pub fn new(
        limit_param: impl Into<String>,
        offset_param: impl Into<String>,
        page_size: u64,
    ) -> Self {
        Self {
            limit_param: limit_param.into(),
            offset_param: offset_param.into(),
            page_size,
        }
    }
}

impl Paginate for Offset {
    fn first(&self, request: Request) -> Request {
        request
            .replace_query(&self.limit_param, self.page_size)
            .replace_query(&self.offset_param, 0)
    }

    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>> {
        let records = count(page.records);
        if records == 0 || records < self.page_size {
            return Ok(None);
        }
        let offset = number_param(page.request, &self.offset_param)?.unwrap_or(0);
        let next = page
            .request
            .clone()
            .replace_query(&self.offset_param, offset.saturating_add(records));
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Response};

    fn pages() -> Offset {
        Offset::new("limit", "skip", 3)
    }

    #[test]
    fn walks_until_a_short_page() {
        let response = Response::new(200);
        let first = pages().first(
            Request::get("https://h/x")
                .query("skip", 99)
                .query("q", "a"),
        );
        assert_eq!(first.full_url(), "https://h/x?q=a&limit=3&skip=0");
        let second = pages()
            .next(&PageInfo::new(&first, &response, 3))
            .unwrap()
            .unwrap();
        assert_eq!(second.query_param("skip").as_deref(), Some("3"));
        let third = pages()
            .next(&PageInfo::new(&second, &response, 3))
            .unwrap()
            .unwrap();
        assert_eq!(third.query_param("skip").as_deref(), Some("6"));
        assert_eq!(
            pages().next(&PageInfo::new(&third, &response, 2)).unwrap(),
            None
        );
        assert_eq!(
            pages().next(&PageInfo::new(&third, &response, 0)).unwrap(),
            None
        );
    }

    #[test]
    fn an_api_returning_more_than_asked_advances_by_what_it_returned() {
        let first = pages().first(Request::get("https://h/x"));
        let next = pages()
            .next(&PageInfo::new(&first, &Response::new(200), 5))
            .unwrap()
            .unwrap();
        assert_eq!(next.query_param("skip").as_deref(), Some("5"));
    }

    #[test]
    fn a_garbled_offset_is_a_bug() {
        let request = Request::get("https://h/x").query("skip", "ten");
        let err = pages()
            .next(&PageInfo::new(&request, &Response::new(200), 3))
            .unwrap_err();
        assert_eq!(
            err,
            Error::ConnectorBug(
                "query parameter `skip` of the request is `ten`, not a whole number".into()
            )
        );
    }
}
