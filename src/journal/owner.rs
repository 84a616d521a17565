//! Which process owns a run, and whether it is still alive.
//!
//! On the owner's own host, liveness is exact: the pid exists *and* its start time (from
//! `/proc`) matches, so a recycled pid is not mistaken for the owner. From another host
//! only the heartbeat can tell; it is considered stale after [`HEARTBEAT_STALE`].

use std::time::Duration;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// Process start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub started: u64,
}

impl Owner {
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            host: this_host(),
            pid,
            started: process_start_ticks(pid).unwrap_or(0),
        }
    }

    /// Whether the owner is alive, given its last heartbeat age.
    pub fn is_alive(&self, heartbeat_age: Duration) -> bool {
        if self.host == this_host() {
            process_start_ticks(self.pid).is_some_and(|t| t == self.started)
        } else {
            heartbeat_age < HEARTBEAT_STALE
        }
    }
}

pub fn this_host() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn process_start_ticks(pid: u32) -> Option<u64> {
    lifeboat_backup::process::start_ticks(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = Owner::me();
        assert!(me.started > 0);
        assert!(me.is_alive(Duration::ZERO));
        let impostor = Owner {
            started: me.started + 1,
            ..me.clone()
        };
        assert!(!impostor.is_alive(Duration::ZERO));
        let remote = Owner {
            host: "elsewhere".into(),
            ..me
        };
        assert!(remote.is_alive(Duration::from_secs(1)));
        assert!(!remote.is_alive(HEARTBEAT_STALE));
    }
}
