//! The secret sweep: one secret, read from the environment, is passed through every option
//! of every step kind (and through steps that succeed and write evidence with it: a command's
//! output, an injected SQL statement, a command under a skewed clock, a guard's failures).
//! After the run, the secret must appear nowhere: not in the journal's files, not in any
//! report, not in the logs (at debug level).

mod support;

use serde_json::{Map, Value, json};
use std::process::Command;

const SECRET: &str = "sweep-secret-7Q2xV";
const EXPR: &str = "${{ env.SWEEP_SECRET }}";

/// Options for `kind` with the secret in every field, and minimal values where a field must
/// have another shape to compile (durations, numbers, booleans).
fn secret_options(schema: &Value) -> Map<String, Value> {
    let root = schema;
    let resolve = |s: &Value| -> Value {
        let mut s = s.clone();
        for _ in 0..8 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else { break };
            s = root.pointer(r.trim_start_matches('#')).cloned().unwrap_or(Value::Bool(true));
        }
        s
    };
    let schema = resolve(schema);
    let mut out = Map::new();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (name, prop) in props {
        let prop = resolve(prop);
        let value = if prop.get("format").and_then(Value::as_str) == Some("lifeboat-duration") {
            // Durations cannot hold text; the smallest allowed keeps steps short.
            let min = prop.get("x-lifeboat-min-ms").and_then(Value::as_u64).unwrap_or(0).max(1);
            json!(format!("{min}ms"))
        } else {
            // A whole expression may stand for any type: at run time the secret lands in the
            // option whatever its type, and whatever error that causes must not show it.
            json!(EXPR)
        };
        out.insert(name.clone(), value);
    }
    out
}

fn plan_source(postgres_url: Option<&str>) -> String {
    let mut steps = String::new();
    for kind in lifeboat::steps::KINDS {
        if kind.name == "approval" {
            // It would wait for a person; its options are only shown, never journaled.
            continue;
        }
        let with = serde_json::to_string(&secret_options(&(kind.options_schema)())).unwrap();
        let id = kind.name.replace('.', "-");
        steps.push_str(&format!(
            "    - id: sweep-{id}\n      kind: {}\n      on_failure: continue\n      timeout: 5s\n      with: {with}\n",
            kind.name
        ));
    }
    // Steps that succeed, and so journal evidence and outputs made from the secret.
    steps.push_str(&format!(
        "    - id: echo\n      kind: exec\n      with:\n        command: [sh, -c, \"echo {EXPR}; echo {EXPR} >&2\"]\n        env: {{ TOKEN: \"{EXPR}\" }}\n"
    ));
    steps.push_str(&format!(
        "    - id: skewed\n      kind: chaos.clock_skew\n      with:\n        offset: \"+1h\"\n        command: [sh, -c, \"echo {EXPR}; sleep 0.2\"]\n        duration: 500ms\n        wait: true\n"
    ));
    if let Some(url) = postgres_url {
        steps.push_str(&format!(
            "    - id: sql\n      kind: chaos.sql\n      with:\n        dsn: \"{url}\"\n        statement: \"SELECT '{EXPR}'\"\n"
        ));
    }
    let guard = format!(
        "  guards:\n    - id: unreachable\n      kind: validation.tcp_probe\n      interval: 200ms\n      failure_threshold: 1000\n      with: {{ address: \"{EXPR}:1\" }}\n"
    );
    support::plan("secret-sweep", &format!("  concurrency: 8\n{guard}  steps:\n{steps}"))
}

fn contains_secret(bytes: &[u8]) -> bool {
    bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())
}

#[test]
fn a_secret_in_every_option_reaches_no_journal_report_or_log() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let plan = dir.path().join("sweep.yaml");
    let postgres_url = std::env::var("LIFEBOAT_TEST_POSTGRES_URL").ok();
    if postgres_url.is_none() {
        eprintln!("note: LIFEBOAT_TEST_POSTGRES_URL unset; the chaos.sql step is left out");
    }
    std::fs::write(&plan, plan_source(postgres_url.as_deref())).unwrap();
    let lifeboat = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--state")
            .arg(&state)
            .args(args)
            .env("SWEEP_SECRET", SECRET)
            .env(
                "RUST_LOG",
                "lifeboat=debug,lifeboat_backup=debug,lifeboat_failover=debug,lifeboat_validation=debug",
            )
            .env("LIFEBOAT_SCRATCH", dir.path().join("scratch"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let validated = lifeboat(&["plan", "validate", plan.to_str().unwrap()]);
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stderr));
    let report_dir = dir.path().join("reports");
    std::fs::create_dir_all(&report_dir).unwrap();
    let reports: Vec<String> = ["html", "md", "json", "junit.xml"]
        .iter()
        .map(|ext| report_dir.join(format!("sweep.{ext}")).display().to_string())
        .collect();
    let mut args = vec!["drill", plan.to_str().unwrap()];
    for r in &reports {
        args.extend(["--report", r.as_str()]);
    }
    let drill = lifeboat(&args);
    let mut logs = drill.stderr.clone();
    logs.extend(&drill.stdout);
    let listed = lifeboat(&["runs", "--output", "json"]);
    let runs: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();
    let shown = lifeboat(&["runs", "show", &run_id, "--output", "json"]);
    logs.extend(&shown.stdout);
    logs.extend(&shown.stderr);

    // The sweep is only meaningful if the secret really went through the steps.
    let shown_json: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let text = shown_json.to_string();
    assert!(text.contains("***"), "the secret was masked somewhere: {text}");
    let echo = shown_json["steps"].as_array().unwrap().iter().find(|s| s["id"] == "echo").unwrap();
    assert_eq!(echo["status"], "succeeded", "{echo}");

    assert!(
        !contains_secret(&logs),
        "the secret reached the output or logs:\n{}",
        String::from_utf8_lossy(&logs)
    );
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("state.db") {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(!contains_secret(&bytes), "the secret is in the journal file {name}");
        }
    }
    for report in &reports {
        let bytes = std::fs::read(report).unwrap();
        assert!(!contains_secret(&bytes), "the secret is in the report {report}");
    }
}
