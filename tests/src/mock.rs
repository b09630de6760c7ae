//! An in-process mock HTTP API on `127.0.0.1:0` for end-to-end tests.
//!
//! It runs on its own thread with its own tokio runtime, so synchronous tests (which block on
//! a child `sluice` process) and async tests can both use it, and it stops when dropped.
//!
//! Endpoints over the generic dataset ([`crate::dataset::record`]), one per pagination style;
//! each accepts the incremental filters `since_id` (ids greater than the value) and
//! `updated_after` (`updated_at` strictly later than the value):
//! - `GET /offset/items?limit=&offset=` → `{"data": [...]}`
//! - `GET /page/items?page=&per_page=` → `{"data": [...]}` (pages start at 1)
//! - `GET /cursor/items?cursor=&limit=` → `{"data": [...], "next": "<opaque>" | null}`
//! - `GET /link/items?page=&per_page=` → bare array, `Link: <abs-url>; rel="next", <abs-url>; rel="last"`
//! - `GET /none/items` → bare array of every record
//!
//! And `GET /repos/{owner}/{repo}/issues`, shaped like GitHub's REST API (see [`GithubRepo`]).
//!
//! Every request is logged (method, path, query, headers) before the optional per-request delay
//! and the optional gate ([`MockApi::hold_from`]), and counted as served after its response is
//! produced.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use crate::dataset::{self, BASE_EPOCH_SECS, iso8601};
use crate::wait;

/// Page size used when a request does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Largest page size the generic endpoints accept (like most real APIs, larger is a 400).
pub const MAX_PAGE_SIZE: usize = 100;
/// GitHub's default `per_page`.
pub const GITHUB_DEFAULT_PER_PAGE: usize = 30;
/// GitHub's maximum `per_page`.
pub const GITHUB_MAX_PER_PAGE: usize = 100;
/// Longest a request is held by [`MockApi::hold_from`] (a guard: tests release or drop sooner).
pub const MAX_HOLD: Duration = Duration::from_secs(60);
/// Mask that makes cursor tokens opaque (they encode an offset).
const CURSOR_MASK: u64 = 0x5eed_cafe_f00d;

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The raw query string (empty when absent).
    pub raw_query: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lowercase names (values that are not UTF-8 are dropped).
    pub headers: Vec<(String, String)>,
}

