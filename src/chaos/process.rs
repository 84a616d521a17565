//! Signalling processes: kill (KILL/TERM/INT) and freeze (STOP, reverted by CONT).
//! The evidence is the process *observed* gone (or stopped), polled from `/proc`.

use super::{ChaosError, DurableRevert, Injection, Revert, evidence, ts};
use chrono::Utc;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use regex::Regex;
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

pub async fn inject(options: KillOptions) -> Result<Injection, ChaosError> {
    let pids = resolve(&options.target)?;
    let mut targets = Vec::new();
    for &pid in &pids {
        targets.push(pid);
        if options.include_children {
            targets.extend(descendants(pid));
        }
    }
    let described: Vec<Value> = targets
        .iter()
        .map(|&p| serde_json::json!({ "pid": p, "cmdline": cmdline(p).unwrap_or_default() }))
        .collect();
    let start_times: Vec<(i32, u64)> = targets.iter().filter_map(|&p| start_time(p).map(|s| (p, s))).collect();
    let sent_at = Utc::now();
    for &pid in &targets {
        match kill(Pid::from_raw(pid), options.how.signal()) {
            Ok(()) => {}
            // A child may exit on its own between listing and signalling.
            Err(nix::errno::Errno::ESRCH) if pid != pids[0] => {}
            Err(e) => return Err(ChaosError::NotApplied(format!("sending {:?} to {pid}: {e}", options.how.signal()))),
        }
    }
    let deadline = tokio::time::Instant::now() + options.observe_within;
    let observed = loop {
        let pending: Vec<i32> = targets
            .iter()
            .copied()
            .filter(|&p| match options.how {
                How::Stop => state(p).is_some_and(|s| s != 'T' && s != 't'),
                _ => alive(p),
            })
            .collect();
        if pending.is_empty() {
            break Utc::now();
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ChaosError::NotApplied(format!(
                "signalled {:?} but process(es) {pending:?} were still {} after {:?}",
                options.how.signal(),
                if options.how == How::Stop { "running" } else { "alive" },
                options.observe_within
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let mut ev = evidence([
        ("signal", format!("{:?}", options.how.signal()).into()),
        ("processes", described.into()),
        ("signal_sent_at", ts(sent_at)),
        ("observed", if options.how == How::Stop { "stopped" } else { "gone" }.into()),
        ("observed_at", ts(observed)),
    ]);
    ev.insert("observe_ms".into(), (observed - sent_at).num_milliseconds().into());
    let revert = (options.how == How::Stop).then(|| {
        let durable: Vec<DurableRevert> = start_times
            .iter()
            .map(|&(pid, start_time)| DurableRevert::ContinueProcess { pid, start_time })
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
    });
    Ok(Injection {
        injected_at: observed,
        evidence: ev,
        revert,
    })
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
