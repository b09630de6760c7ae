//! Requests and responses as data. A connector never sends anything: it *returns* a
//! [`Request`] and is later handed the [`Response`] the host got for it.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result, json, url};

/// How many characters of a body an error message quotes.
const BODY_EXCERPT_CHARS: usize = 200;

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
}

impl Method {
    /// The method's name as sent on the wire (`"GET"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request for the host to send.
///
/// The host checks it against the connection's egress policy, applies the credential when
/// [`authenticate`](Request::authenticate) is set, and handles retries, rate limits, timeouts
/// and size caps. Query pairs are sent raw here and encoded by the host.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// let request = Request::get("https://api.github.com/repos/rust-lang/rust/issues")
///     .query("state", "all")
///     .query("per_page", 100)
///     .header("Accept", "application/vnd.github+json")
///     .authenticated();
/// assert_eq!(request.query_param("per_page").as_deref(), Some("100"));
/// assert!(request.authenticate);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Absolute `http` or `https` URL; it may carry a query string of its own.
    pub url: String,
    /// Query pairs appended to the URL, in order.
    pub query: Vec<(String, String)>,
    /// Extra headers. `host`, `authorization` and credential headers are the host's.
    pub headers: Vec<(String, String)>,
    /// Optional body.
    pub body: Option<Vec<u8>>,
    /// Whether the host should apply the connection's credential.
    pub authenticate: bool,
    /// Whether repeating this request is safe even if its method is not idempotent.
    pub idempotent: bool,
}

impl Request {
    /// A request with no query pairs, headers or body, not authenticated and not marked
    /// idempotent.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            authenticate: false,
            idempotent: false,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Append a query pair.
    pub fn query(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }

    /// Append a query pair when there is a value; `None` leaves the request unchanged.
    pub fn query_opt(self, name: impl Into<String>, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    /// Set query parameter `name` to `value`, removing it from earlier pairs and from the URL's
    /// own query string.
    pub fn replace_query(mut self, name: &str, value: impl ToString) -> Self {
        if self.url.contains('?') {
            self.url = url::remove_query_param(&self.url, name);
        }
        self.query.retain(|(key, _)| key != name);
        self.query.push((name.to_owned(), value.to_string()));
        self
    }

    /// Append a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Append several headers.
    pub fn headers<K, V>(mut self, headers: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.headers
            .extend(headers.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Ask the host to apply the connection's credential. Whether there is one, and what kind,
    /// is the operator's choice; the connector never sees its value.
    pub fn authenticated(mut self) -> Self {
        self.authenticate = true;
        self
    }

    /// Set whether the host applies the connection's credential.
    pub fn with_authentication(mut self, authenticate: bool) -> Self {
        self.authenticate = authenticate;
        self
    }

    /// Declare that sending this request twice is harmless (e.g. a `POST` search), so the host
    /// may retry it.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Set a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Set a JSON body and the `content-type: application/json` header.
    pub fn json_body(self, body: &impl Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body)?;
        Ok(self.header("content-type", "application/json").body(bytes))
    }

    /// The value of query parameter `name`: the last matching query pair, else the last
    /// occurrence in the URL's own query string (percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| Cow::Borrowed(value.as_str()))
            .or_else(|| url::query_param(&self.url, name).map(Cow::Owned))
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The URL with the query pairs appended and percent-encoded, as the host will send it.
    pub fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let encoded: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", url::percent_encode(k), url::percent_encode(v)))
            .collect();
        let separator = match self.url.contains('?') {
            true if self.url.ends_with('?') || self.url.ends_with('&') => "",
            true => "&",
            false => "?",
        };
        format!("{}{separator}{}", self.url, encoded.join("&"))
    }
}

/// The response the host got for a request: it has already followed allowed redirects,
/// decompressed the body and checked its size.
///
/// The `with_*` builders exist for tests (see [`crate::testing`]).
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let response = Response::new(200)
///     .with_header("Link", "<https://api.example.com/items?page=2>; rel=\"next\"")
///     .with_json(&json!({"items": [{"id": 1}]}));
/// let body: Value = response.ok()?.json()?;
/// assert_eq!(json::pointer(&body, "/items/0/id"), Some(&json!(1)));
/// assert!(response.header("link").is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers with lowercase names; credential headers removed by the host.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// The URL that answered, after redirects.
    pub url: String,
}

