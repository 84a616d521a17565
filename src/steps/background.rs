//! Run-scoped background work that outlives the step that started it: the RPO canary,
//! active faults, fault proxies, alert silences.
//!
//! A step registers what it started together with how to release it. Releasing happens
//! once: when its owner asks (`validation.canary_stop`, `chaos.revert`, a fault's
//! duration running out), when the run is aborted or rolls back (faults only), and in
//! any case before the run's end is journaled. A fault left behind after its run ended
//! would be a bug, so the runner's last act is [`release_all`].

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// What kind of background work an entry is; decides the release order at the end
/// (faults first, so recovery is never left under fire; services after them, because
/// faults may live inside them; alert silences last, so that nothing the drill tears down
/// pages anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Fault,
    Canary,
    Service,
    Silence,
}

pub type Release = Box<dyn FnOnce(String) -> BoxFuture<'static, ()> + Send>;

struct Entry {
    step: String,
    class: Class,
    release: Release,
}

static RUNS: LazyLock<Mutex<HashMap<String, Vec<Entry>>>> = LazyLock::new(Default::default);

fn runs() -> std::sync::MutexGuard<'static, HashMap<String, Vec<Entry>>> {
    RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers work started by `step` of `run_id`; `release` is called with the reason.
pub fn register(run_id: &str, step: &str, class: Class, release: Release) {
    runs().entry(run_id.to_owned()).or_default().push(Entry {
        step: step.to_owned(),
        class,
        release,
    });
}

/// Whether `step` of `run_id` has work of `class` still registered.
pub fn is_active(run_id: &str, step: &str, class: Class) -> bool {
    runs()
        .get(run_id)
        .is_some_and(|entries| entries.iter().any(|e| e.step == step && e.class == class))
}

fn take(run_id: &str, matches: impl Fn(&Entry) -> bool) -> Vec<Entry> {
    let mut map = runs();
    let Some(entries) = map.get_mut(run_id) else {
        return Vec::new();
    };
    let (taken, kept): (Vec<Entry>, Vec<Entry>) = std::mem::take(entries).into_iter().partition(|e| matches(e));
    *entries = kept;
    if entries.is_empty() {
        map.remove(run_id);
    }
    taken
}

async fn release_entries(mut entries: Vec<Entry>, reason: &str) -> usize {
    entries.sort_by_key(|e| e.class);
    let count = entries.len();
    // Faults are released together: the abort path promises every fault is gone within
    // a second, which one-by-one reverts could not keep.
    let (faults, rest): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(|e| e.class == Class::Fault);
    futures::future::join_all(faults.into_iter().map(|e| (e.release)(reason.to_owned()))).await;
    for e in rest {
        (e.release)(reason.to_owned()).await;
    }
    count
}

/// Releases the work of `class` that `step` started; returns how many entries.
pub async fn release_step(run_id: &str, step: &str, class: Class, reason: &str) -> usize {
    release_entries(take(run_id, |e| e.step == step && e.class == class), reason).await
}

/// Releases every entry of `class` in the run (e.g. every fault on abort).
pub async fn release_class(run_id: &str, class: Class, reason: &str) -> usize {
    release_entries(take(run_id, |e| e.class == class), reason).await
}

/// Releases everything the run still holds, faults first.
pub async fn release_all(run_id: &str, reason: &str) -> usize {
    release_entries(take(run_id, |_| true), reason).await
}

/// Named services a run starts for its faults (fault proxies): found by name by later
/// steps of the same run, stopped when the run ends.
pub struct RunServices<T>(std::sync::Mutex<std::collections::BTreeMap<(String, String), T>>);

impl<T: Clone + Send + 'static> Default for RunServices<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Send + 'static> RunServices<T> {
    pub const fn new() -> Self {
        RunServices(std::sync::Mutex::new(std::collections::BTreeMap::new()))
    }

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<(String, String), T>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, run_id: &str, name: &str) -> Option<T> {
        self.map().get(&(run_id.to_owned(), name.to_owned())).cloned()
    }

    /// Keeps `service` under `name` until the run ends, then calls `stop` on it.
    pub fn insert(&'static self, run_id: &str, step: &str, name: &str, service: T, stop: fn(&T)) {
        let key = (run_id.to_owned(), name.to_owned());
        self.map().insert(key.clone(), service);
        register(
            run_id,
            step,
            Class::Service,
            Box::new(move |_reason| {
                Box::pin(async move {
                    if let Some(s) = self.map().remove(&key) {
                        stop(&s);
                    }
                })
            }),
        );
    }
}
