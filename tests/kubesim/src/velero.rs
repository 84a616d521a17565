//! A simulated Velero server. Backups are validated against their BackupStorageLocation
//! (missing, or read-only: FailedValidation), then move New → InProgress → Completed (or
//! PartiallyFailed, or stay InProgress, as the fault hooks say), recording the objects of the
//! included namespaces (but pods with a controller, which their restored controller makes
//! again) in the [`ObjectStorage`] with the Backup as it finished, its log and its results.
//! Restores read a backup from that storage (the Backup must be in the cluster
//! too) and re-create its objects (namespaces mapped), keeping per-item warnings and errors as
//! Velero words them. A BackupStorageLocation `default` is installed with the CRDs; the sync
//! controller stamps every location's `lastSyncedTime` each [`VeleroBehaviour::sync_period`]
//! and creates the Backups found in its bucket that the cluster lacks, so a DR cluster
//! sharing the storage sees the primary's backups. Schedules are validated (Enabled or
//! FailedValidation) but never fire by themselves: [`Cluster::run_schedule`] does what their
//! cron would. DownloadRequests for `BackupLog`, `BackupResults`, `BackupResourceList`,
//! `RestoreLog` and `RestoreResults` get a URL on kubesim's own server serving the gzipped
//! file; a request for anything else, or for a run the storage does not hold, stays `New` and
//! is never processed (real Velero would retry it).

use crate::now;
use crate::store::Change;
use crate::{Cluster, lock};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a simulated Velero behaves; change it with [`Cluster::velero`].
#[derive(Debug, Clone)]
pub struct VeleroBehaviour {
    /// Time between phases.
    pub phase_delay: Duration,
    /// Backups stay InProgress forever.
    pub stuck: bool,
    /// Backups end PartiallyFailed with this many errors (0: Completed).
    pub partial_errors: i64,
    /// How often the BackupStorageLocations are synced with their bucket.
    pub sync_period: Duration,
}

impl Default for VeleroBehaviour {
    fn default() -> Self {
        VeleroBehaviour {
            phase_delay: Duration::from_millis(150),
            stuck: false,
            partial_errors: 0,
            sync_period: Duration::from_secs(1),
        }
    }
}

/// Velero's object storage (one bucket): what each finished backup took, and each
/// restore's log and results. Clones share the contents, so clusters made with
/// [`Cluster::with_storage`] on clones of one storage share a bucket.
#[derive(Clone, Default)]
pub struct ObjectStorage {
    inner: Arc<Mutex<Bucket>>,
}

#[derive(Default)]
struct Bucket {
    backups: BTreeMap<String, StoredBackup>,
    restores: BTreeMap<String, StoredRun>,
}

#[derive(Clone)]
struct StoredBackup {
    /// The Backup as it finished: apiVersion, kind, metadata (name, labels, annotations),
    /// spec and status.
    object: Value,
    items: Vec<Value>,
    /// The location's `objectStorage` (bucket, prefix) it was written to.
    place: Value,
    run: StoredRun,
}

#[derive(Clone)]
struct StoredRun {
    log: String,
    results: Value,
}

impl ObjectStorage {
    /// An empty bucket.
    pub fn new() -> ObjectStorage {
        ObjectStorage::default()
    }

    /// The names of the backups the bucket holds.
    pub fn backups(&self) -> Vec<String> {
        lock(&self.inner).backups.keys().cloned().collect()
    }

    /// The Backup object as stored when it finished (metadata, spec, status).
    pub fn backup(&self, name: &str) -> Option<Value> {
        lock(&self.inner).backups.get(name).map(|b| b.object.clone())
    }

    fn stored(&self, name: &str) -> Option<StoredBackup> {
        lock(&self.inner).backups.get(name).cloned()
    }

    fn restore(&self, name: &str) -> Option<StoredRun> {
        lock(&self.inner).restores.get(name).cloned()
    }
}

/// Per-item messages of a run, in Velero's `Result` shape (empty parts left out, as
/// Velero's omitempty fields are).
#[derive(Default)]
struct Messages {
    velero: Vec<String>,
    cluster: Vec<String>,
    namespaces: BTreeMap<String, Vec<String>>,
}

