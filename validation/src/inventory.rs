//! An inventory of Kubernetes objects: each object's kind, name and a hash of what its
//! owner wrote (spec, data, …) without what the server sets (uid, resourceVersion,
//! status, managedFields, a Service's cluster IP, Velero's restore labels). Recorded before
//! a disaster and compared after a restore, it lists what is missing, extra or changed.
//!
//! The objects come as JSON from the caller; this module knows nothing of the API.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One object as inventoried.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub kind: String,
    pub name: String,
    /// The namespace it was in when recorded.
    pub namespace: String,
    /// sha256 of the object without server-set fields; the content never leaves (Secrets).
    pub hash: String,
}

/// Objects Kubernetes puts in every namespace by itself; their absence or presence says
/// nothing about a restore.
fn automatic(object: &Value) -> bool {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    (kind == "ConfigMap" && name == "kube-root-ca.crt")
        || (kind == "ServiceAccount" && name == "default")
        || (kind == "Secret" && object["type"] == "kubernetes.io/service-account-token")
}

/// Fields of `spec` the API server or a controller sets, by kind.
const SERVER_SET: &[(&str, &[&str])] = &[
    (
        "Service",
        &[
            "clusterIP",
            "clusterIPs",
            "healthCheckNodePort",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
        ],
    ),
    ("PersistentVolumeClaim", &["volumeName"]),
];

/// The object as its owner wrote it: metadata reduced to labels (without Velero's) and
/// annotations (without kubectl's and Velero's bookkeeping), no status, and no field the
/// server assigns.
pub fn normalised(object: &Value) -> Value {
    let mut out = Map::new();
    for (key, value) in object.as_object().into_iter().flatten() {
        if matches!(key.as_str(), "metadata" | "status" | "apiVersion") {
            continue;
        }
        out.insert(key.clone(), value.clone());
    }
    let kept = |field: &str, dropped: fn(&str) -> bool| -> Option<Value> {
        let map: Map<String, Value> = object["metadata"][field]
            .as_object()?
            .iter()
            .filter(|(k, _)| !dropped(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!map.is_empty()).then_some(Value::Object(map))
    };
    let mut metadata = Map::new();
    if let Some(labels) = kept("labels", |k| k.starts_with("velero.io/")) {
        metadata.insert("labels".into(), labels);
    }
    if let Some(annotations) = kept("annotations", |k| {
        k.starts_with("velero.io/") || k == "kubectl.kubernetes.io/last-applied-configuration" || k == "deployment.kubernetes.io/revision"
    }) {
        metadata.insert("annotations".into(), annotations);
    }
    out.insert("metadata".into(), Value::Object(metadata));
    let kind = object["kind"].as_str().unwrap_or_default();
    if kind == "ServiceAccount" {
        // The token controller lists the account's token Secrets here.
        out.remove("secrets");
    }
    let spec_fields = SERVER_SET.iter().find(|(k, _)| *k == kind).map_or(&[][..], |(_, f)| *f);
    if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
        for field in spec_fields {
            spec.remove(*field);
        }
    }
    Value::Object(out)
}

/// The inventory of `objects` (Kubernetes' own per-namespace objects left out), sorted.
pub fn inventory(objects: &[Value]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = objects
        .iter()
        .filter(|o| !automatic(o))
        .map(|o| {
            // serde_json's maps are ordered by key, so the text is canonical.
            let text = normalised(o).to_string();
            Entry {
                kind: o["kind"].as_str().unwrap_or_default().to_owned(),
                name: o["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                namespace: o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                hash: hex(&Sha256::digest(text.as_bytes())),
            }
        })
        .collect();
    entries.sort();
    entries
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An object as named in a comparison: `Deployment shop-drill/web`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Named {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Difference {
    /// Recorded, not found now (named where they were expected).
    pub missing: Vec<Named>,
    /// Found now, not recorded.
    pub extra: Vec<Named>,
    /// Found, with different content.
    pub changed: Vec<Named>,
    pub matched: usize,
}

impl Difference {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }
}

/// Compares the `recorded` inventory with what is found `now`, a recorded object in
/// namespace `a` being expected in `mapping[a]` (or `a`).
pub fn compare(recorded: &[Entry], now: &[Entry], mapping: &BTreeMap<String, String>) -> Difference {
    let mapped = |ns: &str| mapping.get(ns).cloned().unwrap_or_else(|| ns.to_owned());
    let key = |e: &Entry, ns: String| (e.kind.clone(), ns, e.name.clone());
    let expected: BTreeMap<_, &Entry> = recorded.iter().map(|e| (key(e, mapped(&e.namespace)), e)).collect();
    let found: BTreeMap<_, &Entry> = now.iter().map(|e| (key(e, e.namespace.clone()), e)).collect();
    let named = |(kind, namespace, name): &(String, String, String)| Named {
        kind: kind.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let mut diff = Difference::default();
    for (k, e) in &expected {
        match found.get(k) {
            None => diff.missing.push(named(k)),
            Some(f) if f.hash != e.hash => diff.changed.push(named(k)),
            Some(_) => diff.matched += 1,
        }
    }
    diff.extra = found.keys().filter(|k| !expected.contains_key(*k)).map(named).collect();
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_set_fields_and_velero_labels_do_not_change_the_hash() {
        let written = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                             "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}});
        let restored = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop-drill", "uid": "x", "resourceVersion": "9",
                               "labels": {"app": "web", "velero.io/restore-name": "r1", "velero.io/backup-name": "b1"}},
                              "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}, "clusterIP": "10.0.0.7"}, "status": {"loadBalancer": {}}});
        assert_eq!(inventory(&[written])[0].hash, inventory(&[restored])[0].hash);
    }

    #[test]
    fn mapping_missing_extra_and_changed_are_named() {
        let cm =
            |ns: &str, name: &str, v: &str| json!({"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"k": v}});
        let before = inventory(&[
            cm("shop", "a", "1"),
            cm("shop", "b", "1"),
            cm("shop", "c", "1"),
            cm("shop", "kube-root-ca.crt", "x"),
        ]);
        assert_eq!(before.len(), 3, "Kubernetes' own objects are left out");
        let after = inventory(&[cm("shop-drill", "a", "1"), cm("shop-drill", "b", "2"), cm("shop-drill", "d", "1")]);
        let mapping = BTreeMap::from([("shop".to_owned(), "shop-drill".to_owned())]);
        let diff = compare(&before, &after, &mapping);
        assert_eq!(diff.matched, 1);
        assert_eq!(
            diff.changed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ConfigMap shop-drill/b"]
        );
        assert_eq!(
            diff.missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ConfigMap shop-drill/c"]
        );
        assert_eq!(
            diff.extra.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ConfigMap shop-drill/d"]
        );
        assert!(
            compare(
                &before,
                &inventory(&[cm("shop", "a", "1"), cm("shop", "b", "1"), cm("shop", "c", "1")]),
                &BTreeMap::new()
            )
            .is_empty()
        );
    }
}
