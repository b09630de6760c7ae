//! Drive a [`Connector`] natively, without the host: hand-written or recorded responses go in,
//! records and states come out.
//!
//! The harness calls the very functions the exported component calls (config and state
//! parsing, [`Connector::check`], JSON-lines rendering), so what passes here is what the host
//! will see, minus the host's own I/O. It follows the host's protocol: `begin`, then
//! `next-page` for each response, keeping the last state a page set, until the connector says
//! done. Back-offs are recorded, not waited for.
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

use serde_json::Value;

use crate::{
    Catalog, Connector, Error, Next, Request, Response, Result, RunContext, Spec, adapter,
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
    pub fn run(&self, responder: impl FnMut(&Request) -> Response) -> Result<Run> {
        let next = adapter::begin::<C>(
            &self.config,
            &self.stream,
            self.state.as_deref(),
            &self.context,
        )?;
        self.drive(next, responder)
    }

    /// Resume as the host does after a crash: re-send `pending` (the request the last
    /// committed page asked for) with the state set by [`Harness::with_state`], without
    /// calling `begin`.
    pub fn resume(
        &self,
        pending: Request,
        responder: impl FnMut(&Request) -> Response,
    ) -> Result<Run> {
        self.drive(Next::Fetch(pending), responder)
    }

    fn drive(
        &self,
        mut next: Next,
        mut responder: impl FnMut(&Request) -> Response,
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
            let response = responder(&request);
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

    #[test]
    fn jsonl_must_hold_objects() {
        assert_eq!(parse_jsonl("").unwrap(), Vec::<Value>::new());
        assert!(parse_jsonl("{}\n[1]").is_err());
        assert!(parse_jsonl("{").is_err());
    }
}