impl Messages {
    fn add(&mut self, namespace: &str, message: String) {
        if namespace.is_empty() {
            self.cluster.push(message);
        } else {
            self.namespaces.entry(namespace.to_owned()).or_default().push(message);
        }
    }

    fn count(&self) -> i64 {
        (self.velero.len() + self.cluster.len() + self.namespaces.values().map(Vec::len).sum::<usize>()) as i64
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        if !self.velero.is_empty() {
            out.insert("velero".into(), self.velero.clone().into());
        }
        if !self.cluster.is_empty() {
            out.insert("cluster".into(), self.cluster.clone().into());
        }
        if !self.namespaces.is_empty() {
            out.insert("namespaces".into(), json!(self.namespaces));
        }
        out.into()
    }
}

/// A run's log, in the logrus text format Velero writes.
#[derive(Default)]
struct RunLog(String);

impl RunLog {
    fn line(&mut self, level: &str, msg: &str, fields: &[(&str, &str)]) {
        let mut line = format!("time=\"{}\" level={level} msg={msg:?}", now());
        for (k, v) in fields {
            line.push_str(&format!(" {k}={}", quoted(v)));
        }
        line.push('\n');
        self.0.push_str(&line);
    }
}

/// A logrus value: bare when it needs no quotes.
fn quoted(v: &str) -> String {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "-._/:".contains(c)) {
        v.to_owned()
    } else {
        format!("{v:?}")
    }
}

/// What an installed Velero has from the start: the BackupStorageLocation `default`.
pub(crate) fn install(cluster: &Cluster) -> Result<(), String> {
    let Some(resource) = cluster.resource("velero.io", "backupstoragelocations") else {
        return Ok(());
    };
    let location = json!({
        "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"},
        "spec": {"provider": "aws", "objectStorage": {"bucket": "kubesim"}, "default": true, "accessMode": "ReadWrite"},
        "status": {"phase": "Available", "lastValidationTime": now()},
    });
    crate::http::create_object(cluster, &resource, "velero", location, "velero-server").map_err(|e| e.message)?;
    Ok(())
}

/// Reacts to a change of a Velero object.
pub fn on_change(cluster: &Cluster, change: &Change) {
    if change.group != "velero.io" || change.kind == "DELETED" {
        return;
    }
    let (plural, namespace) = (change.plural.as_str(), change.namespace.as_str());
    let name = change.object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let phase = &change.object["status"]["phase"];
    match plural {
        "schedules" => validate_schedule(cluster, namespace, &name, &change.object),
        "downloadrequests" if change.kind == "ADDED" && (phase.is_null() || phase == "New") => {
            process_download(cluster, namespace, &name, &change.object["spec"]["target"]);
        }
        "backups" | "restores" if change.kind == "ADDED" && phase.is_null() => {
            let (cluster, plural, namespace) = (cluster.clone(), plural.to_owned(), namespace.to_owned());
            tokio::spawn(async move {
                if plural == "backups" {
                    run_backup(&cluster, &namespace, &name).await;
                } else {
                    run_restore(&cluster, &namespace, &name).await;
                }
            });
        }
        _ => {}
    }
}

fn get(cluster: &Cluster, plural: &str, namespace: &str, name: &str) -> Option<Value> {
    cluster
        .store()
        .get(&("velero.io".into(), plural.into(), namespace.into(), name.into()))
        .cloned()
}

fn set_status(cluster: &Cluster, plural: &str, namespace: &str, name: &str, status: Value) {
    let Some(resource) = cluster.resource("velero.io", plural) else {
        return;
    };
    let Some(mut object) = get(cluster, plural, namespace, name) else {
        return;
    };
    if !object["status"].is_object() {
        object["status"] = json!({});
    }
    // A merge patch: a null removes the field.
    json_patch::merge(&mut object["status"], &status);
    let _ = crate::http::update_status(cluster, &resource, namespace, name, object);
}