impl LoggedRequest {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A GitHub repository served at `/repos/{owner}/{repo}/issues`.
///
/// Issue `n` (1-based `number`) is created at `2026-01-01T00:00:00Z + n hours` and last updated
/// one minute later; [`MockApi::touch_issues`] moves `updated_at` forward. Every third issue is
/// closed. The endpoint follows GitHub's documented behaviour: `state` (`open` by default,
/// `closed`, `all`), `since` (`updated_at >= since`), `sort` (`created` by default, `updated`,
/// `comments`), `direction` (`desc` by default), `per_page` (30 by default, at most 100), `page`,
/// and a `Link` header with `next`/`last` (and `first`/`prev` after page 1). A request without
/// `Authorization: Bearer <token>` (or `token <token>`) gets 401 `{"message": "Bad credentials"}`.
#[derive(Debug, Clone)]
pub struct GithubRepo {
    /// Repository owner, e.g. `octo`.
    pub owner: String,
    /// Repository name, e.g. `hello`.
    pub repo: String,
    /// Number of issues (numbered `1..=issues`).
    pub issues: u64,
    /// The only token the endpoint accepts.
    pub token: String,
}

struct Inner {
    records: Vec<Value>,
    delay: Duration,
    /// Requests whose arrival number (1-based) is at least this are held until released.
    hold_from: Option<usize>,
    log: Vec<LoggedRequest>,
    served: usize,
    github: Option<GithubState>,
}

struct GithubState {
    repo: GithubRepo,
    issues: Vec<Value>,
    touches: i64,
}

struct Shared {
    addr: SocketAddr,
    inner: Mutex<Inner>,
    /// Wakes held requests when the gate changes.
    gate: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler must not hide the log from the test that asserts on it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running mock API. Dropping it stops the server.
pub struct MockApi {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockApi {
    /// Starts a server whose generic dataset holds records `1..=records`.
    pub fn start(records: u64) -> Self {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the mock API on 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("set the mock listener non-blocking");
        let addr = listener.local_addr().expect("mock API address");
        let shared = Arc::new(Shared {
            addr,
            inner: Mutex::new(Inner {
                records: dataset::records(records),
                delay: Duration::ZERO,
                hold_from: None,
                log: Vec::new(),
                served: 0,
                github: None,
            }),
            gate: Notify::new(),
        });
        let app = router(Arc::clone(&shared));
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("mock-api-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock API runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register the mock listener");
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(e) = result {
                                eprintln!("mock API stopped: {e}");
                            }
                        }
                        _ = rx => {}
                    }
                });
                // Cancels in-flight (delayed) handlers and drops open connections.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn the mock API thread");
        Self {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Starts a server with no generic records and the given GitHub repository.
    pub fn github(repo: GithubRepo) -> Self {
        let mock = Self::start(0);
        let issues = (1..=repo.issues)
            .map(|n| github_issue(&mock, &repo, n))
            .collect();
        mock.shared.lock().github = Some(GithubState {
            repo,
            issues,
            touches: 0,
        });
        mock
    }

    /// The socket address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `127.0.0.1:PORT`, the form used in allow-lists and error messages.
    pub fn host_port(&self) -> String {
        self.shared.addr.to_string()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.shared.addr)
    }

    /// Appends `count` records after the current last id and returns their ids.
    pub fn append(&self, count: u64) -> Vec<u64> {
        let mut inner = self.shared.lock();
        let first = inner.records.len() as u64 + 1;
        let ids: Vec<u64> = (first..first + count).collect();
        inner
            .records
            .extend(ids.iter().copied().map(dataset::record));
        ids
    }

    /// Appends `count` records after the current last id, all with `updated_at` set to
    /// `updated_at` (records sharing one timestamp), and returns their ids.
    pub fn insert_at(&self, count: u64, updated_at: &str) -> Vec<u64> {
        let mut inner = self.shared.lock();
        let first = inner.records.iter().map(dataset::id_of).max().unwrap_or(0) + 1;
        let ids: Vec<u64> = (first..first + count).collect();
        inner.records.extend(ids.iter().map(|&id| {
            let mut record = dataset::record(id);
            record["updated_at"] = Value::String(updated_at.to_owned());
            record
        }));
        ids
    }

    /// Updates records `ids`: a new `updated_at` and a new `name`, and moves them to the end of
    /// the dataset, as an API sorting by `updated_at` would list them.
    pub fn update(&self, ids: &[u64], updated_at: &str) {
        let mut inner = self.shared.lock();
        for &id in ids {
            let index = inner
                .records
                .iter()
                .position(|r| dataset::id_of(r) == id)
                .unwrap_or_else(|| panic!("no record {id}"));
            let mut record = inner.records.remove(index);
            record["updated_at"] = Value::String(updated_at.to_owned());
            record["name"] = Value::String(format!("record-{id:04} (updated {updated_at})"));
            inner.records.push(record);
        }
    }

    /// Appends `record` as it is (a test can serve records of any shape).
    pub fn push_record(&self, record: Value) {
        self.shared.lock().records.push(record);
    }

    /// A snapshot of the generic dataset.
    pub fn records(&self) -> Vec<Value> {
        self.shared.lock().records.clone()
    }

    /// Delay applied to every request after it is logged and before it is answered.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Holds every request from the `n`-th to arrive (1-based, counting from the start of the
    /// log) without answering it, until [`MockApi::release`] (or [`MAX_HOLD`] passes). A test can
    /// then kill the client while it is certainly waiting for that response.
    pub fn hold_from(&self, n: usize) {
        self.shared.lock().hold_from = Some(n);
        self.shared.gate.notify_waiters();
    }

