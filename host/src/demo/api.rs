//! The bundled demo API: a small shop on 127.0.0.1 with three endpoints, each paginated a
//! different way, so `sluice demo` shows the `rest` connector end to end without the internet;
//! and a fourth, `/v1/items`, in exactly the form a connector made by `sluice new` reads as
//! generated, so a newcomer can run their first connector against it (`sluice demo --serve`).

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Customers in the demo shop.
pub const CUSTOMERS: u64 = 120;
/// Events in the demo shop's activity feed.
pub const EVENTS: u64 = 75;
/// Items at `/v1/items`: more than two pages of the scaffolded connector's default page size
/// (100), so a first sync pages.
pub const ITEMS: u64 = 250;
/// Items per `/v1/items` page when the request has no `limit`.
pub const DEFAULT_ITEMS_LIMIT: u64 = 100;
/// The largest `limit` `/v1/items` accepts (the scaffolded connector's `MAX_PAGE_SIZE`).
pub const MAX_ITEMS_LIMIT: u64 = 1000;

/// A running demo API; stops when dropped.
pub struct DemoApi {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DemoApi {
    /// Starts the API serving `orders` orders, on `preferred_port` if it is free (so stored
    /// requests of an interrupted demo stay valid), otherwise on any free port.
    pub async fn start(orders: u64, preferred_port: u16) -> std::io::Result<Self> {
        let listener = match TcpListener::bind(("127.0.0.1", preferred_port)).await {
            Ok(listener) => listener,
            Err(_) => TcpListener::bind(("127.0.0.1", 0)).await?,
        };
        Self::serve(listener, orders)
    }

    /// Starts the API serving `orders` orders on exactly `port` of 127.0.0.1 (`0`: any free
    /// port); fails if the port is taken.
    pub async fn start_on(orders: u64, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Self::serve(listener, orders)
    }

    fn serve(listener: TcpListener, orders: u64) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/customers", get(customers))
            .route("/v1/orders", get(list_orders))
            .route("/v1/events", get(events))
            .route("/v1/items", get(items))
            .with_state(orders);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "Demo API stopped.");
            }
        });
        Ok(Self { addr, task })
    }

    /// The API's base URL, without the `/v1` of its endpoints.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DemoApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<u64>,
    per_page: Option<u64>,
}

/// Page-number pagination: `?page=N&per_page=M`, body `{"customers": [...]}`.
async fn customers(Query(query): Query<PageQuery>) -> Json<Value> {
    let per_page = query.per_page.unwrap_or(50).clamp(1, 100);
    let page = query.page.unwrap_or(1).max(1);
    let first = (page - 1) * per_page + 1;
    let items: Vec<Value> = (first..=CUSTOMERS)
        .take(usize::try_from(per_page).unwrap_or(100))
        .map(|id| {
            json!({
                "id": id,
                "name": format!("Customer {id}"),
                "email": format!("customer{id}@example.com"),
                "country": pick(&["DE", "FR", "US", "JP", "BR"], id),
            })
        })
        .collect();
    Json(json!({ "customers": items, "page": page }))
}

#[derive(Debug, Deserialize)]
struct OrderQuery {
    limit: Option<u64>,
    offset: Option<u64>,
    since_id: Option<u64>,
}

/// Offset pagination with a keyset filter: `?limit=&offset=&since_id=`, body `{"data": [...]}`.
async fn list_orders(State(orders): State<u64>, Query(query): Query<OrderQuery>) -> Json<Value> {
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let first = query.since_id.unwrap_or(0) + 1 + query.offset.unwrap_or(0);
    let items: Vec<Value> = (first..=orders)
        .take(usize::try_from(limit).unwrap_or(500))
        .map(order)
        .collect();
    Json(json!({ "data": items }))
}

fn order(id: u64) -> Value {
    json!({
        "id": id,
        "customer_id": id % CUSTOMERS + 1,
        "amount_cents": (id * 7919) % 50_000 + 100,
        "currency": "EUR",
        "status": pick(&["paid", "shipped", "delivered"], id),
        "created_at": format!("2026-{:02}-{:02}T{:02}:{:02}:00Z", id / 600 % 12 + 1, id / 24 % 28 + 1, id % 24, id % 60),
    })
}

#[derive(Debug, Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

