//! The bundled demo API: a small shop on 127.0.0.1 with three endpoints, each paginated a
//! different way, so `sluice demo` shows the `rest` connector end to end without the internet.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Customers in the demo shop.
pub const CUSTOMERS: u64 = 120;
/// Events in the demo shop's activity feed.
pub const EVENTS: u64 = 75;

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
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/customers", get(customers))
            .route("/v1/orders", get(list_orders))
            .route("/v1/events", get(events))
            .with_state(orders);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "Demo API stopped.");
            }
        });
        Ok(Self { addr, task })
    }

    /// The API's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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

/// A deterministic choice from `options` for record `id`.
fn pick(options: &[&'static str], id: u64) -> &'static str {
    let index = usize::try_from(id).unwrap_or(0) % options.len();
    options[index]
}
