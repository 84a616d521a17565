//! `exec`: run a program. Outputs: `exit_code`, `stdout`/`stderr` tails, and the fields of
//! a JSON object printed as stdout's last line or written to `outputs_file`.
//!
//! The child runs in its own process group, journaled before it runs (see
//! [`crate::steps::processes`]). The step ends with the group: when the program exits,
//! whatever it left running in its group is stopped too, and cancellation (abort, timeout)
//! stops the whole group — SIGTERM, then SIGKILL after `kill_grace`. So an attempt never
//! outlives its step and never runs beside the next attempt. A daemon meant to outlive the
//! step must leave the group (`setsid`).

use super::{Outputs, StepContext, StepError, Tail, Text};
use crate::plan::model::Limit;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The program, or a list: the program and its arguments.
    pub command: Command,
    /// More arguments, appended after `command`.
    #[serde(default)]
    pub args: Vec<Text>,
    /// Extra environment variables (the engine's environment is inherited).
    #[serde(default)]
    pub env: BTreeMap<String, Text>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Text written to the program's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// A file the program writes a JSON object of outputs to.
    #[serde(default)]
    pub outputs_file: Option<String>,
    /// Exit codes that count as success (default `[0]`).
    #[serde(default)]
    pub success_codes: Option<Vec<crate::plan::count::Count<0, 255>>>,
    /// How long the program gets between SIGTERM and SIGKILL when cancelled (default `5s`).
    #[serde(default)]
    pub kill_grace: Option<Limit>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Command {
    Program(String),
    Argv(Vec<Text>),
}

const TAIL_BYTES: usize = 4096;
/// stdout keeps more, so that a long JSON object on its last line still parses.
const STDOUT_KEEP: usize = 256 * 1024;

pub async fn run(options: Options, cx: &StepContext) -> Result<Outputs, StepError> {
    let mut argv: Vec<String> = match options.command {
        Command::Program(p) => vec![p],
        Command::Argv(v) => v.into_iter().map(|t| t.0).collect(),
    };
    argv.extend(options.args.into_iter().map(|t| t.0));
    let Some(program) = argv.first().cloned().filter(|p| !p.is_empty()) else {
        return Err(StepError::terminal("`command` is empty; give the program to run"));
    };
    let grace = options.kill_grace.map_or(Duration::from_secs(5), |d| d.get());
    let mut command = tokio::process::Command::new(&program);
    command
        .args(&argv[1..])
        .env("LIFEBOAT_RUN_ID", &cx.run_id)
        .env("LIFEBOAT_STEP_ID", &cx.step_id)
        .env("LIFEBOAT_IDEMPOTENCY_KEY", &cx.idempotency_key)
        .env("LIFEBOAT_ATTEMPT", cx.attempt.to_string())
        .envs(options.env.iter().map(|(k, v)| (k, &v.0)))
        .stdin(if options.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &options.cwd {
        command.current_dir(cwd);
    }
    let (mut child, group) = cx.spawner().spawn_recorded(command).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StepError::terminal(format!(
            "cannot run `{program}`: no such program or working directory; check `command` and `cwd`"
        )),
        std::io::ErrorKind::PermissionDenied => StepError::terminal(format!("cannot run `{program}`: permission denied")),
        _ => StepError::retryable(format!("cannot start `{program}`: {e}")),
    })?;
    if let (Some(input), Some(mut stdin)) = (options.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    let stdout = tokio::spawn(read_tail(child.stdout.take(), STDOUT_KEEP));
    let stderr = tokio::spawn(read_tail(child.stderr.take(), TAIL_BYTES));

    let status = super::processes::wait_or_stop(&cx.cancel, &mut child, &group, grace, &program).await?;
    // What the program left running in its group ends with the step (and lets go of the
    // output pipes it may hold).
    if let Err(e) = group.stop(grace).await {
        return Err(StepError::retryable(format!(
            "`{program}` exited, but what it left running could not be stopped: {e}"
        )));
    }
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    let code = status.code();
    let mut outputs = Outputs::new();
    outputs.insert("exit_code".into(), code.map_or(Value::Null, Value::from));
    let stdout_text = stdout.text();
    outputs.insert("stdout".into(), tail_chars(&stdout_text, TAIL_BYTES).into());
    outputs.insert("stderr".into(), stderr.text().into());

    let ok_codes: Vec<i32> = options
        .success_codes
        .map_or_else(|| vec![0], |c| c.iter().map(|c| c.get() as i32).collect());
    if !code.is_some_and(|c| ok_codes.contains(&c)) {
        let how = match code {
            Some(c) => format!("exited with status {c}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("was killed by signal {}", status.signal().unwrap_or(0))
            }
        };
        let last = stderr
            .text()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        return Err(StepError::retryable(format!("`{program}` {how}{last}")));
    }
    let structured = match &options.outputs_file {
        Some(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| StepError::terminal(format!("reading outputs_file `{path}`: {e}")))?;
            Some(
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| StepError::terminal(format!("outputs_file `{path}` is not a JSON object: {e}")))?,
            )
        }
        None => stdout_text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<Value>(l.trim()).ok()),
    };
    match structured {
        Some(Value::Object(fields)) => {
            for (k, v) in fields {
                // The engine's own outputs keep their meaning; a program cannot fake them.
                outputs.entry(k).or_insert(v);
            }
        }
        Some(_) if options.outputs_file.is_some() => return Err(StepError::terminal("outputs_file must hold a JSON object")),
        _ => {}
    }
    Ok(outputs)
}

async fn read_tail(stream: Option<impl AsyncRead + Unpin>, keep: usize) -> Tail {
    let mut tail = Tail::new(keep);
    let Some(mut stream) = stream else { return tail };
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.push(&buf[..n]);
    }
    tail
}

fn tail_chars(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut start = s.len() - max_bytes;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
