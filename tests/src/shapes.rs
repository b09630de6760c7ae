//! An in-process mock of several real APIs' shapes on `127.0.0.1:0`, for the bundled
//! `stripe`, `hackernews`, `next_header` and `github` (pulls, commits) connectors.
//!
//! Each endpoint follows the documented behaviour of the API it imitates, closely enough that a
//! connector passing here works against the real one:
//! - Stripe's list API, `GET /v1/{customers,charges,invoices}`: `limit` (10 by default, 1 to
//!   100), `starting_after`, `created[gt|gte|lt|lte]`, newest first,
//!   `{"object": "list", "data", "has_more", "url"}`; a missing or wrong bearer key is a 401
//!   with Stripe's error body.
//! - Algolia's HN search, `GET /api/v1/search_by_date`: `tags`, `hitsPerPage` (20 by default),
//!   `page` from 0, `numericFilters` on `created_at_i` (comma-separated, ANDed), newest first,
//!   at most [`ShapesApi::set_hn_cap`] hits per search (Algolia's is 1,000), `nbHits`,
//!   `nbPages`; no auth.
//! - An events API, `GET /v2/events?limit=`: `{"events": [...]}` in id order, the next page's
//!   URL (relative) in `X-Next-Page-Url`, absent on the last page; bearer key required.
//! - GitHub, `GET /repos/{owner}/{repo}/pulls` (`state`, `sort=updated|created`,
//!   `direction`, `per_page`, `page`, no `since`) and `.../commits` (`since` on the committer
//!   date, `per_page`, `page`, newest first), with `Link` headers; bearer key required.
//!
//! Every request is logged ([`LoggedRequest`]) before it is answered. It stops when dropped.

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
use tokio::sync::oneshot;

use crate::dataset::iso8601;
use crate::mock::LoggedRequest;

/// Seconds since the epoch of the first object every shape creates (2026-01-01T00:00:00Z).
pub const BASE_CREATED: i64 = 1_767_225_600;
/// Stripe's default `limit`.
pub const STRIPE_DEFAULT_LIMIT: usize = 10;
/// Stripe's largest `limit`.
pub const STRIPE_MAX_LIMIT: usize = 100;
/// Algolia's default `hitsPerPage`.
pub const HN_DEFAULT_HITS_PER_PAGE: usize = 20;
/// Algolia's `paginationLimitedTo` for the HN index: hits one search can page through.
pub const HN_DEFAULT_CAP: usize = 1000;
/// The events API's default `limit`.
pub const EVENTS_DEFAULT_LIMIT: usize = 25;
/// GitHub's default `per_page`.
pub const GITHUB_DEFAULT_PER_PAGE: usize = 30;

#[derive(Default)]
struct Inner {
    log: Vec<LoggedRequest>,
    /// `(resource, objects in creation order)`.
    stripe: Vec<(String, Vec<Value>)>,
    hn: Vec<Value>,
    hn_cap: usize,
    events: Vec<Value>,
    pulls: Vec<Value>,
    commits: Vec<Value>,
    /// Seconds added to [`BASE_CREATED`] for the next object created, so every object has its
    /// own second and later objects later seconds.
    clock: i64,
}

struct Shared {
    addr: SocketAddr,
    token: String,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {}", self.token))
    }
}

