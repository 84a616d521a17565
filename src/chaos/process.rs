//! Signalling processes: kill (KILL/TERM/INT) and freeze (STOP, reverted by CONT).
//! The evidence is the process *observed* gone (or stopped), polled from `/proc`.

use super::{ChaosError, DurableRevert, Injection, Revert, evidence, ts};
use chrono::Utc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Target {
    Pid(i32),
    /// First line of the file (e.g. PostgreSQL's `postmaster.pid`).
    PidFile(std::path::PathBuf),
    /// A regex on the command line; must match exactly one process unless `all`.
    Name {
        pattern: String,
        all: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Kill,
    Term,
    Int,
    Stop,
}

impl How {
    pub fn parse(s: &str) -> Result<How, ChaosError> {
        match s.to_ascii_uppercase().trim_start_matches("SIG") {
            "KILL" => Ok(How::Kill),
            "TERM" => Ok(How::Term),
            "INT" => Ok(How::Int),
            "STOP" => Ok(How::Stop),
            _ => Err(ChaosError::Invalid(format!("signal: `{s}` is not one of KILL, TERM, INT, STOP"))),
        }
    }

    fn signal(self) -> Signal {
        match self {
            How::Kill => Signal::SIGKILL,
            How::Term => Signal::SIGTERM,
            How::Int => Signal::SIGINT,
            How::Stop => Signal::SIGSTOP,
        }
    }
}

pub struct KillOptions {
    pub target: Target,
    pub how: How,
    /// Signal the target's descendants too (a whole service, as a machine loss would).
    pub include_children: bool,
    /// How long to wait for the process to be observed gone (or stopped).
    pub observe_within: Duration,
}

/// A process about to be signalled, told apart from a later one with its pid by its start
/// time. Journaled before the signal goes out, so that a step run again after the engine
/// died can tell whether its earlier attempt's signal already took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aimed {
    pub pid: i32,
    pub start_time: u64,
    #[serde(default)]
    pub cmdline: String,
}

impl Aimed {
    /// Still the same process, alive.
    fn present(&self) -> bool {
        start_time(self.pid) == Some(self.start_time) && alive(self.pid)
    }

    fn stopped(&self) -> bool {
        self.present() && state(self.pid).is_some_and(|s| s == 'T' || s == 't')
    }
}

/// The processes `options` name now (the target first, then its descendants if asked).
pub fn aim(options: &KillOptions) -> Result<Vec<Aimed>, ChaosError> {
    let pids = resolve(&options.target)?;
    let mut targets = Vec::new();
    for &pid in &pids {
        targets.push(pid);
        if options.include_children {
            targets.extend(descendants(pid));
        }
    }
    let aimed: Vec<Aimed> = targets
        .into_iter()
        .filter_map(|pid| {
            Some(Aimed {
                pid,
                start_time: start_time(pid)?,
                cmdline: cmdline(pid).unwrap_or_default(),
            })
        })
        .collect();
    if aimed.is_empty() {
        return Err(ChaosError::NotApplied(format!(
            "{:?}: the process exited before it could be signalled",
            options.target
        )));
    }
    Ok(aimed)
}

