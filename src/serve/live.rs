//! A value the service reads afresh at each use, which operator mode replaces while the
//! service runs (plans and schedules from custom resources); file mode never changes it.

use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The value as it is now; later changes do not affect what is returned.
    pub fn current(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the value by `change(current)`.
    pub fn update(&self, change: impl FnOnce(&T) -> T) {
        let mut guard = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Arc::new(change(&guard));
    }
}
