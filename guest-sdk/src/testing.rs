//! Drive a [`Connector`] natively, without the host: hand-written or recorded responses go in,
//! records and states come out.
//!
//! The harness calls the very functions the exported component calls (config and state
//! parsing, [`Connector::check`], JSON-lines rendering), so what passes here is what the host
//! will see, minus the host's own I/O. It follows the host's protocol: `begin`, then
//! `next-page` for each response, keeping the last state a page set, until the connector says
//! done. Back-offs are recorded, not waited for.
//!
//! Recorded responses come from the host's raw archive: record once with
//! `sluice run --archive DIR --archive-format jsonl`, copy a stream's `<stream>.jsonl` next to
//! the tests, and replay it with [`Archive::load`] and [`Harness::replay`] (see [`Archive`]).
//!
//! ```
//! use sluice_sdk::prelude::*;
//! use sluice_sdk::testing::{self, Harness};
//! # struct Users;
//! # impl Connector for Users {
//! #     type Config = Value;
//! #     type State = ();
//! #     fn spec() -> Spec { Spec::new("users", "0.1.0", "") }
//! #     fn discover(_: &Value) -> Result<Catalog> { Ok(Catalog::new()) }
//! #     fn begin(_: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> {
//! #         Ok(Next::Fetch(Request::get("https://api.example.com/users").query("page", 1)))
//! #     }
//! #     fn next_page(_: &Value, _: &str, _: (), _: &RunContext, request: &Request, response: &Response) -> Result<Page<()>> {
//! #         let body = response.ok()?.json_value()?;
//! #         let users = json::records_at(&body, "")?;
//! #         let pages = paginate::PageNumber::new("page");
//! #         Ok(Page::new().with_records(users)?.with_next(pages.next(&PageInfo::new(request, response, users.len()))?))
//! #     }
//! # }
//!
//! # fn main() -> Result<()> {
//! let run = Harness::<Users>::new(json!({}), "users").run(|request| {
//!     match request.query_param("page").as_deref() {
//!         Some("1") => testing::json_response(json!([{"id": 1}, {"id": 2}])),
//!         _ => testing::json_response(json!([])),
//!     }
//! })?;
//! assert_eq!(run.records, vec![json!({"id": 1}), json!({"id": 2})]);
//! assert_eq!(run.requests().count(), 2);
//! # Ok(())
//! # }
//! ```

use std::marker::PhantomData;
use std::path::Path;

use serde_json::Value;

use crate::{
    Catalog, Connector, Error, Method, Next, Request, Response, Result, RunContext, Spec, adapter,
};

/// How many pages a run may take before the harness calls it a runaway.
pub const DEFAULT_MAX_PAGES: usize = 1000;

/// A 200 response with `body` as JSON.
pub fn json_response(body: Value) -> Response {
    Response::new(200).with_json(&body)
}

/// A response with `status` and `body` as JSON.
pub fn json_response_with_status(status: u16, body: Value) -> Response {
    Response::new(status).with_json(&body)
}

/// A response with `status` and a plain-text body.
pub fn text_response(status: u16, body: &str) -> Response {
    Response::new(status)
        .with_header("content-type", "text/plain")
        .with_body(body)
}

/// The connector's spec, as the host receives it.
pub fn spec<C: Connector>() -> Spec {
    C::spec()
}

/// `check` a config, as the host calls it.
pub fn check<C: Connector>(config: &Value) -> Result<()> {
    adapter::check::<C>(&config.to_string()).map(drop)
}

/// `discover` with a config, as the host calls it.
pub fn discover<C: Connector>(config: &Value) -> Result<Catalog> {
    adapter::discover::<C>(&config.to_string())
}

/// Runs one stream of a connector against a responder.
#[derive(Debug, Clone)]
pub struct Harness<C> {
    config: String,
    stream: String,
    state: Option<String>,
    context: RunContext,
    max_pages: usize,
    connector: PhantomData<C>,
}

