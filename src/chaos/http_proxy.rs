//! The HTTP fault proxy: forwards requests to an upstream base URL and, for requests
//! matching a rule (method, path regex), answers with an injected status or delays them,
//! each for a fraction of requests.

use super::ChaosError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Response, StatusCode};
use rand::Rng;
use regex::Regex;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct HttpRule {
    /// Rules added by one step share an owner, so the step's revert removes them all.
    pub owner: String,
    pub method: Option<String>,
    pub path: Option<Regex>,
    pub abort_status: Option<u16>,
    pub delay: Duration,
    pub fraction: f64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct HttpStats {
    pub requests: u64,
    pub aborted: u64,
    pub delayed: u64,
    pub upstream_errors: u64,
}

#[derive(Clone)]
pub struct HttpFaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<HttpRule>>,
    stats: Mutex<HttpStats>,
    client: reqwest::Client,
    stop: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HttpFaultProxy {
    pub async fn start(listen: &str, upstream: &str) -> Result<HttpFaultProxy, ChaosError> {
        let base = reqwest::Url::parse(upstream)
            .map_err(|e| ChaosError::Invalid(format!("upstream: `{upstream}` is not a URL ({e}); use http://host:port")))?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| ChaosError::NotApplied(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| ChaosError::NotApplied(e.to_string()))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ChaosError::NotApplied(e.to_string()))?;
        let shared = Arc::new(Shared {
            upstream: base.as_str().trim_end_matches('/').to_owned(),
            rules: Mutex::new(Vec::new()),
            stats: Mutex::new(HttpStats::default()),
            client,
            stop: CancellationToken::new(),
        });
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        let stop = shared.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        });
        Ok(HttpFaultProxy { shared, addr })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn add_rules(&self, rules: Vec<HttpRule>) {
        lock(&self.shared.rules).extend(rules);
    }

    pub fn remove_rules_of(&self, owner: &str) {
        lock(&self.shared.rules).retain(|r| r.owner != owner);
    }

    pub fn stats(&self) -> HttpStats {
        lock(&self.shared.stats).clone()
    }

    pub fn stop(&self) {
        self.shared.stop.cancel();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response<Body> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let (abort, delay) = {
        let rules = lock(&shared.rules);
        let mut abort = None;
        let mut delay = Duration::ZERO;
        for rule in rules.iter() {
            let matches = rule.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&method))
                && rule.path.as_ref().is_none_or(|p| p.is_match(&path));
            if !matches || !(rule.fraction >= 1.0 || rand::rng().random::<f64>() < rule.fraction) {
                continue;
            }
            abort = abort.or(rule.abort_status);
            delay = delay.max(rule.delay);
        }
        (abort, delay)
    };
    {
        let mut s = lock(&shared.stats);
        s.requests += 1;
        s.aborted += u64::from(abort.is_some());
        s.delayed += u64::from(!delay.is_zero());
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = abort {
        return Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
            .header("x-lifeboat-chaos", "abort")
            .body(Body::from(format!("lifeboat chaos: injected {status}\n")))
            .unwrap_or_default();
    }
    match relay(&shared, request).await {
        Ok(r) => r,
        Err(e) => {
            lock(&shared.stats).upstream_errors += 1;
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("lifeboat chaos proxy: upstream failed: {e}\n")))
                .unwrap_or_default()
        }
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "host",
    "content-length",
];

async fn relay(shared: &Shared, request: Request) -> Result<Response<Body>, String> {
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let url = format!("{}{}", shared.upstream, path_and_query);
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut outgoing = shared.client.request(method, &url);
    for (name, value) in request.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let answer = outgoing.body(body).send().await.map_err(|e| e.to_string())?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str())
            && let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes())
        {
            response = response.header(name, value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    response.body(Body::from(bytes)).map_err(|e| e.to_string())
}
