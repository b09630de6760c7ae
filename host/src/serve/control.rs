//! The control API of `sluice serve`: JSON over HTTP, every call behind a bearer token.
//!
//! | Method and path | What it does |
//! |---|---|
//! | `GET /v1/connections` | list connections, their next and last runs |
//! | `GET /v1/tenants/{t}/connections/{c}` | one connection |
//! | `POST /v1/tenants/{t}/connections/{c}/sync` | queue a sync now |
//! | `POST /v1/tenants/{t}/connections/{c}/cancel` | cancel the running or queued sync |
//! | `GET /v1/tenants/{t}/connections/{c}/state` | committed checkpoints by stream |
//! | `DELETE /v1/tenants/{t}/connections/{c}/state/{stream}` | reset a stream |
//! | `POST /v1/reload` | re-read the deployment file (operator token) |
//! | `GET /metrics` | Prometheus metrics (operator token) |
//!
//! The operator's token opens everything; a tenant's `control_token` opens that tenant's
//! connections only, and another tenant's look like they do not exist (404). Errors are
//! `{"error": {"kind": "...", "message": "..."}}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use super::engine::{Access, Engine, ServeError};

/// The control API's routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/v1/connections", get(list))
        .route("/v1/tenants/{tenant}/connections/{name}", get(show))
        .route(
            "/v1/tenants/{tenant}/connections/{name}/sync",
            post(trigger),
        )
        .route(
            "/v1/tenants/{tenant}/connections/{name}/cancel",
            post(cancel),
        )
        .route("/v1/tenants/{tenant}/connections/{name}/state", get(state))
        .route(
            "/v1/tenants/{tenant}/connections/{name}/state/{stream}",
            delete(reset),
        )
        .route("/v1/reload", post(reload))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(ServeError {
                status: 404,
                kind: "not_found",
                message: "no such endpoint; see `GET /v1/connections`".to_owned(),
            })
        })
        .with_state(engine)
}

fn error(error: ServeError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({ "error": { "kind": error.kind, "message": error.message } })),
    )
        .into_response()
}

/// The caller's access from `Authorization: Bearer <token>`.
fn authorize(engine: &Engine, headers: &HeaderMap) -> Result<Access, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let unauthorized = |message: &str| {
        let mut response = error(ServeError {
            status: 401,
            kind: "unauthorized",
            message: message.to_owned(),
        });
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        response
    };
    match token {
        None => Err(unauthorized(
            "send `Authorization: Bearer <token>` with the operator's or the tenant's control token",
        )),
        Some(token) => engine
            .access(token.trim())
            .ok_or_else(|| unauthorized("the token is not valid for this deployment")),
    }
}

/// The caller may act on `tenant`; another tenant's connections answer 404 as if absent.
fn authorize_tenant(
    engine: &Engine,
    headers: &HeaderMap,
    tenant: &str,
    name: &str,
) -> Result<(), Response> {
    let access = authorize(engine, headers)?;
    if access.allows(tenant) {
        Ok(())
    } else {
        Err(error(ServeError {
            status: 404,
            kind: "not_found",
            message: format!("no connection `{name}` in tenant `{tenant}`"),
        }))
    }
}

fn operator_only(engine: &Engine, headers: &HeaderMap) -> Result<(), Response> {
    match authorize(engine, headers)? {
        Access::Operator => Ok(()),
        Access::Tenant(_) => Err(error(ServeError {
            status: 403,
            kind: "forbidden",
            message: "this needs the operator's control token".to_owned(),
        })),
    }
}

type Api = Result<Response, Response>;

async fn list(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Api {
    let access = authorize(&engine, &headers)?;
    let connections = match &access {
        Access::Operator => engine.list(None),
        Access::Tenant(tenant) => engine.list(Some(tenant)),
    };
    Ok(Json(json!({ "connections": connections })).into_response())
}

async fn show(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let connection = engine.get(&tenant, &name).map_err(error)?;
    Ok(Json(connection).into_response())
}

async fn trigger(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let triggered = engine.trigger(&tenant, &name).map_err(error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "result": triggered }))).into_response())
}

async fn cancel(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let cancelled = engine.cancel(&tenant, &name).map_err(error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "result": cancelled }))).into_response())
}

async fn state(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let streams = engine.checkpoints(&tenant, &name).map_err(error)?;
    Ok(Json(json!({ "streams": streams })).into_response())
}

async fn reset(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name, stream)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let existed = engine.reset(&tenant, &name, &stream).await.map_err(error)?;
    Ok(Json(json!({ "stream": stream, "reset": existed })).into_response())
}

async fn reload(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Api {
    operator_only(&engine, &headers)?;
    let report = engine.reload().map_err(|e| {
        error(ServeError {
            status: 422,
            kind: "invalid_deployment",
            message: format!("{e}; the previous deployment stays in force"),
        })
    })?;
    Ok(Json(report).into_response())
}

async fn metrics(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Api {
    operator_only(&engine, &headers)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        engine.metrics_text(),
    )
        .into_response())
}