impl<C: Connector> Harness<C> {
    /// Read `stream` under `config`, from no saved state, with run id `"test-run"` started at
    /// 0 ms, allowing [`DEFAULT_MAX_PAGES`] pages.
    pub fn new(config: Value, stream: impl Into<String>) -> Self {
        Self {
            config: config.to_string(),
            stream: stream.into(),
            state: None,
            context: RunContext::new("test-run", 0),
            max_pages: DEFAULT_MAX_PAGES,
            connector: PhantomData,
        }
    }

    /// Start from a saved state (e.g. [`Run::state`] of an earlier run).
    pub fn with_state(mut self, state: Value) -> Self {
        self.state = Some(state.to_string());
        self
    }

    /// Use this run context.
    pub fn with_context(mut self, context: RunContext) -> Self {
        self.context = context;
        self
    }

    /// Fail a run that has not finished after `max_pages` pages.
    pub fn with_max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages;
        self
    }

    /// `begin`, then feed each requested response to `next-page` until the connector is done.
    ///
    /// Fails with the connector's error, or with [`Error::ConnectorBug`] if the records are not
    /// JSON objects or the run exceeds the page limit.
    pub fn run(&self, mut responder: impl FnMut(&Request) -> Response) -> Result<Run> {
        let next = adapter::begin::<C>(
            &self.config,
            &self.stream,
            self.state.as_deref(),
            &self.context,
        )?;
        self.drive(next, |request| Ok(responder(request)))
    }

    /// Runs against a recorded [`Archive`]: its responses are handed to the connector in order,
    /// and every request the connector asks for must be the archived one at that position
    /// (otherwise [`Error::ConnectorBug`] names both). An archive of a resumed sync starts
    /// from its first request, as the host resumes, instead of calling `begin`.
    ///
    /// The harness keeps its own config, state and context: take them from the archive with
    /// [`Archive::harness`] to replay the recorded sync exactly.
    pub fn replay(&self, archive: &Archive) -> Result<Run> {
        let next = match (&archive.start[..], archive.exchanges.first()) {
            ("resumed", Some((first, _))) => Next::Fetch(first.clone()),
            _ => adapter::begin::<C>(
                &self.config,
                &self.stream,
                self.state.as_deref(),
                &self.context,
            )?,
        };
        let mut exchanges = archive.exchanges.iter();
        let mut position = 0;
        self.drive(next, |asked| {
            position += 1;
            match exchanges.next() {
                Some((expected, response)) if expected == asked => Ok(response.clone()),
                Some((expected, _)) => Err(Error::bug(format!(
                    "replay of stream `{}` diverges at request {position}: the archive has {} but the connector asked for {}",
                    archive.stream,
                    describe(expected),
                    describe(asked)
                ))),
                None => Err(Error::bug(format!(
                    "replay of stream `{}` ran past the archive: it holds {} responses but the connector asked for another, {}",
                    archive.stream,
                    archive.exchanges.len(),
                    describe(asked)
                ))),
            }
        })
    }

    /// Resume as the host does after a crash: re-send `pending` (the request the last
    /// committed page asked for) with the state set by [`Harness::with_state`], without
    /// calling `begin`.
    pub fn resume(
        &self,
        pending: Request,
        mut responder: impl FnMut(&Request) -> Response,
    ) -> Result<Run> {
        self.drive(Next::Fetch(pending), |request| Ok(responder(request)))
    }

    fn drive(
        &self,
        mut next: Next,
        mut responder: impl FnMut(&Request) -> Result<Response>,
    ) -> Result<Run> {
        let mut state = self.state.clone();
        let mut run = Run {
            records: Vec::new(),
            state: None,
            steps: Vec::new(),
        };
        loop {
            let (request, wait_ms) = match next {
                Next::Done => break,
                Next::Fetch(request) => (request, None),
                Next::BackOff { wait_ms, request } => (request, Some(wait_ms)),
            };
            if run.steps.len() >= self.max_pages {
                return Err(Error::bug(format!(
                    "the run did not finish within {} pages; last request: {} {}",
                    self.max_pages,
                    request.method,
                    request.full_url()
                )));
            }
            let response = responder(&request)?;
            let page = adapter::next_page::<C>(
                &self.config,
                &self.stream,
                state.as_deref(),
                &self.context,
                &request,
                &response,
            )?;
            let records = parse_jsonl(&page.records)?;
            if page.state.is_some() {
                state = page.state;
            }
            run.records.extend(records.iter().cloned());
            run.steps.push(Step {
                request,
                wait_ms,
                status: response.status,
                records,
                state: state.as_deref().map(parse_state).transpose()?,
                next: page.next.clone(),
            });
            next = page.next;
        }
        run.state = state.as_deref().map(parse_state).transpose()?;
        Ok(run)
    }
}