/// Cursor pagination: `?cursor=`, body `{"events": [...], "next_cursor": "..." | null}`.
async fn events(Query(query): Query<CursorQuery>) -> Json<Value> {
    const PAGE: u64 = 30;
    let first = query
        .cursor
        .as_deref()
        .and_then(|cursor| cursor.strip_prefix("ev_"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1);
    let last = (first + PAGE - 1).min(EVENTS);
    let items: Vec<Value> = (first..=last)
        .map(|id| json!({ "id": format!("ev_{id}"), "type": pick(&["login", "checkout", "refund"], id), "customer_id": id % CUSTOMERS + 1 }))
        .collect();
    let next = (last < EVENTS).then(|| format!("ev_{}", last + 1));
    Json(json!({ "events": items, "next_cursor": next }))
}

/// A request to the demo API that it refuses: `400` with
/// `{"error": {"kind": "bad_request", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "kind": "bad_request", "message": self.0 } });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// The query parameters `/v1/items` takes.
const ITEMS_PARAMS: [&str; 3] = ["limit", "since_id", "cursor"];

/// The scaffolded connector's API: `?limit=N[&since_id=ID][&cursor=TOKEN]`, body
/// `{"data": [...], "next": "<token>" | null}`.
async fn items(RawQuery(raw): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
    match items_page(&pairs) {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

/// One page of `/v1/items` for the query `pairs`: items in ascending `id` order, after
/// `since_id` (strictly greater) and after the position `cursor` names, at most `limit`; `next`
/// is the token of the following page, `null` on the last one.
fn items_page(pairs: &[(String, String)]) -> Result<Value, BadRequest> {
    for (at, (name, _)) in pairs.iter().enumerate() {
        if !ITEMS_PARAMS.contains(&name.as_str()) {
            return Err(BadRequest(format!(
                "unknown query parameter `{name}`; `/v1/items` takes `limit`, `since_id` and `cursor`"
            )));
        }
        if pairs[..at].iter().any(|(earlier, _)| earlier == name) {
            return Err(BadRequest(format!(
                "query parameter `{name}` is given more than once"
            )));
        }
    }
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let limit = match param("limit") {
        None => DEFAULT_ITEMS_LIMIT,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|limit| (1..=MAX_ITEMS_LIMIT).contains(limit))
            .ok_or_else(|| {
                BadRequest(format!(
                    "`limit` must be an integer from 1 to {MAX_ITEMS_LIMIT}, got {text:?}"
                ))
            })?,
    };
    let since_id = match param("since_id") {
        None => 0,
        Some(text) => text.parse::<u64>().map_err(|_| {
            BadRequest(format!(
                "`since_id` must be a non-negative integer, got {text:?}"
            ))
        })?,
    };
    let after_cursor = match param("cursor") {
        None => 0,
        Some(token) => cursor_position(token).ok_or_else(|| {
            BadRequest(format!(
                "`cursor` {token:?} is not a token this API issued; send the `next` of the previous page as it is"
            ))
        })?,
    };
    let first = since_id.max(after_cursor).saturating_add(1);
    let last = first.saturating_add(limit - 1).min(ITEMS);
    let data: Vec<Value> = (first..=last).map(item).collect();
    let next = (first <= last && last < ITEMS).then(|| cursor_token(last));
    Ok(json!({ "data": data, "next": next }))
}

/// The opaque `next` token of the page after item `last_id`.
fn cursor_token(last_id: u64) -> String {
    format!("c{last_id:x}")
}

/// The item after which a page named by [`cursor_token`] starts; `None` for a token this API
/// never issues.
fn cursor_position(token: &str) -> Option<u64> {
    let id = u64::from_str_radix(token.strip_prefix('c')?, 16).ok()?;
    // Exactly as issued: no sign, leading zeros or upper case, and within the items.
    (cursor_token(id) == token && (1..ITEMS).contains(&id)).then_some(id)
}

/// Item `id` of `/v1/items`, the same on every run: exactly the fields the scaffolded
/// connector's record schema lists (`id`, `name`), so its first sync reports no schema drift.
pub fn item(id: u64) -> Value {
    json!({ "id": id, "name": format!("Widget {id}") })
}

/// A deterministic choice from `options` for record `id`.
fn pick(options: &[&'static str], id: u64) -> &'static str {
    let index = usize::try_from(id).unwrap_or(0) % options.len();
    options[index]
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn ids(page: &Value) -> Vec<u64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| record["id"].as_u64().unwrap())
            .collect()
    }

    #[test]
    fn items_page_through_every_item_once_in_order() {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = vec![("limit", "100")];
            if let Some(token) = &cursor {
                pairs.push(("cursor", token));
            }
            let page = items_page(&query(&pairs)).unwrap();
            cursor = page["next"].as_str().map(str::to_owned);
            pages.push(page);
            if cursor.is_none() {
                break;
            }
            assert!(pages.len() < 10, "the cursor does not end: {pages:?}");
        }
        let sizes: Vec<usize> = pages.iter().map(|page| ids(page).len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(pages[0]["next"], "c64");
        assert_eq!(pages[1]["next"], "cc8");
        assert_eq!(pages[2]["next"], Value::Null);
        let all: Vec<u64> = pages.iter().flat_map(ids).collect();
        assert_eq!(all, (1..=ITEMS).collect::<Vec<_>>());
        assert_eq!(pages[0]["data"][0], item(1));
        assert_eq!(item(1)["name"], "Widget 1");
        // The default page size, and a page ending exactly on the last item.
        assert_eq!(
            ids(&items_page(&[]).unwrap()),
            (1..=100).collect::<Vec<_>>()
        );
        let exact = items_page(&query(&[("limit", "50"), ("cursor", "cc8")])).unwrap();
        assert_eq!(ids(&exact), (201..=250).collect::<Vec<_>>());
        assert_eq!(exact["next"], Value::Null);
    }

    #[test]
    fn items_since_id_is_strictly_after_and_combines_with_the_cursor() {
        let page = items_page(&query(&[("since_id", "240")])).unwrap();
        assert_eq!(ids(&page), (241..=250).collect::<Vec<_>>());
        assert_eq!(page["next"], Value::Null);

        let nothing = items_page(&query(&[("limit", "100"), ("since_id", "250")])).unwrap();
        assert_eq!(nothing, json!({"data": [], "next": null}));
        let beyond = items_page(&query(&[("since_id", "999999")])).unwrap();
        assert_eq!(beyond, json!({"data": [], "next": null}));

        let first = items_page(&query(&[("limit", "5"), ("since_id", "10")])).unwrap();
        assert_eq!(ids(&first), [11, 12, 13, 14, 15]);
        let token = first["next"].as_str().unwrap();
        let second = items_page(&query(&[
            ("limit", "5"),
            ("since_id", "10"),
            ("cursor", token),
        ]))
        .unwrap();
        assert_eq!(ids(&second), [16, 17, 18, 19, 20]);
    }

    #[test]
    fn items_refuse_bad_parameters_saying_why() {
        let error = |pairs: &[(&str, &str)]| items_page(&query(pairs)).unwrap_err().0;
        assert_eq!(
            error(&[("limit", "0")]),
            "`limit` must be an integer from 1 to 1000, got \"0\""
        );
        assert_eq!(
            error(&[("limit", "1001")]),
            "`limit` must be an integer from 1 to 1000, got \"1001\""
        );
        assert_eq!(
            error(&[("limit", "ten")]),
            "`limit` must be an integer from 1 to 1000, got \"ten\""
        );
        assert_eq!(
            error(&[("since_id", "-1")]),
            "`since_id` must be a non-negative integer, got \"-1\""
        );
        for token in [
            "",
            "x64",
            "c",
            "C64",
            "c064",
            "c+64",
            "c0",
            "cfa",
            "cffffffffffffffffff",
        ] {
            assert_eq!(
                error(&[("cursor", token)]),
                format!(
                    "`cursor` {token:?} is not a token this API issued; send the `next` of the previous page as it is"
                ),
            );
        }
        assert_eq!(
            error(&[("page", "2")]),
            "unknown query parameter `page`; `/v1/items` takes `limit`, `since_id` and `cursor`"
        );
        assert_eq!(
            error(&[("limit", "5"), ("limit", "6")]),
            "query parameter `limit` is given more than once"
        );
    }

    /// `GET target` over a fresh connection: the status code and the JSON body.
    async fn get(api: &DemoApi, target: &str) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(api.addr()).await.unwrap();
        let request =
            format!("GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (status, serde_json::from_str(body).unwrap())
    }

    #[tokio::test]
    async fn items_are_served_over_http_with_json_errors() {
        let api = DemoApi::start_on(10, 0).await.unwrap();
        assert!(api.base_url().starts_with("http://127.0.0.1:"));

        let (status, body) = get(&api, "/v1/items?limit=2&since_id=7").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"data": [item(8), item(9)], "next": "c9"}));
        let (status, body) = get(&api, "/v1/items?limit=2&since_id=7&cursor=c9").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"data": [item(10), item(11)], "next": "cb"}));

        let (status, body) = get(&api, "/v1/items?limit=abc").await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": {"kind": "bad_request", "message": "`limit` must be an integer from 1 to 1000, got \"abc\""}})
        );

        // The shop's endpoints are still there beside it.
        let (status, body) = get(&api, "/v1/orders?limit=3").await;
        assert_eq!(status, 200);
        assert_eq!(body["data"].as_array().unwrap().len(), 3);

        // An explicit port that is taken is an error, not another port.
        let taken = api.addr().port();
        assert!(DemoApi::start_on(10, taken).await.is_err());
    }
}