/// The objects a backup of `spec` takes: everything in the included namespaces (all when
/// none is named) but Velero's own objects and the pods and slices controllers made, with the
/// namespaces themselves.
fn items(cluster: &Cluster, spec: &Value) -> Vec<Value> {
    let list = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let (included, excluded) = (list("includedNamespaces"), list("excludedNamespaces"));
    let (resources, excluded_resources) = (list("includedResources"), list("excludedResources"));
    let wanted_ns = |ns: &str| (included.is_empty() || included.iter().any(|i| i == "*" || i == ns)) && !excluded.iter().any(|e| e == ns);
    let wanted_resource = |plural: &str| {
        (resources.is_empty() || resources.iter().any(|r| r == "*" || r == plural)) && !excluded_resources.iter().any(|r| r == plural)
    };
    let store = cluster.store();
    cluster
        .resources()
        .iter()
        .filter(|r| r.group != "velero.io" && wanted_resource(&r.plural))
        .flat_map(|r| store.list(&r.group, &r.plural, ""))
        // What a controller made (a workload's pods, a Service's managed EndpointSlices) its
        // controller makes again after a restore: left out, so a backup holds what its
        // owners wrote.
        .filter(|o| !controlled_pod(o) && !crate::endpointslices::managed(o))
        .filter(|o| {
            let ns = o["metadata"]["namespace"].as_str();
            match ns {
                Some(ns) => wanted_ns(ns),
                None => o["kind"] == "Namespace" && wanted_ns(o["metadata"]["name"].as_str().unwrap_or_default()),
            }
        })
        .collect()
}

