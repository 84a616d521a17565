//! A Toxiproxy-compatible REST API over lifeboat's TCP fault proxies, so existing
//! Toxiproxy clients and scripts drive them unchanged: `/proxies`, `/proxies/{name}`,
//! `/proxies/{name}/toxics[/{toxic}]`, `/populate`, `/reset`, `/version`. Served by
//! `lifeboat proxy serve`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lifeboat_failover::proxy::Proxy;
use lifeboat_failover::proxy::toxic::{Toxic, ToxicJson};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Default, Clone)]
pub struct Collection {
    proxies: Arc<Mutex<BTreeMap<String, Proxy>>>,
}

#[derive(Debug, Deserialize)]
struct ProxyInput {
    name: Option<String>,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into(), "status": status.as_u16() }))).into_response()
}

fn proxy_json(p: &Proxy) -> Value {
    json!({
        "name": p.name(),
        "listen": p.listen_addr().to_string(),
        "upstream": p.upstream(),
        "enabled": p.enabled(),
        "toxics": p.toxics().iter().map(Toxic::to_json).collect::<Vec<_>>(),
    })
}

pub fn router(collection: Collection) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", post(reset))
        .route("/populate", post(populate))
        .route("/proxies", get(list).post(create))
        .route("/proxies/{name}", get(show).post(update).patch(update).delete(remove))
        .route("/proxies/{name}/toxics", get(list_toxics).post(create_toxic))
        .route(
            "/proxies/{name}/toxics/{toxic}",
            get(show_toxic).post(update_toxic).patch(update_toxic).delete(remove_toxic),
        )
        .with_state(collection)
}

impl Collection {
    /// Stops every proxy (at shutdown).
    pub async fn stop_all(&self) {
        for p in self.proxies.lock().await.values() {
            p.stop();
        }
    }

    async fn get(&self, name: &str) -> Result<Proxy, Response> {
        self.proxies
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "proxy not found"))
    }

    async fn start(&self, input: ProxyInput) -> Result<Proxy, Response> {
        let (Some(name), Some(upstream)) = (input.name.filter(|n| !n.is_empty()), input.upstream) else {
            return Err(error(StatusCode::BAD_REQUEST, "missing required field: name and upstream"));
        };
        let listen = input.listen.unwrap_or_else(|| "127.0.0.1:0".into());
        let proxy = Proxy::start(&name, &listen, &upstream)
            .await
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        if input.enabled == Some(false) {
            let _ = proxy.set_enabled(false).await;
        }
        Ok(proxy)
    }
}

async fn version() -> Json<Value> {
    Json(json!({ "version": format!("lifeboat-{}", env!("CARGO_PKG_VERSION")) }))
}