    /// Answers the held requests and stops holding new ones.
    pub fn release(&self) {
        self.shared.lock().hold_from = None;
        self.shared.gate.notify_waiters();
    }

    /// A snapshot of the request log, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Number of requests received so far (logged on arrival).
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// Number of requests answered so far. A request whose client went away while it was
    /// delayed or held may never be answered, so this can stay below [`MockApi::request_count`].
    pub fn served_count(&self) -> usize {
        self.shared.lock().served
    }

    /// Empties the request log (the served counter is kept).
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// Waits until at least `count` requests have arrived; false if `timeout` passed first.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> bool {
        wait::until(timeout, || self.request_count() >= count)
    }

    /// The GitHub issues, in number order (as JSON the endpoint serves).
    pub fn issues(&self) -> Vec<Value> {
        self.shared
            .lock()
            .github
            .as_ref()
            .map(|g| g.issues.clone())
            .unwrap_or_default()
    }

    /// Marks issues as updated: each gets an `updated_at` later than every existing one
    /// (in the order given) and a new title. Returns their new `updated_at` values.
    pub fn touch_issues(&self, numbers: &[u64]) -> Vec<String> {
        let mut inner = self.shared.lock();
        let github = inner
            .github
            .as_mut()
            .expect("mock has no GitHub repository");
        let mut stamps = Vec::new();
        for &number in numbers {
            github.touches += 1;
            // Far past every original `updated_at` (issues are at most a few hundred hours in).
            let stamp = iso8601(BASE_EPOCH_SECS + 90 * 86_400 + github.touches * 60);
            let issue = github
                .issues
                .iter_mut()
                .find(|i| i["number"] == number)
                .unwrap_or_else(|| panic!("no issue #{number}"));
            issue["updated_at"] = Value::String(stamp.clone());
            issue["title"] = Value::String(format!("Issue {number} (edited)"));
            issue["comments"] = json!(issue["comments"].as_u64().unwrap_or(0) + 1);
            stamps.push(stamp);
        }
        stamps
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/offset/items", get(offset_items))
        .route("/page/items", get(page_items))
        .route("/cursor/items", get(cursor_items))
        .route("/link/items", get(link_items))
        .route("/none/items", get(none_items))
        .route("/repos/{owner}/{repo}/issues", get(github_issues))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            log_and_delay,
        ))
        .with_state(shared)
}

async fn log_and_delay(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let raw_query = request.uri().query().unwrap_or_default().to_owned();
    let entry = LoggedRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: parse_query(&raw_query),
        raw_query,
        headers: request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
    };
    let (number, delay) = {
        let mut inner = shared.lock();
        inner.log.push(entry);
        (inner.log.len(), inner.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let held_since = tokio::time::Instant::now();
    loop {
        // Register interest before checking, so a release in between is not missed.
        let released = shared.gate.notified();
        let held = shared.lock().hold_from.is_some_and(|from| number >= from);
        let remaining = MAX_HOLD.saturating_sub(held_since.elapsed());
        if !held || remaining.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(remaining, released).await;
    }
    let response = next.run(request).await;
    shared.lock().served += 1;
    response
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A 4xx answer with a JSON message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "message": self.1 }))).into_response()
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

struct Query(Vec<(String, String)>);

