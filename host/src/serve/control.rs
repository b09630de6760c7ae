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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
            failure(
                404,
                "not_found",
                "no such endpoint; see `GET /v1/connections`",
            )
        })
        .with_state(engine)
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            Json(json!({ "error": { "kind": self.kind, "message": self.message } })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn failure(status: u16, kind: &'static str, message: impl Into<String>) -> ServeError {
    ServeError {
        status,
        kind,
        message: message.into(),
    }
}

/// The caller's access from `Authorization: Bearer <token>`.
fn authorize(engine: &Engine, headers: &HeaderMap) -> Result<Access, ServeError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match token {
        None => Err(failure(
            401,
            "unauthorized",
            "send `Authorization: Bearer <token>` with the operator's or the tenant's control token",
        )),
        Some(token) => engine.access(token.trim()).ok_or_else(|| {
            failure(
                401,
                "unauthorized",
                "the token is not valid for this deployment",
            )
        }),
    }
}

/// The caller may act on `tenant`; another tenant's connections answer 404 as if absent.
fn authorize_tenant(
    engine: &Engine,
    headers: &HeaderMap,
    tenant: &str,
    name: &str,
) -> Result<(), ServeError> {
    if authorize(engine, headers)?.allows(tenant) {
        Ok(())
    } else {
        Err(failure(
            404,
            "not_found",
            format!("no connection `{name}` in tenant `{tenant}`"),
        ))
    }
}

fn operator_only(engine: &Engine, headers: &HeaderMap) -> Result<(), ServeError> {
    match authorize(engine, headers)? {
        Access::Operator => Ok(()),
        Access::Tenant(_) => Err(failure(
            403,
            "forbidden",
            "this needs the operator's control token",
        )),
    }
}

/// A handler's answer: the response, or an error as JSON.
type Api = Result<Response, ServeError>;

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
    let connection = engine.get(&tenant, &name)?;
    Ok(Json(connection).into_response())
}

async fn trigger(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let triggered = engine.trigger(&tenant, &name)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "result": triggered }))).into_response())
}

async fn cancel(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let cancelled = engine.cancel(&tenant, &name)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "result": cancelled }))).into_response())
}

async fn state(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let streams = engine.checkpoints(&tenant, &name)?;
    Ok(Json(json!({ "streams": streams })).into_response())
}

async fn reset(
    State(engine): State<Arc<Engine>>,
    Path((tenant, name, stream)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Api {
    authorize_tenant(&engine, &headers, &tenant, &name)?;
    let existed = engine.reset(&tenant, &name, &stream).await?;
    Ok(Json(json!({ "stream": stream, "reset": existed })).into_response())
}

async fn reload(State(engine): State<Arc<Engine>>, headers: HeaderMap) -> Api {
    operator_only(&engine, &headers)?;
    let report = engine.reload().map_err(|e| {
        failure(
            422,
            "invalid_deployment",
            format!("{e}; the previous deployment stays in force"),
        )
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
