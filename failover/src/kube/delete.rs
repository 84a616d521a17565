//! Deleting an object and waiting until it is gone (finalizers done), by watch. Deleting
//! what is already gone succeeds: the step is safe to re-run.

use super::{api, error, resource};
use crate::FailoverError;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::api::{DeleteParams, PropagationPolicy};
use kube::runtime::watcher;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    /// Whether this call found the object (false: it was already gone).
    pub existed: bool,
    pub requested_at: DateTime<Utc>,
    /// When the watch saw it gone: the evidence a "deleted" disaster is timed from.
    pub gone_at: DateTime<Utc>,
}

pub struct DeleteOptions<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation: Option<PropagationPolicy>,
    /// Wait until gone for at most this long; `None`: do not wait.
    pub wait: Option<Duration>,
}

pub async fn delete(client: &kube::Client, o: &DeleteOptions<'_>) -> Result<Deleted, FailoverError> {
    let (ar, caps) = resource(client, o.api_version, o.kind).await?;
    let api = api(client, &ar, &caps, o.namespace);
    let what = format!("deleting {} {}", o.kind, o.name);
    let requested_at = Utc::now();
    let params = DeleteParams {
        propagation_policy: o.propagation.clone(),
        ..DeleteParams::default()
    };
    let existed = match api.delete(o.name, &params).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 => false,
        Err(e) => return Err(error(e, &what).into()),
    };
    let Some(limit) = o.wait else {
        return Ok(Deleted {
            existed,
            requested_at,
            gone_at: Utc::now(),
        });
    };
    let gone = async {
        let mut objects = Box::pin(watcher::watch_object(api.clone(), o.name));
        while let Some(event) = objects.next().await {
            match event {
                Ok(None) => return Ok(Utc::now()),
                Ok(Some(_)) => {}
                Err(watcher::Error::WatchError(s)) if s.code == 403 || s.code == 401 => {
                    return Err(FailoverError::from(error(
                        kube::Error::Api(s),
                        &format!("watching {} {}", o.kind, o.name),
                    )));
                }
                Err(e) => {
                    tracing::warn!(kind = o.kind, name = o.name, error = %e, "watch interrupted; watching again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Err(FailoverError::NotReady(format!("the watch of {} {} ended", o.kind, o.name)))
    };
    let gone_at = tokio::time::timeout(limit, gone).await.map_err(|_| {
        FailoverError::NotReady(format!(
            "{} {} still exists after {limit:?} (a finalizer may be holding it)",
            o.kind, o.name
        ))
    })??;
    Ok(Deleted {
        existed,
        requested_at,
        gone_at,
    })
}