/// The running mock. Dropping it stops the server.
pub struct ShapesApi {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ShapesApi {
    /// Starts an empty server whose authenticated endpoints accept only `Bearer <token>`.
    pub fn start(token: &str) -> Self {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the shapes mock on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("set the shapes listener non-blocking");
        let addr = listener.local_addr().expect("shapes mock address");
        let shared = Arc::new(Shared {
            addr,
            token: token.to_owned(),
            inner: Mutex::new(Inner {
                hn_cap: HN_DEFAULT_CAP,
                ..Inner::default()
            }),
        });
        let app = router(Arc::clone(&shared));
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("shapes-api-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("shapes mock runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("register the shapes listener");
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(e) = result {
                                eprintln!("shapes mock stopped: {e}");
                            }
                        }
                        _ = rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn the shapes mock thread");
        Self {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A snapshot of the request log, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// Creates `count` Stripe objects of `resource` (`customers`, `charges`, `invoices`), each
    /// a second after the last object created, and returns them in creation order.
    pub fn stripe_create(&self, resource: &str, count: usize) -> Vec<Value> {
        let mut inner = self.shared.lock();
        let (prefix, object) = match resource {
            "customers" => ("cus", "customer"),
            "charges" => ("ch", "charge"),
            "invoices" => ("in", "invoice"),
            other => panic!("the shapes mock has no Stripe resource {other:?}"),
        };
        let mut created = Vec::new();
        for _ in 0..count {
            inner.clock += 1;
            let at = BASE_CREATED + inner.clock;
            created.push(json!({
                "id": format!("{prefix}_{:014X}", at * 7919),
                "object": object,
                "created": at,
                "livemode": false,
                "metadata": {},
                "amount": 100 + inner.clock,
                "currency": "usd"
            }));
        }
        match inner.stripe.iter_mut().find(|(r, _)| r == resource) {
            Some((_, objects)) => objects.extend(created.iter().cloned()),
            None => inner.stripe.push((resource.to_owned(), created.clone())),
        }
        created
    }

    /// Posts `count` Hacker News items tagged `tag` (`story`, `comment`, ...), one second
    /// apart, and returns them in creation order.
    pub fn hn_post(&self, tag: &str, count: usize) -> Vec<Value> {
        let mut inner = self.shared.lock();
        let mut posted = Vec::new();
        for _ in 0..count {
            inner.clock += 1;
            let at = BASE_CREATED + inner.clock;
            let id = 40_000_000 + inner.clock;
            posted.push(json!({
                "created_at": iso8601(at),
                "created_at_i": at,
                "objectID": id.to_string(),
                "author": "pg",
                "title": format!("Item {id}"),
                "points": inner.clock % 50,
                "_tags": [tag, "author_pg", format!("story_{id}")],
                "_highlightResult": {"title": {"value": format!("Item {id}"), "matchLevel": "none"}}
            }));
        }
        inner.hn.extend(posted.iter().cloned());
        posted
    }

    /// Sets how many hits one search can page through (Algolia's `paginationLimitedTo`).
    pub fn set_hn_cap(&self, cap: usize) {
        self.shared.lock().hn_cap = cap;
    }

    /// Appends `count` events with ids after the last one and returns them.
    pub fn events_append(&self, count: usize) -> Vec<Value> {
        let mut inner = self.shared.lock();
        let first = inner.events.len() + 1;
        let added: Vec<Value> = (first..first + count)
            .map(|n| json!({"id": format!("evt_{n:06}"), "seq": n, "type": "order.created"}))
            .collect();
        inner.events.extend(added.iter().cloned());
        added
    }

    /// Opens `count` pull requests (numbers after the last), each updated one second after
    /// the last update of anything, and returns them.
    pub fn github_open_pulls(&self, count: usize) -> Vec<Value> {
        let mut inner = self.shared.lock();
        let first = inner.pulls.len() + 1;
        let mut opened = Vec::new();
        for number in first..first + count {
            inner.clock += 1;
            let at = iso8601(BASE_CREATED + inner.clock);
            opened.push(json!({
                "id": 1_000_000 + number,
                "number": number,
                "state": "open",
                "title": format!("Pull {number}"),
                "created_at": at,
                "updated_at": at,
                "head": {"ref": format!("feature-{number}")},
                "base": {"ref": "main"}
            }));
        }
        inner.pulls.extend(opened.iter().cloned());
        opened
    }

    /// Updates pull requests `numbers`, in that order, each one second after the last update
    /// of anything, and returns their new `updated_at`.
    pub fn github_touch_pulls(&self, numbers: &[u64]) -> Vec<String> {
        let mut inner = self.shared.lock();
        let mut stamps = Vec::new();
        for &number in numbers {
            inner.clock += 1;
            let at = iso8601(BASE_CREATED + inner.clock);
            let pull = inner
                .pulls
                .iter_mut()
                .find(|p| p["number"] == number)
                .unwrap_or_else(|| panic!("no pull #{number}"));
            pull["updated_at"] = json!(at);
            pull["title"] = json!(format!("Pull {number} (edited)"));
            stamps.push(at);
        }
        stamps
    }

    /// Commits `count` commits to the default branch, one second apart, and returns them.
    pub fn github_commit(&self, count: usize) -> Vec<Value> {
        let mut inner = self.shared.lock();
        let mut made = Vec::new();
        for _ in 0..count {
            inner.clock += 1;
            let at = iso8601(BASE_CREATED + inner.clock);
            let n = inner.commits.len() + made.len() + 1;
            made.push(json!({
                "sha": format!("{:040x}", n as u64 * 0x9E37_79B9),
                "commit": {
                    "message": format!("Commit {n}"),
                    "author": {"name": "Mona", "email": "mona@example.com", "date": at},
                    "committer": {"name": "GitHub", "email": "noreply@github.com", "date": at}
                },
                "parents": []
            }));
        }
        inner.commits.extend(made.iter().cloned());
        made
    }
}

impl Drop for ShapesApi {
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
        .route("/v1/{resource}", get(stripe_list))
        .route("/api/v1/search_by_date", get(hn_search))
        .route("/v2/events", get(events))
        .route("/repos/{owner}/{repo}/pulls", get(github_pulls))
        .route("/repos/{owner}/{repo}/commits", get(github_commits))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found") })
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), log))
        .with_state(shared)
}

