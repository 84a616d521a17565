//! Running a command under a shifted clock with Debian's `faketime` (libfaketime). The
//! evidence is the offset observed: `date` run under the same offset, against the real
//! clock.

use super::{ChaosError, Injection, Revert, evidence, ts};
use chrono::Utc;
use std::process::Stdio;
use std::time::Duration;

pub struct SkewOptions {
    /// libfaketime's format: `+2h`, `-30m`, `+1d`, or `@2030-01-01 00:00:00`.
    pub offset: String,
    pub command: Vec<String>,
}

/// Starts the command under the offset through `spawner` (its own process group, recorded).
pub async fn inject(options: SkewOptions, spawner: lifeboat_backup::process::Spawner) -> Result<Injection, ChaosError> {
    let Some((program, args)) = options.command.split_first() else {
        return Err(ChaosError::Invalid(
            "command: give the program to run under the skewed clock".into(),
        ));
    };
    let observed_offset = observe_offset(&options.offset).await?;
    let mut command = tokio::process::Command::new("faketime");
    command
        .arg("-f")
        .arg(&options.offset)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = spawner
        .spawn(command)
        .await
        .map_err(|e| ChaosError::NotApplied(format!("starting `{program}` under faketime: {e}")))?;
    let injected_at = Utc::now();
    let pid = child.id().unwrap_or_default();
    let undo = Box::pin(async move {
        let exited = match child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => {
                if let Ok(pid) = i32::try_from(pid) {
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                }
                match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                    Ok(status) => status.map(|s| s.to_string()).unwrap_or_default(),
                    Err(_) => {
                        let _ = child.start_kill();
                        "killed".to_owned()
                    }
                }
            }
        };
        let output = match child.stdout.take() {
            Some(mut out) => {
                let mut buf = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(1), tokio::io::AsyncReadExt::read_to_end(&mut out, &mut buf)).await;
                String::from_utf8_lossy(&buf[buf.len().saturating_sub(4096)..]).into_owned()
            }
            None => String::new(),
        };
        Ok(evidence([("exit", exited.into()), ("stdout_tail", output.into())]))
    });
    Ok(Injection {
        injected_at,
        evidence: evidence([
            ("offset", options.offset.into()),
            ("observed_offset_seconds", observed_offset.into()),
            ("pid", pid.into()),
            ("command", options.command.join(" ").into()),
            ("started_at", ts(injected_at)),
        ]),
        revert: Some(Revert { undo, durable: None }),
    })
}

/// Runs `date +%s.%N` under the offset and returns how far it is from the real clock.
pub async fn observe_offset(offset: &str) -> Result<f64, ChaosError> {
    let before = Utc::now();
    let out = tokio::process::Command::new("faketime")
        .args(["-f", offset, "date", "+%s.%N"])
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ChaosError::Invalid("faketime is not installed (apt install faketime)".into()),
            _ => ChaosError::NotApplied(format!("running faketime: {e}")),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let skewed: f64 = text.trim().parse().map_err(|_| {
        ChaosError::Invalid(format!(
            "faketime did not accept offset `{offset}` ({}); use e.g. +2h, -30m or \"@2030-01-01 00:00:00\"",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    let real = before.timestamp_micros() as f64 / 1e6;
    Ok(((skewed - real) * 1000.0).round() / 1000.0)
}