/// A recorded stream: the host's raw archive of one stream of one run, in its plain JSON-lines
/// form (`sluice run --archive DIR --archive-format jsonl` writes
/// `DIR/<connection>/<run>/<stream>.jsonl`; a `.jsonl.gz` archive is the same after `gunzip`).
///
/// The first line is a header (format `sluice-archive`, version 1, the stream, the connector's
/// config, the state and run context the sync started from); each further line is one
/// `{"request": {..}, "response": {..}}` exchange, bodies as `body` (UTF-8 text) or
/// `body_base64`. No credential is ever in it: the host applies credentials after the
/// connector's request is recorded, and drops them from responses before.
///
/// ```
/// use sluice_sdk::prelude::*;
/// use sluice_sdk::testing::Archive;
/// # struct Users;
/// # impl Connector for Users {
/// #     type Config = Value;
/// #     type State = ();
/// #     fn spec() -> Spec { Spec::new("users", "0.1.0", "") }
/// #     fn discover(_: &Value) -> Result<Catalog> { Ok(Catalog::new()) }
/// #     fn begin(_: &Value, _: &str, _: (), _: &RunContext) -> Result<Next> {
/// #         Ok(Next::Fetch(Request::get("https://api.example.com/users")))
/// #     }
/// #     fn next_page(_: &Value, _: &str, _: (), _: &RunContext, _: &Request, response: &Response) -> Result<Page<()>> {
/// #         Page::new().with_records(&response.ok()?.json::<Vec<Value>>()?)
/// #     }
/// # }
/// # fn main() -> Result<()> {
/// let archive = Archive::parse(concat!(
///     r#"{"format":"sluice-archive","version":1,"stream":"users","config":{},"#,
///     r#""state":null,"context":{"run_id":"r1","started_at_ms":0},"start":"fresh"}"#, "\n",
///     r#"{"request":{"method":"GET","url":"https://api.example.com/users"},"#,
///     r#""response":{"status":200,"body":"[{\"id\":1}]"}}"#, "\n",
/// ))?;
/// // In a test: `Archive::load("tests/fixtures/users.jsonl")?`.
/// let run = archive.harness::<Users>().replay(&archive)?;
/// assert_eq!(run.records, vec![json!({"id": 1})]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Archive {
    /// The stream.
    pub stream: String,
    /// The connector's config of the recorded sync.
    pub config: Value,
    /// The state the recorded sync started from.
    pub state: Option<Value>,
    /// The run context the connector was given.
    pub context: RunContext,
    /// How the recorded sync started: `fresh`, `incremental` or `resumed`.
    pub start: String,
    /// Every request the connector asked for, with the response it got, in order.
    pub exchanges: Vec<(Request, Response)>,
}

/// The newest archive format version this harness reads.
pub const ARCHIVE_VERSION: u32 = 1;

#[derive(serde::Deserialize)]
struct ArchiveHeader {
    format: String,
    version: u32,
    stream: String,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    state: Option<String>,
    context: ArchiveContext,
    #[serde(default)]
    start: String,
}

#[derive(serde::Deserialize)]
struct ArchiveContext {
    run_id: String,
    started_at_ms: u64,
}

#[derive(serde::Deserialize)]
struct ArchiveExchange {
    request: ArchiveRequest,
    response: ArchiveResponse,
}

#[derive(serde::Deserialize)]
struct ArchiveRequest {
    method: String,
    url: String,
    #[serde(default)]
    query: Vec<(String, String)>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    authenticate: bool,
    #[serde(default)]
    idempotent: bool,
}

#[derive(serde::Deserialize)]
struct ArchiveResponse {
    status: u16,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default)]
    url: String,
}