async fn log(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
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
    shared.lock().log.push(entry);
    next.run(request).await
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of query parameter `name`.
fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A whole-number parameter within `1..=max`, `default` when absent; `Err` is the message of
/// the 400 answer.
fn size_param(
    query: &[(String, String)],
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, String> {
    match param(query, name) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("invalid {name}: {text}")),
        },
    }
}

/// A 400 answer with a JSON message.
fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "message": message })),
    )
        .into_response()
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

async fn stripe_list(
    State(shared): State<Arc<Shared>>,
    Path(resource): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You did not provide an API key.",
        );
    }
    let query = parse_query(raw.as_deref().unwrap_or_default());
    let limit = match size_param(&query, "limit", STRIPE_DEFAULT_LIMIT, STRIPE_MAX_LIMIT) {
        Ok(limit) => limit,
        Err(_) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Invalid integer: limit",
            );
        }
    };
    let mut created_filters = Vec::new();
    for (op, name) in [
        ("gt", "created[gt]"),
        ("gte", "created[gte]"),
        ("lt", "created[lt]"),
        ("lte", "created[lte]"),
    ] {
        if let Some(value) = param(&query, name) {
            let Ok(at) = value.parse::<i64>() else {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("Invalid integer: {value}"),
                );
            };
            created_filters.push((op, at));
        }
    }
    let inner = shared.lock();
    let Some((_, objects)) = inner.stripe.iter().find(|(r, _)| *r == resource) else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("Unrecognized request URL (GET: /v1/{resource})."),
        );
    };
    // Newest first, as Stripe lists.
    let matching: Vec<&Value> = objects
        .iter()
        .rev()
        .filter(|o| {
            let created = o["created"].as_i64().unwrap_or_default();
            created_filters.iter().all(|&(op, at)| match op {
                "gt" => created > at,
                "gte" => created >= at,
                "lt" => created < at,
                _ => created <= at,
            })
        })
        .collect();
    let start = match param(&query, "starting_after") {
        None => 0,
        Some(id) => match matching.iter().position(|o| o["id"] == id) {
            Some(at) => at + 1,
            None => {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("No such object: '{id}'"),
                );
            }
        },
    };
    let data: Vec<&Value> = matching.iter().skip(start).take(limit).copied().collect();
    let has_more = start + data.len() < matching.len();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": format!("/v1/{resource}")
    }))
    .into_response()
}

async fn hn_search(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    let query = parse_query(raw.as_deref().unwrap_or_default());
    let hits_per_page = match size_param(&query, "hitsPerPage", HN_DEFAULT_HITS_PER_PAGE, 1000) {
        Ok(n) => n,
        Err(message) => return bad_request(message),
    };
    let page: usize = match param(&query, "page").map(str::parse) {
        None => 0,
        Some(Ok(page)) => page,
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "invalid page").into_response(),
    };
    let mut filters = Vec::new();
    for filter in param(&query, "numericFilters")
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.is_empty())
    {
        let parsed = filter.strip_prefix("created_at_i").and_then(|rest| {
            let digits = rest.find(|c: char| c.is_ascii_digit())?;
            let (op, at) = rest.split_at(digits);
            Some((op.to_owned(), at.parse::<i64>().ok()?))
        });
        match parsed {
            Some((op, at)) if ["<", "<=", ">", ">=", "="].contains(&op.as_str()) => {
                filters.push((op, at));
            }
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({
                        "message": format!("Invalid syntax for numeric condition: {filter}"),
                        "status": 400
                    })),
                )
                    .into_response();
            }
        }
    }
    let tag = param(&query, "tags").unwrap_or_default().to_owned();
    let inner = shared.lock();
    let mut matching: Vec<&Value> = inner
        .hn
        .iter()
        .filter(|item| tag.is_empty() || item["_tags"][0] == tag.as_str())
        .filter(|item| {
            let created = item["created_at_i"].as_i64().unwrap_or_default();
            filters.iter().all(|(op, at)| match op.as_str() {
                "<" => created < *at,
                "<=" => created <= *at,
                ">" => created > *at,
                ">=" => created >= *at,
                _ => created == *at,
            })
        })
        .collect();
    matching.reverse();
    let readable = matching.len().min(inner.hn_cap);
    let hits: Vec<&Value> = matching[..readable]
        .iter()
        .skip(page * hits_per_page)
        .take(hits_per_page)
        .copied()
        .collect();
    axum::Json(json!({
        "hits": hits,
        "nbHits": matching.len(),
        "page": page,
        "nbPages": readable.div_ceil(hits_per_page),
        "hitsPerPage": hits_per_page,
        "exhaustiveNbHits": true,
        "query": param(&query, "query").unwrap_or_default(),
        "params": raw.unwrap_or_default(),
        "processingTimeMS": 1
    }))
    .into_response()
}

