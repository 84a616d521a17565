//! Discovery (`/version`, `/api`, `/apis`, resource lists) and the minimal OpenAPI v3 that
//! `kubectl apply` needs: a PATCH operation per resource with a `fieldValidation` parameter,
//! which tells kubectl to leave validation to the server.

use crate::Cluster;
use crate::resources::Resource;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kubesim", "gitCommit": "kubesim",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

pub fn api_versions(host: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
}

fn group_versions(cluster: &Cluster) -> BTreeSet<(String, String)> {
    cluster
        .resources()
        .iter()
        .filter(|r| !r.group.is_empty())
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect()
}

pub fn api_groups(cluster: &Cluster) -> Value {
    let groups: Vec<Value> = group_versions(cluster)
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The resources of one group version, or `None` when it is not served.
pub fn resource_list(cluster: &Cluster, group: &str, version: &str) -> Option<Value> {
    let of: Vec<&Resource> = cluster
        .resources()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if of.is_empty() {
        return None;
    }
    let verbs = ["create", "delete", "get", "list", "patch", "update", "watch"];
    let mut resources = Vec::new();
    for r in of {
        resources.push(json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": verbs, "shortNames": r.short_names,
        }));
        if r.status_subresource {
            resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

pub fn openapi_index(cluster: &Cluster) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert("api/v1".into(), json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=kubesim"}));
    for (g, v) in group_versions(cluster) {
        paths.insert(
            format!("apis/{g}/{v}"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}?hash=kubesim")}),
        );
    }
    json!({"paths": paths})
}

/// The OpenAPI document of `api/v1` or `apis/<group>/<version>`.
pub fn openapi_document(cluster: &Cluster, gv: &str) -> Option<Value> {
    let (group, version) = match gv.strip_prefix("apis/") {
        Some(rest) => rest.split_once('/')?,
        None if gv == "api/v1" => ("", "v1"),
        None => return None,
    };
    let mut paths = serde_json::Map::new();
    for r in cluster.resources().iter().filter(|r| r.group == group && r.version == version) {
        let prefix = if group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        paths.insert(
            path,
            json!({"patch": {
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            }}),
        );
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "kubesim", "version": version}, "paths": paths, "components": {"schemas": {}}}))
}
