//! Kubernetes plumbing the domain crates share: finding how a kind is served, the API of a
//! kind in a namespace, kube errors as typed errors a person can act on (an unreachable API
//! server is retryable; a refusal names the identity, verb, resource and namespace), and
//! waiting by watch (`wait.rs`). The engine builds the `kube::Client`; nothing here reads a
//! kubeconfig.

pub mod wait;

use crate::BackupError;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::ApiCapabilities;

/// A kind as the API serves it (plural, scope), found by discovery.
pub async fn resource(client: &kube::Client, api_version: &str, kind: &str) -> Result<(ApiResource, ApiCapabilities), BackupError> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    kube::discovery::pinned_kind(client, &gvk).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 404 => BackupError::Kubernetes {
            message: format!("the cluster does not serve {kind} in {api_version}: is its API (or CRD) installed?"),
            retryable: false,
        },
        kube::Error::Discovery(_) => BackupError::Kubernetes {
            message: format!("the cluster does not serve {kind} in {api_version}"),
            retryable: false,
        },
        _ => error(e, &format!("discovering {kind} in {api_version}")),
    })
}

/// The API of one kind, in `namespace` when the kind is namespaced.
pub fn api(client: &kube::Client, resource: &ApiResource, caps: &ApiCapabilities, namespace: Option<&str>) -> Api<DynamicObject> {
    match (&caps.scope, namespace) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, resource),
        (kube::discovery::Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), resource),
        (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), resource),
    }
}

/// Every object of one kind in `namespace`, as JSON with its `apiVersion` and `kind` set
/// (a list's items carry neither).
pub async fn list_objects(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> Result<Vec<serde_json::Value>, BackupError> {
    let (ar, caps) = resource(client, api_version, kind).await?;
    let listed = api(client, &ar, &caps, Some(namespace))
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|e| error(e, &format!("listing {kind} in namespace {namespace}")))?;
    Ok(listed
        .items
        .into_iter()
        .map(|o| {
            let mut value = serde_json::to_value(o).unwrap_or_default();
            value["apiVersion"] = api_version.into();
            value["kind"] = kind.into();
            value
        })
        .collect())
}

/// A kube error as a typed failover error; `what` says what was being done.
pub fn error(e: kube::Error, what: &str) -> BackupError {
    match e {
        kube::Error::Api(status) => {
            let retryable = matches!(status.code, 409 | 429 | 500 | 502 | 503 | 504);
            let message = match status.code {
                401 => format!(
                    "{what}: the API server did not accept lifeboat's credentials (401 Unauthorized): check the kubeconfig's user or the service account token"
                ),
                403 => format!("{what}: {}", forbidden(&status.message)),
                _ => format!("{what}: {} ({} {})", status.message, status.code, status.reason),
            };
            BackupError::Kubernetes { message, retryable }
        }
        other => BackupError::Kubernetes {
            message: format!("{what}: the API server is unreachable: {other}"),
            retryable: true,
        },
    }
}

/// `User "u" cannot create resource "backups" in API group "velero.io" in the namespace
/// "velero"` → `identity u may not create backups.velero.io in namespace velero`.
fn forbidden(message: &str) -> String {
    let quoted = |after: &str| {
        let rest = message.split(after).nth(1)?;
        let rest = rest.trim_start().strip_prefix('"')?;
        rest.split('"').next().map(str::to_owned)
    };
    let who = quoted("User ").or_else(|| quoted("ServiceAccount "));
    let verb = message
        .split("\" cannot ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .map(str::to_owned);
    let resource = quoted("resource ");
    let group = quoted("in API group ").filter(|g| !g.is_empty());
    let namespace = quoted("in the namespace ");
    match (who, verb, resource) {
        (Some(who), Some(verb), Some(resource)) => {
            let resource = match group {
                Some(g) => format!("{resource}.{g}"),
                None => resource,
            };
            let place = namespace.map_or("cluster-wide".to_owned(), |ns| format!("in namespace {ns}"));
            format!("identity {who} may not {verb} {resource} {place} (grant it through RBAC)")
        }
        _ => format!("forbidden: {message}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forbidden_messages_name_who_may_not_do_what_where() {
        let m = r#"backups.velero.io is forbidden: User "system:serviceaccount:lifeboat:runner" cannot create resource "backups" in API group "velero.io" in the namespace "velero""#;
        assert_eq!(
            super::forbidden(m),
            "identity system:serviceaccount:lifeboat:runner may not create backups.velero.io in namespace velero (grant it through RBAC)"
        );
        let m = r#"namespaces is forbidden: User "dev" cannot delete resource "namespaces" in API group "" at the cluster scope"#;
        assert_eq!(
            super::forbidden(m),
            "identity dev may not delete namespaces cluster-wide (grant it through RBAC)"
        );
    }
}