impl Archive {
    /// Reads an archive file (plain JSON lines; gunzip a `.jsonl.gz` first).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|error| Error::bug(format!("cannot read `{}`: {error}", path.display())))?;
        if bytes.starts_with(&[0x1f, 0x8b]) {
            return Err(Error::bug(format!(
                "`{}` is gzip-compressed; gunzip it, or record with `sluice run --archive DIR --archive-format jsonl`",
                path.display()
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::bug(format!("`{}` is not UTF-8", path.display())))?;
        Self::parse(&text).map_err(|error| match error {
            Error::ConnectorBug(detail) => Error::bug(format!("`{}`: {detail}", path.display())),
            other => other,
        })
    }

    /// Parses an archive's text. A torn last line (the recording process died mid-write) is
    /// ignored, as the host ignores it.
    pub fn parse(text: &str) -> Result<Self> {
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        let mut lines = complete.split('\n').enumerate();
        let bad = |line: usize, detail: String| Error::bug(format!("line {}: {detail}", line + 1));
        let Some((_, header)) = lines.next().filter(|(_, line)| !line.is_empty()) else {
            return Err(Error::bug("the archive has no header line"));
        };
        let header: ArchiveHeader = serde_json::from_str(header)
            .map_err(|error| bad(0, format!("not an archive header: {error}")))?;
        if header.format != "sluice-archive" {
            return Err(bad(
                0,
                format!("format is {:?}, expected \"sluice-archive\"", header.format),
            ));
        }
        if header.version > ARCHIVE_VERSION {
            return Err(bad(
                0,
                format!(
                    "format version {} is newer than this SDK reads ({ARCHIVE_VERSION}); upgrade sluice-sdk",
                    header.version
                ),
            ));
        }
        let state = header
            .state
            .as_deref()
            .map(parse_state)
            .transpose()
            .map_err(|error| bad(0, error.to_string()))?;
        let mut exchanges = Vec::new();
        for (index, line) in lines {
            let exchange: ArchiveExchange = serde_json::from_str(line)
                .map_err(|error| bad(index, format!("not an exchange: {error}")))?;
            let request = exchange.request;
            let response = exchange.response;
            exchanges.push((
                Request {
                    method: parse_method(&request.method).map_err(|detail| bad(index, detail))?,
                    url: request.url,
                    query: request.query,
                    headers: request.headers,
                    body: body(request.body, request.body_base64)
                        .map_err(|detail| bad(index, detail))?,
                    authenticate: request.authenticate,
                    idempotent: request.idempotent,
                },
                Response {
                    status: response.status,
                    headers: response.headers,
                    body: body(response.body, response.body_base64)
                        .map_err(|detail| bad(index, detail))?
                        .unwrap_or_default(),
                    url: response.url,
                },
            ));
        }
        Ok(Self {
            stream: header.stream,
            config: header.config,
            state,
            context: RunContext::new(header.context.run_id, header.context.started_at_ms),
            start: header.start,
            exchanges,
        })
    }

    /// A harness for the recorded stream, with the recorded config, starting state and run
    /// context.
    pub fn harness<C: Connector>(&self) -> Harness<C> {
        let harness = Harness::new(self.config.clone(), self.stream.clone())
            .with_context(self.context.clone());
        match &self.state {
            Some(state) => harness.with_state(state.clone()),
            None => harness,
        }
    }
}

fn parse_method(method: &str) -> std::result::Result<Method, String> {
    Ok(match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => return Err(format!("unknown HTTP method {other:?}")),
    })
}

fn body(
    text: Option<String>,
    base64: Option<String>,
) -> std::result::Result<Option<Vec<u8>>, String> {
    match (text, base64) {
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(encoded)) => decode_base64(&encoded).map(Some),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err("both `body` and `body_base64` are set".to_owned()),
    }
}

/// Standard base64 with padding, as the host writes it.
fn decode_base64(encoded: &str) -> std::result::Result<Vec<u8>, String> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = encoded.trim_end_matches('=').as_bytes();
    if !encoded.len().is_multiple_of(4) || bytes.len() % 4 == 1 {
        return Err("`body_base64` is not base64 (bad length)".to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut bits = 0u32;
        for (index, &c) in chunk.iter().enumerate() {
            let v = value(c)
                .ok_or_else(|| format!("`body_base64` has an invalid byte {:?}", c as char))?;
            bits |= v << (18 - 6 * index);
        }
        let decoded = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&decoded[..chunk.len() - 1]);
    }
    Ok(out)
}