/// Sends the signal to the aimed processes still present and waits until each is seen gone
/// (or stopped). The first is the target: it must still be there.
pub async fn fire(aimed: &[Aimed], how: How, observe_within: Duration) -> Result<Injection, ChaosError> {
    let sent_at = Utc::now();
    for (i, target) in aimed.iter().enumerate() {
        if !target.present() {
            if i == 0 {
                return Err(ChaosError::NotApplied(format!(
                    "process {} exited before it could be signalled",
                    target.pid
                )));
            }
            // A child may exit on its own between aiming and signalling.
            continue;
        }
        match kill(Pid::from_raw(target.pid), how.signal()) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(ChaosError::NotApplied(format!("sending {:?} to {}: {e}", how.signal(), target.pid))),
        }
    }
    let deadline = tokio::time::Instant::now() + observe_within;
    let observed = loop {
        let pending: Vec<i32> = aimed
            .iter()
            .filter(|p| {
                if how == How::Stop {
                    p.present() && !p.stopped()
                } else {
                    p.present()
                }
            })
            .map(|p| p.pid)
            .collect();
        if pending.is_empty() {
            break Utc::now();
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ChaosError::NotApplied(format!(
                "signalled {:?} but process(es) {pending:?} were still {} after {:?}",
                how.signal(),
                if how == How::Stop { "running" } else { "alive" },
                observe_within
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let mut ev = evidence([
        ("signal", format!("{:?}", how.signal()).into()),
        ("processes", described(aimed)),
        ("signal_sent_at", ts(sent_at)),
        ("observed", if how == How::Stop { "stopped" } else { "gone" }.into()),
        ("observed_at", ts(observed)),
    ]);
    ev.insert("observe_ms".into(), (observed - sent_at).num_milliseconds().into());
    Ok(Injection {
        injected_at: observed,
        evidence: ev,
        revert: (how == How::Stop).then(|| continue_processes(aimed)),
    })
}

/// After the engine died between aiming at `aimed` (at `aimed_at`) and journaling the
/// result: the injection, if the earlier attempt's signal took effect (every aimed process
/// gone, or stopped for STOP). Its time is `aimed_at`, the earliest the fault can have
/// begun, so an RTO measured from it is never shorter than the truth.
pub fn took_effect(aimed: &[Aimed], how: How, aimed_at: chrono::DateTime<Utc>) -> Option<Injection> {
    let in_effect = aimed.iter().all(|p| {
        if how == How::Stop {
            p.stopped() || !p.present()
        } else {
            !p.present()
        }
    });
    if !in_effect {
        return None;
    }
    let seen_at = Utc::now();
    Some(Injection {
        injected_at: aimed_at,
        evidence: evidence([
            ("signal", format!("{:?}", how.signal()).into()),
            ("processes", described(aimed)),
            ("signal_sent_at", ts(aimed_at)),
            ("observed", if how == How::Stop { "stopped" } else { "gone" }.into()),
            ("observed_at", ts(seen_at)),
            (
                "note",
                "signalled by an attempt the engine's death interrupted; seen in effect when the step ran again, timed from when it was aimed".into(),
            ),
        ]),
        revert: (how == How::Stop).then(|| continue_processes(aimed)),
    })
}

fn described(aimed: &[Aimed]) -> Value {
    aimed
        .iter()
        .map(|p| serde_json::json!({ "pid": p.pid, "cmdline": p.cmdline }))
        .collect::<Vec<_>>()
        .into()
}

fn continue_processes(aimed: &[Aimed]) -> Revert {
    let durable: Vec<DurableRevert> = aimed
        .iter()
        .map(|p| DurableRevert::ContinueProcess {
            pid: p.pid,
            start_time: p.start_time,
        })
        .collect();
    let undo_list = durable.clone();
    Revert {
        undo: Box::pin(async move {
            let notes: Result<Vec<String>, String> = undo_list.iter().map(DurableRevert::apply).collect();
            notes.map(|n| evidence([("continued", n.into())]))
        }),
        // One record is enough to resume the main target; its children follow it.
        durable: durable.into_iter().next(),
    }
}

fn resolve(target: &Target) -> Result<Vec<i32>, ChaosError> {
    match target {
        Target::Pid(pid) if alive(*pid) => Ok(vec![*pid]),
        Target::Pid(pid) => Err(ChaosError::NotApplied(format!("no process with pid {pid}"))),
        Target::PidFile(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| ChaosError::NotApplied(format!("reading pid file {}: {e}", path.display())))?;
            let pid: i32 = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse().ok())
                .ok_or_else(|| ChaosError::Invalid(format!("{}: the first line is not a pid", path.display())))?;
            resolve(&Target::Pid(pid))
        }
        Target::Name { pattern, all } => {
            let re = Regex::new(pattern).map_err(|e| ChaosError::Invalid(format!("name: invalid regex `{pattern}`: {e}")))?;
            let me = std::process::id() as i32;
            let matches: Vec<i32> = all_pids()
                .into_iter()
                .filter(|&p| p != me && cmdline(p).is_some_and(|c| re.is_match(&c)))
                .collect();
            match matches.len() {
                0 => Err(ChaosError::NotApplied(format!("no process's command line matches /{pattern}/"))),
                1 => Ok(matches),
                _ if *all => Ok(matches),
                n => Err(ChaosError::Invalid(format!(
                    "{n} processes match /{pattern}/ ({matches:?}); make the pattern specific or set `all: true`"
                ))),
            }
        }
    }
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text: String = String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

fn state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// Start time in clock ticks since boot: tells a process from a later one with its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    u32::try_from(pid).ok().and_then(lifeboat_backup::process::start_ticks)
}

/// Present and not a zombie (a killed child its parent has not reaped yet is gone).
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !matches!(state(pid), Some('Z' | 'X') | None)
}

fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, stat_fields(p)?.get(1)?.parse().ok()?)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid) in &parents {
            if ppid == parent && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}
