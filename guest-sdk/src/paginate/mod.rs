//! Ready-made pagination strategies. Each is plain data with two decisions: the parameters of
//! the first request ([`Paginate::first`]) and the request for the page after a response
//! ([`Paginate::next`]), or `None` when the stream is complete.
//!
//! The position is read from the request that produced the response, never from the
//! connector's state: after a crash the host re-sends the pending request, so the request is
//! the position.
//!
//! | strategy | asks for | stops when |
//! |---|---|---|
//! | [`Offset`] | `limit=N&offset=K` | a page has fewer than N records |
//! | [`PageNumber`] | `page=P` (and optionally a size) | a page is empty, or short when the size is known |
//! | [`Cursor`] | `cursor=<value from the body>` | the body's next cursor is missing, `null`, `""` or repeats |
//! | [`Keyset`] | `since_id=<key of the page's last record>` | a page is empty, or short when the size is known |
//! | [`LinkHeader`] | the URL in `Link: <…>; rel="next"` | there is no such link |
//! | [`Pagination::None`] | one request | after it |

mod cursor;
mod keyset;
mod link;
mod offset;
mod page_number;

pub use cursor::Cursor;
pub use keyset::Keyset;
pub use link::{Link, LinkHeader, find_link, parse_link_header};
pub use offset::Offset;
pub use page_number::PageNumber;

use serde_json::Value;

use crate::{Error, Request, Response, Result};

/// What a paginator looks at after a response.
#[derive(Debug, Clone, Copy)]
pub struct PageInfo<'a> {
    /// The request that produced the response (it carries the current position).
    pub request: &'a Request,
    /// The response.
    pub response: &'a Response,
    /// The parsed body, when the connector parsed one ([`Cursor`] needs it).
    pub body: Option<&'a Value>,
    /// How many records the API returned on this page, before any filtering.
    pub records: usize,
    /// The last record the API returned on this page, before any filtering ([`Keyset`] needs
    /// it).
    pub last_record: Option<&'a Value>,
}

impl<'a> PageInfo<'a> {
    /// What a paginator sees: the request, its response and the number of records the API
    /// returned (count them before filtering any out).
    pub fn new(request: &'a Request, response: &'a Response, records: usize) -> Self {
        Self {
            request,
            response,
            body: None,
            records,
            last_record: None,
        }
    }

    /// Add the parsed body.
    pub fn with_body(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Add the last record the API returned on this page (before any filtering).
    pub fn with_last_record(mut self, record: &'a Value) -> Self {
        self.last_record = Some(record);
        self
    }
}

/// A pagination strategy.
pub trait Paginate {
    /// Add the parameters of the first page to `request`.
    fn first(&self, request: Request) -> Request;

    /// The request for the page after `page`, or `None` when the stream is complete.
    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>>;
}

/// Any of the strategies in this module, chosen at run time (e.g. from config).
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let pages = Pagination::Offset(paginate::Offset::new("limit", "offset", 2));
/// let first = pages.first(Request::get("https://api.example.com/items"));
/// assert_eq!(first.query_param("offset").as_deref(), Some("0"));
///
/// let full = Response::new(200);
/// let next = pages.next(&PageInfo::new(&first, &full, 2))?.expect("a full page has a successor");
/// assert_eq!(next.query_param("offset").as_deref(), Some("2"));
/// assert_eq!(pages.next(&PageInfo::new(&next, &full, 1))?, None, "a short page is the last");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagination {
    /// One request, no pagination.
    None,
    /// `limit`/`offset` parameters.
    Offset(Offset),
    /// A page-number parameter.
    PageNumber(PageNumber),
    /// A cursor read from the body.
    Cursor(Cursor),
    /// The `Link` response header.
    Link(LinkHeader),
    /// The key of the page's last record.
    Keyset(Keyset),
}

impl Paginate for Pagination {
    fn first(&self, request: Request) -> Request {
        match self {
            Self::None => request,
            Self::Offset(offset) => offset.first(request),
            Self::PageNumber(pages) => pages.first(request),
            Self::Cursor(cursor) => cursor.first(request),
            Self::Link(link) => link.first(request),
            Self::Keyset(keyset) => keyset.first(request),
        }
    }

    fn next(&self, page: &PageInfo<'_>) -> Result<Option<Request>> {
        match self {
            Self::None => Ok(None),
            Self::Offset(offset) => offset.next(page),
            Self::PageNumber(pages) => pages.next(page),
            Self::Cursor(cursor) => cursor.next(page),
            Self::Link(link) => link.next(page),
            Self::Keyset(keyset) => keyset.next(page),
        }
    }
}

/// The whole-number value of query parameter `name` of `request`, if it has one.
fn number_param(request: &Request, name: &str) -> Result<Option<u64>> {
    match request.query_param(name) {
        None => Ok(None),
        Some(value) => value.parse().map(Some).map_err(|_| {
            Error::bug(format!(
                "query parameter `{name}` of the request is `{value}`, not a whole number"
            ))
        }),
    }
}

/// `records` as a `u64` (lossless on every target Rust supports).
fn count(records: usize) -> u64 {
    u64::try_from(records).unwrap_or(u64::MAX)
}