/// `GET https://host/path?a=1`, plus headers, body and flags when set, for replay messages.
fn describe(request: &Request) -> String {
    let mut text = format!("`{} {}`", request.method, request.full_url());
    if !request.headers.is_empty() {
        text.push_str(&format!(" with headers {:?}", request.headers));
    }
    if let Some(body) = &request.body {
        text.push_str(&format!(" with body {:?}", String::from_utf8_lossy(body)));
    }
    if request.authenticate {
        text.push_str(" (authenticated)");
    }
    if request.idempotent {
        text.push_str(" (idempotent)");
    }
    text
}

fn parse_state(state: &str) -> Result<Value> {
    serde_json::from_str(state)
        .map_err(|error| Error::bug(format!("the state is not valid JSON: {error}")))
}

fn parse_jsonl(records: &str) -> Result<Vec<Value>> {
    records
        .split('\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| match serde_json::from_str::<Value>(line) {
            Ok(record) if record.is_object() => Ok(record),
            Ok(other) => Err(Error::bug(format!(
                "record {index} is {}, not a JSON object",
                crate::json::describe(&other)
            ))),
            Err(error) => Err(Error::bug(format!(
                "record {index} is not valid JSON: {error}"
            ))),
        })
        .collect()
}

/// The outcome of [`Harness::run`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Run {
    /// Every record, in order.
    pub records: Vec<Value>,
    /// The state after the last page (`None` if no page ever set one and none was given).
    pub state: Option<Value>,
    /// One step per request sent.
    pub steps: Vec<Step>,
}

impl Run {
    /// The requests sent, in order.
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.steps.iter().map(|step| &step.request)
    }
}