/// Whether `object` is a Pod with a controller (a workload's, a Job's).
fn controlled_pod(object: &Value) -> bool {
    object["kind"] == "Pod"
        && object["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true))
}

/// The location a backup of `spec` in `namespace` is written to, or Velero's validation error.
fn storage_location(cluster: &Cluster, namespace: &str, spec: &Value) -> Result<Option<Value>, String> {
    if cluster.resource("velero.io", "backupstoragelocations").is_none() {
        return Ok(None);
    }
    let locations = cluster.store().list("velero.io", "backupstoragelocations", namespace);
    let location = match spec["storageLocation"].as_str().filter(|s| !s.is_empty()) {
        Some(name) => locations
            .into_iter()
            .find(|l| l["metadata"]["name"] == name)
            .ok_or_else(|| format!("error getting backup storage location: backupstoragelocation.velero.io \"{name}\" not found"))?,
        None => locations.into_iter().find(|l| l["spec"]["default"] == true).ok_or_else(|| {
            "an existing backup storage location was not specified at backup creation time and the default 'default' was not found"
                .to_owned()
        })?,
    };
    if location["spec"]["accessMode"] == "ReadOnly" {
        return Err(format!(
            "backup can't be created because backup storage location {} is currently in read-only mode",
            location["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    Ok(Some(location))
}

/// Where `location` writes: its bucket and prefix.
fn place(location: &Value) -> Value {
    json!({"bucket": location["spec"]["objectStorage"]["bucket"], "prefix": location["spec"]["objectStorage"]["prefix"]})
}

/// Velero's `<plural>.<group>` naming of a resource in logs and messages.
fn resource_name(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let group = object["apiVersion"].as_str().and_then(|a| a.split_once('/')).map(|(g, _)| g);
    let plural = format!("{}s", kind.to_ascii_lowercase());
    match group {
        Some(g) => format!("{plural}.{g}"),
        None => plural,
    }
}

async fn run_backup(cluster: &Cluster, namespace: &str, name: &str) {
    let behaviour = cluster.velero_behaviour();
    let Some(backup) = get(cluster, "backups", namespace, name) else {
        return;
    };
    let location = match storage_location(cluster, namespace, &backup["spec"]) {
        Ok(l) => l,
        Err(message) => {
            set_status(
                cluster,
                "backups",
                namespace,
                name,
                json!({"phase": "FailedValidation", "validationErrors": [message], "version": 1, "formatVersion": "1.1.0"}),
            );
            return;
        }
    };
    // Velero writes the location it chose into the Backup, as spec and label.
    if let (Some(location), Some(resource)) = (&location, cluster.resource("velero.io", "backups")) {
        let location_name = location["metadata"]["name"].as_str().unwrap_or_default();
        if let Some(mut current) = get(cluster, "backups", namespace, name) {
            current["spec"]["storageLocation"] = location_name.into();
            current["metadata"]["labels"]["velero.io/storage-location"] = location_name.into();
            let _ = crate::http::update_status(cluster, &resource, namespace, name, current);
        }
    }
    set_status(cluster, "backups", namespace, name, json!({"phase": "New"}));
    tokio::time::sleep(behaviour.phase_delay).await;
    let taken = items(cluster, &backup["spec"]);
    let total = taken.len() as i64;
    let started = now();
    set_status(
        cluster,
        "backups",
        namespace,
        name,
        json!({"phase": "InProgress", "startTimestamp": started, "version": 1, "formatVersion": "1.1.0", "progress": {"totalItems": total, "itemsBackedUp": 0}}),
    );
    if behaviour.stuck {
        return;
    }
    tokio::time::sleep(behaviour.phase_delay).await;
    let full_name = format!("{namespace}/{name}");
    let mut log = RunLog::default();
    log.line("info", "Setting up backup log", &[("backup", &full_name)]);
    log.line("info", "Starting backup", &[("backup", &full_name)]);
    for (i, item) in taken.iter().enumerate() {
        let msg = format!(
            "Backed up {} items out of an estimated total of {total} (estimate will change throughout the backup)",
            i + 1
        );
        log.line(
            "info",
            &msg,
            &[
                ("backup", &full_name),
                ("name", item["metadata"]["name"].as_str().unwrap_or_default()),
                ("namespace", item["metadata"]["namespace"].as_str().unwrap_or_default()),
                ("progress", ""),
                ("resource", &resource_name(item)),
            ],
        );
    }
    let mut errors = Messages::default();
    for i in 0..behaviour.partial_errors {
        let message = format!("kubesim: simulated item error {}", i + 1);
        log.line("error", &message, &[("backup", &full_name)]);
        errors.velero.push(message);
    }
    let phase = if behaviour.partial_errors > 0 {
        "PartiallyFailed"
    } else {
        "Completed"
    };
    log.line("info", "Backup completed", &[("backup", &full_name)]);
    let status = json!({"phase": phase, "startTimestamp": started, "completionTimestamp": now(), "expiration": now(),
                        "errors": behaviour.partial_errors, "warnings": 0, "version": 1, "formatVersion": "1.1.0",
                        "progress": {"totalItems": total, "itemsBackedUp": total}});
    // In the bucket before the phase says so: whoever sees Completed may restore it at once.
    if let Some(current) = get(cluster, "backups", namespace, name) {
        let mut object = json!({"apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": namespace}, "spec": current["spec"], "status": current["status"]});
        for field in ["labels", "annotations"] {
            if current["metadata"][field].is_object() {
                object["metadata"][field] = current["metadata"][field].clone();
            }
        }
        for (k, v) in status.as_object().into_iter().flatten() {
            object["status"][k] = v.clone();
        }
        let stored = StoredBackup {
            object,
            items: taken,
            place: location
                .as_ref()
                .map(place)
                .unwrap_or_else(|| json!({"bucket": "kubesim", "prefix": null})),
            run: StoredRun {
                log: log.0,
                results: json!({"errors": errors.to_json(), "warnings": {}}),
            },
        };
        lock(&cluster.inner.storage.inner).backups.insert(name.to_owned(), stored);
    }
    set_status(cluster, "backups", namespace, name, status);
}
/// What a restored object looks like: as backed up, without what the server sets, in its
/// mapped namespace, labelled with the restore and backup.
fn restored(object: &Value, mapping: &serde_json::Map<String, Value>, restore: &str, backup: &str) -> Value {
    let mut o = object.clone();
    let map = |ns: &str| mapping.get(ns).and_then(Value::as_str).unwrap_or(ns).to_owned();
    if let Some(meta) = o["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "finalizers",
        ] {
            meta.remove(field);
        }
    }
    if let Some(obj) = o.as_object_mut() {
        obj.remove("status");
    }
    if o["kind"] == "Namespace" {
        o["metadata"]["name"] = map(object["metadata"]["name"].as_str().unwrap_or_default()).into();
    } else if let Some(ns) = object["metadata"]["namespace"].as_str() {
        o["metadata"]["namespace"] = map(ns).into();
    }
    o["metadata"]["labels"]["velero.io/restore-name"] = restore.into();
    o["metadata"]["labels"]["velero.io/backup-name"] = backup.into();
    o
}

/// Whether a live object is what a restore would create: compared without what the server
/// sets (metadata beyond name, namespace, labels and annotations; status) and without
/// Velero's own labels, as Velero compares before it warns.
fn same_content(live: &Value, restoring: &Value) -> bool {
    let comparable = |o: &Value| {
        let mut o = o.clone();
        if let Some(obj) = o.as_object_mut() {
            obj.remove("status");
        }
        let meta = &o["metadata"];
        let labels: serde_json::Map<String, Value> = meta["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !k.starts_with("velero.io/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let kept = json!({"name": meta["name"], "namespace": meta["namespace"], "labels": labels,
                          "annotations": meta["annotations"].as_object().cloned().unwrap_or_default()});
        o["metadata"] = kept;
        o
    };
    comparable(live) == comparable(restoring)
}

async fn run_restore(cluster: &Cluster, namespace: &str, name: &str) {
    let behaviour = cluster.velero_behaviour();
    let Some(restore) = get(cluster, "restores", namespace, name) else {
        return;
    };
    let backup = restore["spec"]["backupName"].as_str().unwrap_or_default().to_owned();
    let stored = get(cluster, "backups", namespace, &backup).and_then(|_| cluster.inner.storage.stored(&backup));
    let Some(stored) = stored else {
        set_status(
            cluster,
            "restores",
            namespace,
            name,
            json!({"phase": "FailedValidation", "validationErrors": [format!("Error retrieving backup: backup.velero.io \"{backup}\" not found")]}),
        );
        return;
    };
    let taken = stored.items;
    let mapping = restore["spec"]["namespaceMapping"].as_object().cloned().unwrap_or_default();
    let update = restore["spec"]["existingResourcePolicy"] == "update";
    let total = taken.len() as i64;
    set_status(
        cluster,
        "restores",
        namespace,
        name,
        json!({"phase": "InProgress", "startTimestamp": now(), "progress": {"totalItems": total, "itemsRestored": 0}}),
    );
    tokio::time::sleep(behaviour.phase_delay).await;
    let full_name = format!("{namespace}/{name}");
    let mut log = RunLog::default();
    log.line("info", "starting restore", &[("restore", &full_name)]);
    // Namespaces first, as Velero restores them.
    let mut ordered = taken.clone();
    ordered.sort_by_key(|o| o["kind"] != "Namespace");
    let (mut warnings, mut errors) = (Messages::default(), Messages::default());
    let mut restored_count = 0;
    for object in &ordered {
        let o = restored(object, &mapping, name, &backup);
        let kind = o["kind"].as_str().unwrap_or_default().to_owned();
        let group = o["apiVersion"]
            .as_str()
            .and_then(|a| a.split_once('/'))
            .map_or("", |(g, _)| g)
            .to_owned();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let object_name = o["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let resource_text = resource_name(&o);
        let item_key = if ns.is_empty() {
            format!("{resource_text}/{object_name}")
        } else {
            format!("{resource_text}/{ns}/{object_name}")
        };
        let Some(resource) = cluster.resources().iter().find(|r| r.group == group && r.kind == kind).cloned() else {
            let message = format!("error restoring {item_key}: the server could not find the requested resource");
            log.line("error", &message, &[("restore", &full_name)]);
            errors.add(&ns, message);
            continue;
        };
        let existing = || {
            cluster
                .store()
                .get(&(group.clone(), resource.plural.clone(), ns.clone(), object_name.clone()))
                .cloned()
        };
        match crate::http::create_object(cluster, &resource, &ns, o.clone(), "velero-server") {
            Ok(_) => {}
            Err(e) if e.code == 409 && update => {
                let mut current = existing().unwrap_or_default();
                for (k, v) in o.as_object().into_iter().flatten() {
                    if k != "metadata" {
                        current[k] = v.clone();
                    }
                }
                if let Err(e) = crate::http::update_status(cluster, &resource, &ns, &object_name, current) {
                    let message = format!("could not update existing {kind} \"{object_name}\": {}", e.message);
                    log.line("error", &message, &[("restore", &full_name)]);
                    errors.add(&ns, message);
                    continue;
                }
            }
            // An existing namespace is used as it is, and so is an object identical to the
            // backed-up version; one that differs is a warning, as Velero words it.
            Err(e) if e.code == 409 && (kind == "Namespace" || existing().is_some_and(|live| same_content(&live, &o))) => {
                let msg = format!("Restore of {kind}, {object_name} skipped: it already exists in the cluster");
                log.line("info", &msg, &[("restore", &full_name)]);
                continue;
            }
            Err(e) if e.code == 409 => {
                let message = format!(
                    "could not restore, {kind} \"{object_name}\" already exists. Warning: the in-cluster version is different than the backed-up version"
                );
                log.line("warning", &message, &[("restore", &full_name)]);
                warnings.add(&ns, message);
                continue;
            }
            Err(e) => {
                let message = format!("error restoring {item_key}: {}", e.message);
                log.line("error", &message, &[("restore", &full_name)]);
                errors.add(&ns, message);
                continue;
            }
        }
        restored_count += 1;
        let msg =
            format!("Restored {restored_count} items out of an estimated total of {total} (estimate will change throughout the restore)");
        log.line(
            "info",
            &msg,
            &[
                ("name", &object_name),
                ("namespace", &ns),
                ("progress", ""),
                ("resource", &resource_text),
                ("restore", &full_name),
            ],
        );
    }
    let phase = if errors.count() > 0 { "PartiallyFailed" } else { "Completed" };
    log.line("info", "restore completed", &[("restore", &full_name)]);
    lock(&cluster.inner.storage.inner).restores.insert(
        name.to_owned(),
        StoredRun {
            log: log.0,
            results: json!({"errors": errors.to_json(), "warnings": warnings.to_json()}),
        },
    );
    set_status(
        cluster,
        "restores",
        namespace,
        name,
        json!({"phase": phase, "completionTimestamp": now(), "errors": errors.count(), "warnings": warnings.count(),
               "progress": {"totalItems": total, "itemsRestored": restored_count}}),
    );
}

/// The BackupStorageLocation controllers: validation (a new location becomes Available) and
/// the backup sync, every [`VeleroBehaviour::sync_period`].
pub(crate) async fn sync_storage_locations(cluster: Cluster) {
    loop {
        let period = cluster.velero_behaviour().sync_period.max(Duration::from_millis(10));
        tokio::time::sleep(period).await;
        let locations = cluster.store().list("velero.io", "backupstoragelocations", "");
        for location in locations {
            sync_location(&cluster, &location);
        }
    }
}

fn sync_location(cluster: &Cluster, location: &Value) {
    let namespace = location["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = location["metadata"]["name"].as_str().unwrap_or_default();
    let mut status = json!({"lastSyncedTime": now()});
    if location["status"]["phase"].is_null() {
        status["phase"] = "Available".into();
        status["lastValidationTime"] = now().into();
    }
    set_status(cluster, "backupstoragelocations", namespace, name, status);
    let Some(resource) = cluster.resource("velero.io", "backups") else {
        return;
    };
    let here = place(location);
    let missing: Vec<(String, StoredBackup)> = {
        let bucket = lock(&cluster.inner.storage.inner);
        bucket
            .backups
            .iter()
            .filter(|(_, b)| b.place == here)
            .filter(|(backup, _)| get(cluster, "backups", namespace, backup).is_none())
            .map(|(n, b)| (n.clone(), b.clone()))
            .collect()
    };
    for (backup, stored) in missing {
        // Created with its status in one go (Backups have no status subresource), so the
        // backup controller takes it for a finished backup and leaves it alone.
        let mut object = stored.object.clone();
        object["metadata"] = json!({"name": backup, "namespace": namespace,
            "labels": stored.object["metadata"]["labels"], "annotations": stored.object["metadata"]["annotations"]});
        if !object["metadata"]["labels"].is_object() {
            object["metadata"]["labels"] = json!({});
        }
        if object["metadata"]["annotations"].is_null() {
            object["metadata"].as_object_mut().map(|m| m.remove("annotations"));
        }
        object["metadata"]["labels"]["velero.io/storage-location"] = name.into();
        object["spec"]["storageLocation"] = name.into();
        let _ = crate::http::create_object(cluster, &resource, namespace, object, "velero-server");
    }
}

/// The Schedule controller's validation: a cron of five fields (or a `@` descriptor).
fn validate_schedule(cluster: &Cluster, namespace: &str, name: &str, schedule: &Value) {
    let cron = schedule["spec"]["schedule"].as_str().unwrap_or_default().trim();
    let fields = cron.split_whitespace().count();
    let errors: Vec<String> = if cron.is_empty() {
        vec!["Schedule must be a non-empty valid Cron expression".into()]
    } else if fields == 5 || cron.starts_with('@') {
        Vec::new()
    } else {
        vec![format!("invalid schedule: expected exactly 5 fields, found {fields}: {cron}")]
    };
    let status = if errors.is_empty() {
        json!({"phase": "Enabled", "validationErrors": null})
    } else {
        json!({"phase": "FailedValidation", "validationErrors": errors})
    };
    let current = &schedule["status"];
    if current["phase"] == status["phase"] && current["validationErrors"] == status["validationErrors"] {
        return;
    }
    set_status(cluster, "schedules", namespace, name, status);
}

/// What the cron of a Schedule does when it fires: see [`Cluster::run_schedule`].
pub(crate) fn run_schedule(cluster: &Cluster, namespace: &str, schedule_name: &str) -> String {
    let at = chrono::Utc::now();
    let backup_name = format!("{schedule_name}-{}", at.format("%Y%m%d%H%M%S"));
    let (Some(schedule), Some(resource)) = (
        get(cluster, "schedules", namespace, schedule_name),
        cluster.resource("velero.io", "backups"),
    ) else {
        return backup_name;
    };
    let mut spec = schedule["spec"]["template"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    let mut labels = schedule["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in spec["metadata"]["labels"].as_object().into_iter().flatten() {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert("velero.io/schedule-name".into(), schedule_name.into());
    let mut metadata = json!({"name": backup_name, "namespace": namespace, "labels": labels});
    if schedule["spec"]["useOwnerReferencesInBackup"] == true {
        metadata["ownerReferences"] = json!([{"apiVersion": "velero.io/v1", "kind": "Schedule", "name": schedule_name,
            "uid": schedule["metadata"]["uid"], "controller": true}]);
    }
    let backup = json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": metadata, "spec": spec});
    if crate::http::create_object(cluster, &resource, namespace, backup, "velero-server").is_ok() {
        set_status(
            cluster,
            "schedules",
            namespace,
            schedule_name,
            json!({"lastBackup": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
        );
    }
    backup_name
}

/// The DownloadRequest controller: a URL on kubesim's server for the gzipped file, valid
/// ten minutes; left `New` when the target is not in the storage.
fn process_download(cluster: &Cluster, namespace: &str, name: &str, target: &Value) {
    let target_name = target["name"].as_str().unwrap_or_default();
    let storage = &cluster.inner.storage;
    let body: Option<Vec<u8>> = match target["kind"].as_str().unwrap_or_default() {
        "BackupLog" => storage.stored(target_name).map(|b| b.run.log.into_bytes()),
        "BackupResults" => storage.stored(target_name).map(|b| b.run.results.to_string().into_bytes()),
        "BackupResourceList" => storage.stored(target_name).map(|b| {
            let mut list: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for item in &b.items {
                let id = format!(
                    "{}/{}",
                    item["apiVersion"].as_str().unwrap_or_default(),
                    item["kind"].as_str().unwrap_or_default()
                );
                let meta = &item["metadata"];
                let entry = match meta["namespace"].as_str() {
                    Some(ns) => format!("{ns}/{}", meta["name"].as_str().unwrap_or_default()),
                    None => meta["name"].as_str().unwrap_or_default().to_owned(),
                };
                list.entry(id).or_default().push(entry);
            }
            json!(list).to_string().into_bytes()
        }),
        "RestoreLog" => storage.restore(target_name).map(|r| r.log.into_bytes()),
        "RestoreResults" => storage.restore(target_name).map(|r| r.results.to_string().into_bytes()),
        _ => None,
    };
    let (Some(body), Some(url)) = (body, cluster.server_url()) else {
        set_status(cluster, "downloadrequests", namespace, name, json!({"phase": "New"}));
        return;
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = gz.write_all(&body).and_then(|()| gz.finish());
    let Ok(compressed) = compressed else { return };
    let id = uuid::Uuid::new_v4().to_string();
    lock(&cluster.inner.downloads).insert(id.clone(), compressed);
    let expiration = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    set_status(
        cluster,
        "downloadrequests",
        namespace,
        name,
        json!({"phase": "Processed", "downloadURL": format!("{url}/kubesim/downloads/{id}"), "expiration": expiration}),
    );
}
