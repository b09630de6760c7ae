//! Page-number pagination: `page=1`, `page=2`, ... until an empty or short page.

use super::{PageInfo, Paginate, count, number_param};
use crate::{Request, Result};

/// Page-number pagination. The first request asks for `start_page` (1 unless set); each next
/// one asks for the page after the request's. An empty page is the last; so is a page shorter
/// than `page_size` when the size is known.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let pages = paginate::PageNumber::new("page").with_size_param("per_page", 50);
/// let first = pages.first(Request::get("https://api.example.com/items"));
/// assert_eq!(first.full_url(), "https://api.example.com/items?page=1&per_page=50");
/// let ok = Response::new(200);
/// let next = pages.next(&PageInfo::new(&first, &ok, 50))?.unwrap();
/// assert_eq!(next.query_param("page").as_deref(), Some("2"));
/// assert_eq!(pages.next(&PageInfo::new(&next, &ok, 49))?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageNumber {
    /// Query parameter carrying the page number.
    pub page_param: String,
    /// Query parameter carrying the page size, if the API takes one.
    pub size_param: Option<String>,
    /// Records per page, if known: a shorter page is the last.
    pub page_size: Option<u64>,
    /// Number of the first page.
    pub start_page: u64,
}

impl PageNumber {
    /// Pages numbered from 1 in `page_param`, of unknown size (only an empty page ends).
    pub fn new(page_param: impl Into<String>) -> Self {
        Self {
            page_param: page_param.into(),
            size_param: None,
            page_size: None,
            start_page: 1,
        }
    }

    /// Ask for `page_size` records per page in `size_param`.
    pub fn with_size_param(mut self, size_param: impl Into<String>, page_size: u64) -> Self {
        self.size_param = Some(size_param.into());
        self.page_size = Some(page_size);
        self
    }

    /// Declare the API's fixed page size (without sending it), so a short page ends.
    pub fn with_page_size(mut self, page_size: u64) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Number the first page `start_page` (e.g. 0).
    pub fn with_start_page(mut self, start_page: u64) -> Self {
        self.start_page = start_page;
        self
    }
}

impl Paginate for PageNumber {
    fn first(&self, request: Request) -> Request {
        let request = request.replace_query(&self.page_param, self.start_page);
        match (&self.size_param, self.page_size) {
            (Some(size_param), Some(size)) => request.replace_query(size_param, size),
            _ => request,
        }
    }

    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>> {
        let records = count(page.records);
        let short = self.page_size.is_some_and(|size| records < size);
        if records == 0 || short {
            return Ok(None);
        }
        let current = number_param(page.request, &self.page_param)?.unwrap_or(self.start_page);
        let next = page
            .request
            .clone()
            .replace_query(&self.page_param, current.saturating_add(1));
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response;

    #[test]
    fn unknown_size_stops_only_on_an_empty_page() {
        let pages = PageNumber::new("p").with_start_page(0);
        let ok = Response::new(200);
        let first = pages.first(Request::get("https://h/x"));
        assert_eq!(first.full_url(), "https://h/x?p=0");
        let second = pages.next(&PageInfo::new(&first, &ok, 1)).unwrap().unwrap();
        assert_eq!(second.query_param("p").as_deref(), Some("1"));
        assert_eq!(pages.next(&PageInfo::new(&second, &ok, 0)).unwrap(), None);
    }

    #[test]
    fn known_size_without_parameter_stops_on_a_short_page() {
        let pages = PageNumber::new("page").with_page_size(30);
        let ok = Response::new(200);
        let first = pages.first(Request::get("https://h/x"));
        assert_eq!(first.full_url(), "https://h/x?page=1");
        assert!(
            pages
                .next(&PageInfo::new(&first, &ok, 30))
                .unwrap()
                .is_some()
        );
        assert_eq!(pages.next(&PageInfo::new(&first, &ok, 29)).unwrap(), None);
    }

    #[test]
    fn page_in_the_url_is_advanced_too() {
        let pages = PageNumber::new("page");
        let request = Request::get("https://h/x?page=4");
        let next = pages
            .next(&PageInfo::new(&request, &Response::new(200), 10))
            .unwrap()
            .unwrap();
        assert_eq!(next.full_url(), "https://h/x?page=5");
        assert_eq!(next.query_param("page").as_deref(), Some("5"));
    }
}
