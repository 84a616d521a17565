//! Watches: newline-delimited JSON events from a resourceVersion on, with the initial state
//! as ADDED events when the client asks for it (no resourceVersion, "0", or
//! `sendInitialEvents`), bookmarks when allowed, 410 Gone as an ERROR event for a
//! resourceVersion no longer kept, and the stream ended on `timeoutSeconds` or a fault.

use crate::Cluster;
use crate::http::ApiError;
use crate::resources::Resource;
use crate::selectors::Selector;
use crate::store::Change;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

pub fn stream(
    cluster: &Cluster,
    resource: &Resource,
    namespace: &str,
    selector: Selector,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1");
    let initial_events = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let from: Option<u64> = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(rv.parse().map_err(|_| ApiError {
            code: 400,
            reason: "BadRequest",
            message: format!("invalid resourceVersion: {rv}"),
            details: Value::Null,
        })?),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let matches = {
        let (group, plural, namespace) = (resource.group.clone(), resource.plural.clone(), namespace.to_owned());
        move |c: &Change| {
            c.group == group && c.plural == plural && (namespace.is_empty() || c.namespace == namespace) && selector.matches(&c.object)
        }
    };
    // Subscribed under the store's lock, so no change falls between the replay and the live feed.
    let (mut live, replay, current_rv, gone) = {
        let store = cluster.store();
        let live = store.changes.subscribe();
        let rv = store.rv();
        let (replay, gone): (Vec<Arc<Change>>, Option<u64>) = match from {
            None if initial_events || query.get("resourceVersion").is_none_or(|v| v.is_empty() || v == "0") => {
                let current: Vec<Arc<Change>> = store
                    .list(&resource.group, &resource.plural, namespace)
                    .into_iter()
                    .map(|object| {
                        Arc::new(Change {
                            rv,
                            group: resource.group.clone(),
                            plural: resource.plural.clone(),
                            namespace: object["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                            kind: "ADDED",
                            object,
                        })
                    })
                    .collect();
                (current, None)
            }
            None => (Vec::new(), None),
            Some(rv) => match store.since(rv) {
                Some(changes) => (changes, None),
                None => (Vec::new(), Some(store.oldest_kept())),
            },
        };
        (live, replay, rv, gone)
    };
    let mut drop_watches = cluster.inner.drop_watches.subscribe();
    let kind = resource.kind.clone();
    let api_version = resource.api_version();
    tokio::spawn(async move {
        let send = |tx: &mpsc::Sender<Bytes>, value: Value| {
            let mut line = value.to_string();
            line.push('\n');
            tx.try_send(Bytes::from(line)).is_ok()
        };
        if let Some(oldest) = gone {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {} ({oldest})", from.unwrap_or_default()), "reason": "Expired", "code": 410});
            send(&tx, json!({"type": "ERROR", "object": status}));
            return;
        }
        let mut last = from.unwrap_or(current_rv);
        for change in replay.iter().filter(|c| matches(c)) {
            if !send(&tx, json!({"type": change.kind, "object": change.object})) {
                return;
            }
            last = last.max(change.rv);
        }
        if initial_events && bookmarks {
            send(&tx, bookmark(&kind, &api_version, last.max(current_rv), true));
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            let ended = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ended => return,
                _ = drop_watches.recv() => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if !send(&tx, bookmark(&kind, &api_version, last, false)) { return; }
                }
                change = live.recv() => match change {
                    Ok(change) if change.rv > last => {
                        last = change.rv;
                        if matches(&change) && !send(&tx, json!({"type": change.kind, "object": change.object})) {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Fell behind: end the stream; the client resumes from its last version.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    }));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn bookmark(kind: &str, api_version: &str, rv: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": metadata}})
}
