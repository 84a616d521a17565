//! The resource types the simulated cluster serves: a fixed set of built-in kinds, and the
//! custom resources of every CRD file loaded, each with its openAPIV3Schema.

use serde_json::Value;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Resource {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// The CRD's openAPIV3Schema; built-ins are not validated.
    pub schema: Option<Value>,
    pub status_subresource: bool,
    /// The CRD's `additionalPrinterColumns` (built-ins have none: kubectl prints NAME, AGE).
    pub printer_columns: Vec<Value>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `backups.velero.io`, or `configmaps` for the core group: how messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Backup.velero.io`, or `ConfigMap`: how validation messages name the kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool, short: &[&str], status: bool) -> Resource {
    Resource {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        schema: None,
        status_subresource: status,
        printer_columns: Vec::new(),
    }
}

/// The built-in kinds lifeboat's plans touch.
pub fn builtins() -> Vec<Resource> {
    vec![
        builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
        builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
        builtin("", "v1", "Secret", "secrets", true, &[], false),
        builtin("", "v1", "Service", "services", true, &["svc"], true),
        builtin("", "v1", "Pod", "pods", true, &["po"], true),
        builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], true),
        builtin("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false),
        builtin("", "v1", "Event", "events", true, &["ev"], false),
        builtin("apps", "v1", "Deployment", "deployments", true, &["deploy"], true),
        builtin("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], true),
        builtin("batch", "v1", "Job", "jobs", true, &[], true),
        builtin("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, &[], false),
        builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], false),
        builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, &[], false),
        builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, &[], false),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
        ),
        builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], true),
        builtin(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
            &["netpol"],
            false,
        ),
    ]
}

/// The served versions of every CRD in the `*.yaml` files under `dir` (recursively).
pub fn load_crds(dir: &Path) -> Result<Vec<Resource>, String> {
    let mut files = Vec::new();
    collect_yaml(dir, &mut files).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for crd in docs.into_iter().filter(|d| d["kind"] == "CustomResourceDefinition") {
            out.extend(from_crd(&crd).map_err(|e| format!("{}: {e}", file.display()))?);
        }
    }
    Ok(out)
}

fn collect_yaml(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

fn from_crd(crd: &Value) -> Result<Vec<Resource>, String> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |v: &Value, what: &str| v.as_str().map(str::to_owned).ok_or_else(|| format!("CRD without {what}"));
    let group = text(&spec["group"], "spec.group")?;
    let kind = text(&names["kind"], "spec.names.kind")?;
    let plural = text(&names["plural"], "spec.names.plural")?;
    let singular = names["singular"].as_str().map_or_else(|| kind.to_ascii_lowercase(), str::to_owned);
    let short_names: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let namespaced = spec["scope"] != "Cluster";
    let versions = spec["versions"].as_array().ok_or("CRD without spec.versions")?;
    Ok(versions
        .iter()
        .filter(|v| v["served"] != false)
        .map(|v| Resource {
            group: group.clone(),
            version: v["name"].as_str().unwrap_or("v1").to_owned(),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: short_names.clone(),
            schema: Some(v["schema"]["openAPIV3Schema"].clone()).filter(|s| !s.is_null()),
            status_subresource: v["subresources"]["status"].is_object(),
            printer_columns: v["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
        })
        .collect())
}