/// One request and what the connector made of its response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// The request sent.
    pub request: Request,
    /// The back-off the connector asked for before it, if any.
    pub wait_ms: Option<u64>,
    /// The status the responder answered.
    pub status: u16,
    /// The records of the page.
    pub records: Vec<Value>,
    /// The state the host would commit with this page.
    pub state: Option<Value>,
    /// What the connector asked for next.
    pub next: Next,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Page;
    use serde_json::json;

    /// Counts down from the config's `start`, one record per page, then finishes; a state of
    /// `{"seen": n}`.
    struct Countdown;

    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Seen {
        seen: u64,
    }

    impl Connector for Countdown {
        type Config = Value;
        type State = Seen;

        fn spec() -> Spec {
            Spec::new("countdown", "0.0.0", "test")
        }

        fn discover(_: &Value) -> Result<Catalog> {
            Ok(Catalog::new())
        }

        fn begin(config: &Value, _: &str, _: Seen, _: &RunContext) -> Result<Next> {
            let start = config["start"].as_u64().unwrap_or(0);
            Ok(Next::BackOff {
                wait_ms: 5,
                request: Request::get("https://h/").query("n", start),
            })
        }

        fn next_page(
            _: &Value,
            _: &str,
            state: Seen,
            _: &RunContext,
            request: &Request,
            response: &Response,
        ) -> Result<Page<Seen>> {
            response.ok()?;
            let n: u64 = request
                .query_param("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut page = Page::new().with_state(Seen {
                seen: state.seen + 1,
            });
            page.push(&json!({"n": n}))?;
            Ok(match n {
                0 => page,
                n => page.with_next(Request::get("https://h/").query("n", n - 1)),
            })
        }
    }

    #[test]
    fn runs_to_completion_and_records_steps() {
        let run = Harness::<Countdown>::new(json!({"start": 2}), "s")
            .run(|_| Response::new(200))
            .unwrap();
        assert_eq!(
            run.records,
            vec![json!({"n": 2}), json!({"n": 1}), json!({"n": 0})]
        );
        assert_eq!(run.state, Some(json!({"seen": 3})));
        assert_eq!(run.steps[0].wait_ms, Some(5));
        assert_eq!(run.steps[1].state, Some(json!({"seen": 2})));
        assert!(run.steps[2].next.is_done());
    }

    #[test]
    fn resume_uses_the_given_state() {
        let run = Harness::<Countdown>::new(json!({}), "s")
            .with_state(json!({"seen": 10}))
            .resume(Request::get("https://h/").query("n", 1), |_| {
                Response::new(200)
            })
            .unwrap();
        assert_eq!(run.records.len(), 2);
        assert_eq!(run.state, Some(json!({"seen": 12})));
    }

    #[test]
    fn runaways_and_errors_stop_the_run() {
        let err = Harness::<Countdown>::new(json!({"start": 5}), "s")
            .with_max_pages(3)
            .run(|_| Response::new(200))
            .unwrap_err();
        assert_eq!(
            err,
            Error::ConnectorBug(
                "the run did not finish within 3 pages; last request: GET https://h/?n=2".into()
            )
        );
        let err = Harness::<Countdown>::new(json!({"start": 1}), "s")
            .run(|_| text_response(500, "boom"))
            .unwrap_err();
        assert_eq!(err, Error::UnexpectedResponse("HTTP 500: boom".into()));
    }

    fn fixture() -> Archive {
        Archive::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/countdown.archive.jsonl"),
        )
        .unwrap()
    }

    #[test]
    fn an_archive_fixture_replays_with_records_and_checkpoints() {
        let archive = fixture();
        assert_eq!(archive.stream, "numbers");
        assert_eq!(
            archive.context,
            RunContext::new("18f2a-0001", 1_767_225_600_000)
        );
        assert_eq!(archive.exchanges.len(), 3);
        assert_eq!(archive.exchanges[1].1.body, vec![0xff, 0x00, 0x01]);
        let run = archive.harness::<Countdown>().replay(&archive).unwrap();
        assert_eq!(
            run.records,
            vec![json!({"n": 2}), json!({"n": 1}), json!({"n": 0})]
        );
        // The checkpoint after each page, as the host would commit it.
        let states: Vec<_> = run.steps.iter().map(|step| step.state.clone()).collect();
        assert_eq!(
            states,
            vec![
                Some(json!({"seen": 11})),
                Some(json!({"seen": 12})),
                Some(json!({"seen": 13}))
            ]
        );
        assert_eq!(run.state, Some(json!({"seen": 13})));
        assert_eq!(run.steps[0].wait_ms, Some(5));
        assert_eq!(run.steps[2].status, 200);
    }

    #[test]
    fn a_replay_that_asks_for_another_request_names_both() {
        let archive = fixture();
        let err = Harness::<Countdown>::new(json!({"start": 3}), "numbers")
            .replay(&archive)
            .unwrap_err();
        assert_eq!(
            err,
            Error::ConnectorBug(
                "replay of stream `numbers` diverges at request 1: the archive has `GET https://h/?n=2` but the connector asked for `GET https://h/?n=3`".into()
            )
        );
        let mut short = archive.clone();
        short.exchanges.truncate(2);
        let err = short.harness::<Countdown>().replay(&short).unwrap_err();
        assert!(
            err.to_string()
                .contains("ran past the archive: it holds 2 responses"),
            "{err}"
        );
    }

    #[test]
    fn archives_are_checked() {
        assert!(Archive::parse("").is_err());
        let err = Archive::parse("{\"id\": 1}\n").unwrap_err().to_string();
        assert!(err.contains("line 1: not an archive header"), "{err}");
        let header = r#"{"format":"sluice-archive","version":2,"stream":"s","context":{"run_id":"r","started_at_ms":0}}"#;
        let err = Archive::parse(&format!("{header}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer than this SDK reads"), "{err}");
        // A torn last line is ignored.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/countdown.archive.jsonl"),
        )
        .unwrap();
        let torn = &text[..text.len() - 10];
        assert_eq!(Archive::parse(torn).unwrap().exchanges.len(), 2);
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGVsbG8h").unwrap(), b"hello!");
        assert!(decode_base64("a").is_err());
    }

    #[test]
    fn jsonl_must_hold_objects() {
        assert_eq!(parse_jsonl("").unwrap(), Vec::<Value>::new());
        assert!(parse_jsonl("{}\n[1]").is_err());
        assert!(parse_jsonl("{").is_err());
    }
}