async fn reset(State(c): State<Collection>) -> Response {
    for p in c.proxies.lock().await.values() {
        if let Err(e) = p.reset().await {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn list(State(c): State<Collection>) -> Json<Value> {
    let map: serde_json::Map<String, Value> = c.proxies.lock().await.iter().map(|(n, p)| (n.clone(), proxy_json(p))).collect();
    Json(Value::Object(map))
}

async fn create(State(c): State<Collection>, Json(input): Json<ProxyInput>) -> Response {
    if let Some(name) = &input.name
        && c.proxies.lock().await.contains_key(name)
    {
        return error(StatusCode::CONFLICT, "proxy already exists");
    }
    match c.start(input).await {
        Ok(p) => {
            let body = proxy_json(&p);
            c.proxies.lock().await.insert(p.name().to_owned(), p);
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(r) => r,
    }
}

/// Creates or replaces proxies; a proxy whose listen and upstream are unchanged is kept.
async fn populate(State(c): State<Collection>, Json(inputs): Json<Vec<ProxyInput>>) -> Response {
    let mut out = Vec::new();
    for input in inputs {
        let name = input.name.clone().unwrap_or_default();
        let existing = c.proxies.lock().await.get(&name).cloned();
        if let Some(p) = &existing {
            let same = input.upstream.as_deref() == Some(p.upstream().as_str())
                && input.listen.as_deref().is_none_or(|l| l == p.listen_addr().to_string());
            if same {
                out.push(proxy_json(p));
                continue;
            }
            p.stop();
            c.proxies.lock().await.remove(&name);
        }
        match c.start(input).await {
            Ok(p) => {
                out.push(proxy_json(&p));
                c.proxies.lock().await.insert(name, p);
            }
            Err(r) => return r,
        }
    }
    (StatusCode::CREATED, Json(json!({ "proxies": out }))).into_response()
}

async fn show(State(c): State<Collection>, Path(name): Path<String>) -> Response {
    match c.get(&name).await {
        Ok(p) => Json(proxy_json(&p)).into_response(),
        Err(r) => r,
    }
}

async fn update(State(c): State<Collection>, Path(name): Path<String>, Json(input): Json<ProxyInput>) -> Response {
    let p = match c.get(&name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(upstream) = &input.upstream
        && let Err(e) = p.set_upstream(upstream)
    {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    if let Some(enabled) = input.enabled
        && let Err(e) = p.set_enabled(enabled).await
    {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    Json(proxy_json(&p)).into_response()
}

async fn remove(State(c): State<Collection>, Path(name): Path<String>) -> Response {
    match c.proxies.lock().await.remove(&name) {
        Some(p) => {
            p.stop();
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "proxy not found"),
    }
}

async fn list_toxics(State(c): State<Collection>, Path(name): Path<String>) -> Response {
    match c.get(&name).await {
        Ok(p) => Json(p.toxics().iter().map(Toxic::to_json).collect::<Vec<_>>()).into_response(),
        Err(r) => r,
    }
}

async fn create_toxic(State(c): State<Collection>, Path(name): Path<String>, Json(input): Json<ToxicJson>) -> Response {
    let p = match c.get(&name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let toxic = match Toxic::try_from(input) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let body = toxic.to_json();
    match p.add_toxic(toxic) {
        Ok(()) => Json(body).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

async fn find_toxic(c: &Collection, name: &str, toxic: &str) -> Result<(Proxy, Toxic), Response> {
    let p = c.get(name).await?;
    let t = p
        .toxics()
        .into_iter()
        .find(|t| t.name == toxic)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "toxic not found"))?;
    Ok((p, t))
}

async fn show_toxic(State(c): State<Collection>, Path((name, toxic)): Path<(String, String)>) -> Response {
    match find_toxic(&c, &name, &toxic).await {
        Ok((_, t)) => Json(t.to_json()).into_response(),
        Err(r) => r,
    }
}

/// Fields given replace the toxic's; attributes merge, as Toxiproxy does.
async fn update_toxic(State(c): State<Collection>, Path((name, toxic)): Path<(String, String)>, Json(patch): Json<Value>) -> Response {
    let (p, current) = match find_toxic(&c, &name, &toxic).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut merged = current.to_json();
    if let (Some(m), Some(patch)) = (merged.as_object_mut(), patch.as_object()) {
        for (k, v) in patch {
            match (k.as_str(), m.get_mut("attributes").and_then(Value::as_object_mut), v.as_object()) {
                ("attributes", Some(attrs), Some(new)) => attrs.extend(new.clone()),
                ("name" | "type", _, _) => {}
                _ => {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let updated = match serde_json::from_value::<ToxicJson>(merged)
        .map_err(|e| e.to_string())
        .and_then(|j| Toxic::try_from(j).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let body = updated.to_json();
    match p.update_toxic(updated) {
        Ok(()) => Json(body).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn remove_toxic(State(c): State<Collection>, Path((name, toxic)): Path<(String, String)>) -> Response {
    match c.get(&name).await.map(|p| p.remove_toxic(&toxic)) {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(r) => r,
    }
}
