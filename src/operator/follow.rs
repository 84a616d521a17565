//! Following a kind of resource in the operator's namespace as a whole set. Objects are
//! kept as JSON and read as their typed resource one at a time ([`typed`]), so one object the
//! API server accepted but lifeboat cannot read (a duration out of bounds, a malformed
//! blackout) is reported on that object instead of breaking the watch for all.

use super::Context;
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

pub struct Follower {
    pub api: Api<DynamicObject>,
    kind: String,
    reader: Store<DynamicObject>,
    events: BoxStream<'static, Result<watcher::Event<DynamicObject>, watcher::Error>>,
    listed: bool,
    refresh: Option<Duration>,
}

impl Follower {
    /// Follows kind `K`; with `refresh`, the set is also handed out that often without a
    /// change (for statuses that move with time).
    pub fn new<K: kube::Resource<DynamicType = ()>>(ctx: &Context, refresh: Option<Duration>) -> Follower {
        let resource = ApiResource::erase::<K>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource);
        let writer = reflector::store::Writer::new(resource.clone());
        let reader = writer.as_reader();
        let events = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()).default_backoff()).boxed();
        Follower {
            api,
            kind: resource.kind,
            reader,
            events,
            listed: false,
            refresh,
        }
    }

    /// The whole set once it has been listed, then after each change (and each `refresh`);
    /// `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Vec<Arc<DynamicObject>>> {
        loop {
            let refresh = self.refresh.filter(|_| self.listed);
            let tick = async move {
                match refresh {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = self.events.next() => match event? {
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(_) => {
                        self.listed = true;
                        return Some(self.reader.state());
                    }
                    Err(e) => tracing::warn!(kind = %self.kind, error = %e, "watching failed; retrying"),
                },
                _ = tick => return Some(self.reader.state()),
            }
        }
    }
}

/// A followed object as its typed resource, or why it cannot be read as one.
pub fn typed<K: DeserializeOwned>(object: &DynamicObject) -> Result<K, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(value).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// The status an object holds, when it reads as `S`.
pub fn status_of<S: DeserializeOwned>(object: &DynamicObject) -> Option<S> {
    object.data.get("status").and_then(|s| serde_json::from_value(s.clone()).ok())
}