impl Response {
    /// A response with `status`, no headers, an empty body and an empty URL.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            url: String::new(),
        }
    }

    /// Add a header (the name is lowercased, as the host does).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Replace the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Replace the body with `value` as compact JSON and set `content-type: application/json`.
    pub fn with_json(self, value: &Value) -> Self {
        self.with_header("content-type", "application/json")
            .with_body(value.to_string())
    }

    /// Set the URL that answered.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of the headers called `name` (case-insensitive), in order. Use this for
    /// headers that may repeat, such as `link`.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Ok(self)` for a 2xx status, otherwise [`Error::UnexpectedResponse`] quoting the status,
    /// the URL and the start of the body.
    pub fn ok(&self) -> Result<&Self> {
        if self.is_success() {
            return Ok(self);
        }
        let at = match self.url.is_empty() {
            true => String::new(),
            false => format!(" from `{}`", self.url),
        };
        Err(Error::unexpected_response(format!(
            "HTTP {}{at}: {}",
            self.status,
            self.body_excerpt()
        )))
    }

    /// Parse the body as JSON into `T`; a parse failure is an
    /// [`Error::UnexpectedResponse`] that quotes the start of the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|error| self.not_json(&error))
    }

    /// Parse the body as any JSON value.
    pub fn json_value(&self) -> Result<Value> {
        self.json()
    }

    /// Parse the body once into its records, the array at JSON pointer `pointer` (`""` for a
    /// body that is the array), each kept as its raw JSON text for [`Page::push_raw`], and the
    /// rest of the body as a [`Value`]. The fast way to read records: no `Value` is built for
    /// them (read single fields with [`json::values_at`]).
    ///
    /// Errors are those of [`Response::json_value`] followed by [`json::records_at`], with the
    /// same messages. In [`RawRecords::rest`](json::RawRecords::rest) the records are an empty
    /// array; a pointer into them finds nothing there.
    ///
    /// [`Page::push_raw`]: crate::Page::push_raw
    ///
    /// ```
    /// use sluice_sdk::prelude::*;
    ///
    /// # fn main() -> Result<()> {
    /// let response = Response::new(200)
    ///     .with_body(r#"{"data": [{"id": 1, "b": 2}, {"id": 2}], "meta": {"next": "c2"}}"#);
    /// let body = response.json_records("/data")?;
    /// assert_eq!(body.records[0].get(), r#"{"id": 1, "b": 2}"#);
    /// assert_eq!(json::pointer(&body.rest, "/meta/next"), Some(&json!("c2")));
    /// assert!(response.json_records("/items").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn json_records(&self, pointer: &str) -> Result<json::RawRecords<'_>> {
        json::split_records(&self.body, pointer).map_err(|error| self.not_json(&error))?
    }

    /// The error for a body that does not parse as expected.
    fn not_json(&self, error: &serde_json::Error) -> Error {
        Error::unexpected_response(format!(
            "the body is not the expected JSON ({error}): {}",
            self.body_excerpt()
        ))
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|error| Error::unexpected_response(format!("the body is not UTF-8: {error}")))
    }

    /// The first characters of the body, for error messages (lossy UTF-8, whitespace
    /// collapsed, `…` when cut).
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return "(empty body)".to_owned();
        }
        match collapsed.char_indices().nth(BODY_EXCERPT_CHARS) {
            Some((cut, _)) => format!("{}…", &collapsed[..cut]),
            None => collapsed,
        }
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_param_prefers_pairs_over_the_url() {
        let request = Request::get("https://h/x?page=1&q=a%20b")
            .query("page", 2)
            .query("page", 3);
        assert_eq!(request.query_param("page").as_deref(), Some("3"));
        assert_eq!(request.query_param("q").as_deref(), Some("a b"));
        let replaced = request.replace_query("page", 9);
        assert_eq!(replaced.query, vec![("page".to_owned(), "9".to_owned())]);
    }

    #[test]
    fn full_url_encodes_pairs() {
        let request = Request::get("https://h/x?a=1").query("since", "2024-01-01T00:00:00+02:00");
        assert_eq!(
            request.full_url(),
            "https://h/x?a=1&since=2024-01-01T00%3A00%3A00%2B02%3A00"
        );
        assert_eq!(
            Request::get("https://h/").query("a", "b c").full_url(),
            "https://h/?a=b%20c"
        );
    }

    #[test]
    fn non_success_quotes_status_and_body() {
        let response = Response::new(503)
            .with_url("https://h/x")
            .with_body("  upstream\n\n busy ");
        assert_eq!(
            response.ok().unwrap_err(),
            Error::UnexpectedResponse("HTTP 503 from `https://h/x`: upstream busy".into())
        );
        let long = Response::new(500).with_body("x".repeat(500));
        assert_eq!(
            long.ok().unwrap_err().message().chars().count(),
            "HTTP 500: ".len() + BODY_EXCERPT_CHARS + 1
        );
    }

    #[test]
    fn json_errors_are_unexpected_responses() {
        let response = Response::new(200).with_body("<html>");
        let err = response.json_value().unwrap_err();
        assert!(
            matches!(err, Error::UnexpectedResponse(ref m) if m.ends_with(": <html>")),
            "{err}"
        );
        let ok = Response::new(200).with_json(&json!([1]));
        assert_eq!(ok.json::<Vec<u8>>().unwrap(), vec![1]);
        assert_eq!(ok.header("Content-Type"), Some("application/json"));
    }

    #[test]
    fn json_body_sets_content_type() {
        let request = Request::post("https://h/search")
            .json_body(&json!({"q": 1}))
            .unwrap()
            .idempotent();
        assert_eq!(
            request.header_value("Content-Type"),
            Some("application/json")
        );
        assert_eq!(request.body.as_deref(), Some(&br#"{"q":1}"#[..]));
        assert!(request.idempotent);
    }
}