impl Query {
    fn new(raw: Option<String>) -> Self {
        Self(parse_query(raw.as_deref().unwrap_or_default()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn number(
        &self,
        name: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        let n: usize = text
            .parse()
            .map_err(|_| bad_request(format!("`{name}` must be an integer, got {text:?}")))?;
        if n < min || n > max {
            return Err(bad_request(format!(
                "`{name}` must be between {min} and {max}, got {n}"
            )));
        }
        Ok(n)
    }

    /// The same query with `name` set to `value` (replaced in place, or appended).
    fn with(&self, name: &str, value: &str) -> String {
        let mut pairs = self.0.clone();
        match pairs.iter_mut().find(|(k, _)| k == name) {
            Some(pair) => pair.1 = value.to_owned(),
            None => pairs.push((name.to_owned(), value.to_owned())),
        }
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }
}

/// The generic records that pass the incremental filters of `query`.
fn filtered(shared: &Shared, query: &Query) -> Result<Vec<Value>, ApiError> {
    let since_id = match query.get("since_id") {
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| bad_request(format!("`since_id` must be an integer, got {text:?}")))?,
        ),
        None => None,
    };
    let updated_after = query.get("updated_after");
    if let Some(text) = updated_after
        && (text.len() != 20 || !text.ends_with('Z') || text.as_bytes().get(10) != Some(&b'T'))
    {
        return Err(bad_request(format!(
            "`updated_after` must be an ISO-8601 UTC timestamp like 2026-01-01T00:00:00Z, got {text:?}"
        )));
    }
    let inner = shared.lock();
    Ok(inner
        .records
        .iter()
        .filter(|r| since_id.is_none_or(|s| dataset::id_of(r) > s))
        .filter(|r| updated_after.is_none_or(|u| r["updated_at"].as_str().unwrap_or_default() > u))
        .cloned()
        .collect())
}

fn window(records: &[Value], offset: usize, limit: usize) -> Vec<Value> {
    records.iter().skip(offset).take(limit).cloned().collect()
}

async fn offset_items(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::new(raw);
    let limit = query.number("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)?;
    let offset = query.number("offset", 0, 0, usize::MAX)?;
    let records = filtered(&shared, &query)?;
    Ok(axum::Json(json!({ "data": window(&records, offset, limit) })).into_response())
}

async fn page_items(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::new(raw);
    let page = query.number("page", 1, 1, usize::MAX / MAX_PAGE_SIZE)?;
    let per_page = query.number("per_page", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)?;
    let records = filtered(&shared, &query)?;
    Ok(
        axum::Json(json!({ "data": window(&records, (page - 1) * per_page, per_page) }))
            .into_response(),
    )
}

/// Encodes an offset as an opaque cursor token.
pub fn cursor_token(offset: usize) -> String {
    format!("c{:x}", offset as u64 ^ CURSOR_MASK)
}

fn cursor_offset(token: &str) -> Option<usize> {
    let hex = token.strip_prefix('c')?;
    usize::try_from(u64::from_str_radix(hex, 16).ok()? ^ CURSOR_MASK).ok()
}

async fn cursor_items(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::new(raw);
    let limit = query.number("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)?;
    let offset = match query.get("cursor") {
        None | Some("") => 0,
        Some(token) => {
            cursor_offset(token).ok_or_else(|| bad_request(format!("unknown cursor {token:?}")))?
        }
    };
    let records = filtered(&shared, &query)?;
    let next = (offset + limit < records.len()).then(|| cursor_token(offset + limit));
    Ok(
        axum::Json(json!({ "data": window(&records, offset, limit), "next": next }))
            .into_response(),
    )
}

async fn link_items(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::new(raw);
    let page = query.number("page", 1, 1, usize::MAX / MAX_PAGE_SIZE)?;
    let per_page = query.number("per_page", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)?;
    let records = filtered(&shared, &query)?;
    let last = records.len().div_ceil(per_page).max(1);
    let mut links = Vec::new();
    let url = |p: usize| {
        format!(
            "http://{}/link/items?{}",
            shared.addr,
            query.with("page", &p.to_string())
        )
    };
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    let mut response =
        axum::Json(window(&records, (page - 1) * per_page, per_page)).into_response();
    if !links.is_empty() {
        let value = HeaderValue::from_str(&links.join(", ")).expect("ASCII link header");
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

async fn none_items(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::new(raw);
    Ok(axum::Json(filtered(&shared, &query)?).into_response())
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "Not Found".to_owned())
}

fn github_issue(mock: &MockApi, repo: &GithubRepo, number: u64) -> Value {
    let api = format!("{}/repos/{}/{}", mock.base_url(), repo.owner, repo.repo);
    let html = format!("https://github.com/{}/{}", repo.owner, repo.repo);
    let n = i64::try_from(number).unwrap_or(i64::MAX);
    let created = iso8601(BASE_EPOCH_SECS + n * 3600);
    let updated = iso8601(BASE_EPOCH_SECS + n * 3600 + 60);
    let closed = number.is_multiple_of(3);
    let (login, user_id) = if number.is_multiple_of(2) {
        ("octocat", 583_231)
    } else {
        ("hubot", 2_489_123)
    };
    json!({
        "url": format!("{api}/issues/{number}"),
        "repository_url": api,
        "labels_url": format!("{api}/issues/{number}/labels{{/name}}"),
        "comments_url": format!("{api}/issues/{number}/comments"),
        "events_url": format!("{api}/issues/{number}/events"),
        "html_url": format!("{html}/issues/{number}"),
        "id": 2_000_000_000 + number,
        "node_id": format!("I_kwDOAbc{number:06}"),
        "number": number,
        "title": format!("Issue {number}"),
        "user": {
            "login": login,
            "id": user_id,
            "node_id": format!("MDQ6VXNlcj{user_id}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{user_id}?v=4"),
            "gravatar_id": "",
            "url": format!("https://api.github.com/users/{login}"),
            "html_url": format!("https://github.com/{login}"),
            "type": "User",
            "site_admin": false,
        },
        "labels": if number.is_multiple_of(4) {
            json!([{
                "id": 208_045_946,
                "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
                "url": format!("{api}/labels/bug"),
                "name": "bug",
                "description": "Something isn't working",
                "color": "d73a4a",
                "default": true,
            }])
        } else {
            json!([])
        },
        "state": if closed { "closed" } else { "open" },
        "state_reason": if closed { json!("completed") } else { Value::Null },
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": number % 5,
        "created_at": created,
        "updated_at": updated,
        "closed_at": if closed { json!(updated) } else { Value::Null },
        "author_association": "CONTRIBUTOR",
        "active_lock_reason": null,
        "body": format!("Body of issue {number}.\n\n- [ ] task ✓"),
        "reactions": {
            "url": format!("{api}/issues/{number}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
        },
        "timeline_url": format!("{api}/issues/{number}/timeline"),
        "performed_via_github_app": null,
    })
}

async fn github_issues(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = Query::new(raw);
    let (mut issues, token) = {
        let inner = shared.lock();
        match &inner.github {
            Some(g) if g.repo.owner == owner && g.repo.repo == repo => {
                (g.issues.clone(), g.repo.token.clone())
            }
            _ => return Err(ApiError(StatusCode::NOT_FOUND, "Not Found".to_owned())),
        }
    };
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .is_some_and(|t| t == token);
    if !authorized {
        let body = json!({
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        });
        return Ok((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
    }
    let per_page = query.number("per_page", GITHUB_DEFAULT_PER_PAGE, 1, GITHUB_MAX_PER_PAGE)?;
    let page = query.number("page", 1, 1, usize::MAX / GITHUB_MAX_PER_PAGE)?;
    match query.get("state").unwrap_or("open") {
        "all" => {}
        state @ ("open" | "closed") => issues.retain(|i| i["state"] == state),
        other => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Validation Failed: state {other:?}"),
            ));
        }
    }
    if let Some(since) = query.get("since") {
        if since.len() < 20 || since.as_bytes().get(10) != Some(&b'T') {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Validation Failed: since {since:?}"),
            ));
        }
        issues.retain(|i| i["updated_at"].as_str().unwrap_or_default() >= since);
    }
    let key = match query.get("sort").unwrap_or("created") {
        "created" => "created_at",
        "updated" => "updated_at",
        "comments" => "comments",
        other => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Validation Failed: sort {other:?}"),
            ));
        }
    };
    issues.sort_by(|a, b| {
        let order = match (a[key].as_str(), b[key].as_str()) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => a[key].as_u64().cmp(&b[key].as_u64()),
        };
        order.then(a["number"].as_u64().cmp(&b["number"].as_u64()))
    });
    match query.get("direction").unwrap_or("desc") {
        "asc" => {}
        "desc" => issues.reverse(),
        other => {
            return Err(ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Validation Failed: direction {other:?}"),
            ));
        }
    }
    let last = issues.len().div_ceil(per_page).max(1);
    let url = |p: usize| {
        format!(
            "http://{}/repos/{owner}/{repo}/issues?{}",
            shared.addr,
            query.with("page", &p.to_string())
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", url(1)));
    }
    let body = window(&issues, (page - 1) * per_page, per_page);
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (name, value) in [
        ("x-github-api-version-selected", "2022-11-28"),
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("x-ratelimit-used", "1"),
        ("x-ratelimit-resource", "core"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // GitHub sends the reset time as epoch seconds, an hour ahead at most.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let reset = (now + 3600).to_string();
    headers.insert(
        "x-ratelimit-reset",
        HeaderValue::from_str(&reset).expect("digits"),
    );
    if !links.is_empty() {
        let value = HeaderValue::from_str(&links.join(", ")).expect("ASCII link header");
        headers.insert(header::LINK, value);
    }
    Ok(response)
}

/// Counts of how many times each path was requested (for quick assertions).
pub fn paths(requests: &[LoggedRequest]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        *counts.entry(r.path.clone()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A minimal HTTP/1.1 GET over a fresh connection: (status, lowercase headers, body).
    fn get(
        mock: &MockApi,
        target: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Value) {
        let mut stream = std::net::TcpStream::connect(mock.addr()).expect("connect");
        let mut request = format!(
            "GET {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            mock.host_port()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        let mut lines = head.lines();
        let status = lines.next().expect("status line")[9..12]
            .parse()
            .expect("status");
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        (
            status,
            headers,
            serde_json::from_str(body).expect("JSON body"),
        )
    }

    fn link(headers: &[(String, String)]) -> Option<&str> {
        headers
            .iter()
            .find(|(k, _)| k == "link")
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn paginates_every_style_and_logs() {
        let mock = MockApi::start(45);
        let (status, _, body) = get(&mock, "/offset/items?limit=20&offset=40", &[]);
        assert_eq!(status, 200);
        assert_eq!(
            dataset::ids(body["data"].as_array().expect("data")),
            vec![41, 42, 43, 44, 45]
        );

        let (_, _, body) = get(&mock, "/page/items?page=2&per_page=20&since_id=10", &[]);
        assert_eq!(
            dataset::ids(body["data"].as_array().expect("data")),
            (31..=45).collect::<Vec<_>>()
        );

        let (_, _, body) = get(&mock, "/cursor/items?limit=40", &[]);
        let next = body["next"].as_str().expect("next cursor").to_owned();
        let (_, _, body) = get(&mock, &format!("/cursor/items?limit=40&cursor={next}"), &[]);
        assert_eq!(
            dataset::ids(body["data"].as_array().expect("data")),
            vec![41, 42, 43, 44, 45]
        );
        assert_eq!(body["next"], Value::Null);

        let (_, headers, body) = get(&mock, "/link/items?per_page=20", &[]);
        assert_eq!(body.as_array().expect("array").len(), 20);
        let expected = format!(
            "<{0}/link/items?per_page=20&page=2>; rel=\"next\", <{0}/link/items?per_page=20&page=3>; rel=\"last\"",
            mock.base_url()
        );
        assert_eq!(link(&headers), Some(expected.as_str()));
        let (_, headers, _) = get(&mock, "/link/items?per_page=20&page=3", &[]);
        assert_eq!(link(&headers), None);

        let (_, _, body) = get(&mock, "/none/items?updated_after=2026-01-01T00:00:40Z", &[]);
        assert_eq!(
            dataset::ids(body.as_array().expect("array")),
            vec![41, 42, 43, 44, 45]
        );

        let (status, _, _) = get(&mock, "/offset/items?limit=0", &[]);
        assert_eq!(status, 400);

        mock.append(2);
        let (_, _, body) = get(&mock, "/none/items?since_id=45", &[]);
        assert_eq!(dataset::ids(body.as_array().expect("array")), vec![46, 47]);

        let log = mock.requests();
        assert_eq!(log.len(), 9);
        assert_eq!(log[1].query_param("since_id"), Some("10"));
        assert_eq!(log[0].header("Host"), Some(mock.host_port().as_str()));
        assert_eq!(mock.served_count(), 9);
    }

    #[test]
    fn github_issues_behave_like_github() {
        let mock = MockApi::github(GithubRepo {
            owner: "octo".into(),
            repo: "hello".into(),
            issues: 65,
            token: "s3cret".into(),
        });
        let (status, _, body) = get(&mock, "/repos/octo/hello/issues", &[]);
        assert_eq!(status, 401);
        assert_eq!(body["message"], "Bad credentials");
        let auth = [("authorization", "Bearer s3cret")];
        let (status, _, _) = get(&mock, "/repos/octo/other/issues", &auth);
        assert_eq!(status, 404);

        // Defaults: open issues only, newest first, 30 per page.
        let (_, headers, body) = get(&mock, "/repos/octo/hello/issues", &auth);
        let issues = body.as_array().expect("array");
        assert_eq!(issues.len(), 30);
        assert_eq!(issues[0]["number"], 65);
        assert!(issues.iter().all(|i| i["state"] == "open"));
        assert!(link(&headers).expect("link").contains("rel=\"next\""));

        let query = "state=all&sort=updated&direction=asc&per_page=50";
        let (_, headers, body) = get(
            &mock,
            &format!("/repos/octo/hello/issues?{query}&page=2"),
            &auth,
        );
        let numbers: Vec<u64> = body
            .as_array()
            .expect("array")
            .iter()
            .map(|i| i["number"].as_u64().expect("number"))
            .collect();
        assert_eq!(numbers, (51..=65).collect::<Vec<_>>());
        let base = format!("{}/repos/octo/hello/issues?{query}", mock.base_url());
        assert_eq!(
            link(&headers),
            Some(format!("<{base}&page=1>; rel=\"prev\", <{base}&page=1>; rel=\"first\"").as_str())
        );

        let stamps = mock.touch_issues(&[7, 3]);
        let since = urlencode(&stamps[0]);
        let (_, _, body) = get(
            &mock,
            &format!("/repos/octo/hello/issues?{query}&since={since}"),
            &auth,
        );
        let numbers: Vec<u64> = body
            .as_array()
            .expect("array")
            .iter()
            .map(|i| i["number"].as_u64().expect("number"))
            .collect();
        assert_eq!(numbers, vec![7, 3]);
        assert_eq!(body[0]["title"], "Issue 7 (edited)");
    }

    #[test]
    fn hold_from_holds_until_released() {
        let mock = Arc::new(MockApi::start(3));
        mock.hold_from(2);
        assert_eq!(get(&mock, "/none/items", &[]).0, 200);
        let held = {
            let mock = Arc::clone(&mock);
            std::thread::spawn(move || get(&mock, "/none/items", &[]).0)
        };
        assert!(mock.wait_for_requests(2, Duration::from_secs(10)));
        // The second request has arrived; it is held before it is served, so no pause is
        // needed to see that it was not.
        assert_eq!(mock.served_count(), 1, "the second request is held");
        mock.release();
        assert_eq!(held.join().expect("client thread"), 200);
        assert_eq!(mock.served_count(), 2);
    }

    fn urlencode(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}