async fn events(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong token").into_response();
    }
    let query = parse_query(raw.as_deref().unwrap_or_default());
    let limit = match size_param(&query, "limit", EVENTS_DEFAULT_LIMIT, 100) {
        Ok(n) => n,
        Err(message) => return bad_request(message),
    };
    let inner = shared.lock();
    let start = match param(&query, "after") {
        None => 0,
        Some(id) => match inner.events.iter().position(|e| e["id"] == id) {
            Some(at) => at + 1,
            None => return (StatusCode::BAD_REQUEST, "unknown cursor").into_response(),
        },
    };
    let page: Vec<&Value> = inner.events.iter().skip(start).take(limit).collect();
    let mut response = axum::Json(json!({ "events": page })).into_response();
    if start + page.len() < inner.events.len()
        && let Some(last) = page.last()
    {
        let next = format!(
            "/v2/events?limit={limit}&after={}",
            last["id"].as_str().unwrap_or_default()
        );
        response.headers_mut().insert(
            "x-next-page-url",
            HeaderValue::from_str(&next).expect("a header-safe URL"),
        );
    }
    response
}

/// One page of `items` with GitHub's `Link` header (`next`/`last`, and `first`/`prev` after
/// page 1), linking to `path` with the request's query.
fn github_page(
    addr: SocketAddr,
    path: &str,
    query: &[(String, String)],
    items: &[&Value],
) -> Response {
    let per_page = match size_param(query, "per_page", GITHUB_DEFAULT_PER_PAGE, 100) {
        Ok(n) => n,
        Err(message) => return bad_request(message),
    };
    let page: usize = param(query, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<&Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    let kept: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "page").cloned().collect();
    let link = |page: usize, rel: &str| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        pairs.extend_pairs(kept.iter());
        pairs.append_pair("page", &page.to_string());
        format!("<http://{addr}{path}?{}>; rel=\"{rel}\"", pairs.finish())
    };
    let mut links = Vec::new();
    if page < pages {
        links.push(link(page + 1, "next"));
        links.push(link(pages, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    let mut response = axum::Json(json!(slice)).into_response();
    if !links.is_empty() {
        response.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&links.join(", ")).expect("a header-safe Link"),
        );
    }
    response
}

fn github_unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"message": "Bad credentials", "status": "401"})),
    )
        .into_response()
}

async fn github_pulls(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return github_unauthorized();
    }
    let query = parse_query(raw.as_deref().unwrap_or_default());
    let inner = shared.lock();
    let state = param(&query, "state").unwrap_or("open");
    let mut pulls: Vec<&Value> = inner
        .pulls
        .iter()
        .filter(|p| state == "all" || p["state"] == state)
        .collect();
    let key = match param(&query, "sort").unwrap_or("created") {
        "updated" => "updated_at",
        _ => "created_at",
    };
    pulls.sort_by(|a, b| a[key].as_str().cmp(&b[key].as_str()));
    if param(&query, "direction").unwrap_or("desc") == "desc" {
        pulls.reverse();
    }
    github_page(
        shared.addr,
        &format!("/repos/{owner}/{repo}/pulls"),
        &query,
        &pulls,
    )
}

async fn github_commits(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return github_unauthorized();
    }
    let query = parse_query(raw.as_deref().unwrap_or_default());
    let inner = shared.lock();
    let since = param(&query, "since");
    let commits: Vec<&Value> = inner
        .commits
        .iter()
        .rev()
        .filter(|c| since.is_none_or(|s| c["commit"]["committer"]["date"].as_str() >= Some(s)))
        .collect();
    github_page(
        shared.addr,
        &format!("/repos/{owner}/{repo}/commits"),
        &query,
        &commits,
    )
}
