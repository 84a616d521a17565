//! Objects and their history: one resourceVersion counter for the cluster, every change an
//! event kept in a bounded window for watches to resume from (older ones: 410 Gone), and a
//! broadcast of new events to the open watches.

use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// `(group, plural, namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String, String, String);

#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

pub struct Store {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// Watches from before this resourceVersion get 410 Gone.
    oldest_kept: u64,
    pub changes: broadcast::Sender<Arc<Change>>,
}

const HISTORY: usize = 10_000;

impl Default for Store {
    fn default() -> Self {
        Store {
            rv: 1000,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest_kept: 1000,
            changes: broadcast::channel(4096).0,
        }
    }
}

impl Store {
    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of a resource, in one namespace or (empty) all.
    pub fn list(&self, group: &str, plural: &str, namespace: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, p, ns, _), _)| g == group && p == plural && (namespace.is_empty() || ns == namespace))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every object in a namespace, with its key.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Key> {
        self.objects.keys().filter(|(_, _, ns, _)| ns == namespace).cloned().collect()
    }

    /// Stores `object` (already carrying its new resourceVersion) and records the change.
    pub fn put(&mut self, key: Key, object: Value, kind: &'static str) {
        self.objects.insert(key.clone(), object.clone());
        self.record(key, object, kind);
    }

    pub fn remove(&mut self, key: &Key, mut object: Value) {
        self.objects.remove(key);
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        self.record(key.clone(), object, "DELETED");
    }

    fn record(&mut self, (group, plural, namespace, _): Key, object: Value, kind: &'static str) {
        let change = Arc::new(Change {
            rv: self.rv,
            group,
            plural,
            namespace,
            kind,
            object,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.oldest_kept = old.rv + 1;
            }
        }
        let _ = self.changes.send(change);
    }

    /// The changes after `rv`, or `None` when they are no longer kept (410 Gone).
    pub fn since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv + 1 < self.oldest_kept {
            return None;
        }
        Some(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Forgets the history up to now: a watch resuming from before gets 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest_kept = self.rv + 1;
    }

    pub fn oldest_kept(&self) -> u64 {
        self.oldest_kept
    }
}
