//! A generative fuzzer of plans: random plans over every step kind's options (generated from
//! each kind's options schema, with hostile values: zero and huge durations, negative
//! counts, malformed and dangling expressions, DSNs in both forms) and randomly mutated
//! example plans. The compiler must never panic, and `lifeboat plan validate` and
//! `lifeboat run --dry-run` must exit 0 or 2 (never 101, a panic) on every one of them.
//! The number of cases is bounded so the suite stays fast; set `PROPTEST_CASES` for more.

mod support;

use proptest::prelude::{ProptestConfig, any, proptest};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use std::process::Command;

const DURATIONS: &[&str] = &[
    "0s",
    "0ms",
    "1ms",
    "5ms",
    "1s",
    "90s",
    "1h30m",
    "366d",
    "400d",
    "-1s",
    "abc",
    "99999999999999999999s",
    "",
];
const TEXTS: &[&str] = &[
    "",
    "x",
    "${{ params.p }}",
    "${{ params }}",
    "${{ params.p.q }}",
    "${{ env.HOME }}",
    "${{ env }}",
    "${{ env.A.B }}",
    "${{ steps.s0.outputs.x }}",
    "${{ steps.s0 }}",
    "${{ steps.s0.outcome }}",
    "${{ steps.nope.outputs.x }}",
    "${{ run.id }}",
    "${{ run }}",
    "${{ 1 + }}",
    "${{",
    "}}",
    "pre ${{ run.plan }} post",
    "postgres://u@127.0.0.1:1/db",
    "host=/tmp port=1 dbname=x",
    "host='unclosed",
    "127.0.0.1:1",
    "http://127.0.0.1:1/",
    "ünïcødé ✓",
    "512MiB",
    "-5",
];

fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match root.pointer(r.trim_start_matches('#')) {
            Some(s) => schema = s,
            None => break,
        }
    }
    schema
}

/// A value for `schema`, usually of the right shape, sometimes not.
fn value_for(root: &Value, schema: &Value, rng: &mut StdRng, depth: usize, hostile: bool) -> Value {
    let schema = resolve(root, schema);
    if hostile && rng.random_bool(0.08) {
        return json!(*TEXTS.choose(rng).unwrap());
    }
    if schema.get("format").and_then(Value::as_str) == Some("lifeboat-duration") {
        return if hostile {
            json!(*DURATIONS.choose(rng).unwrap())
        } else {
            json!("1s")
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array).filter(|b| !b.is_empty()) {
            return value_for(root, branches.choose(rng).unwrap(), rng, depth, hostile);
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array).filter(|v| !v.is_empty()) {
        return values.choose(rng).unwrap().clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.choose(rng).and_then(Value::as_str).unwrap_or("string").to_owned(),
        _ => "string".to_owned(),
    };
    match kind.as_str() {
        "integer" if hostile => json!(*[-1i64, 0, 1, 3, 65535, 65536, 1 << 40].choose(rng).unwrap()),
        "integer" => json!(schema.get("minimum").and_then(Value::as_u64).unwrap_or(1).max(1)),
        "number" if hostile => json!(*[-0.5f64, 0.0, 0.5, 1.0, 1.5, 100.0, 1e300].choose(rng).unwrap()),
        "number" => json!(0.5),
        "boolean" => json!(rng.random_bool(0.5)),
        "null" => Value::Null,
        "array" if depth < 3 => {
            let item = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            let count = if hostile { rng.random_range(0..3) } else { 0 };
            Value::Array((0..count).map(|_| value_for(root, &item, rng, depth + 1, hostile)).collect())
        }
        "object" if depth < 3 => Value::Object(object_for(root, schema, rng, depth + 1, hostile)),
        _ if hostile => json!(*TEXTS.choose(rng).unwrap()),
        _ => json!("x"),
    }
}

/// With `hostile` false, only required fields, each of the right shape: such plans should
/// compile, so that the runtime paths (dry-run rendering) are reached too.
fn object_for(root: &Value, schema: &Value, rng: &mut StdRng, depth: usize, hostile: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let wanted = if hostile {
                rng.random_bool(0.7)
            } else {
                required.contains(&name.as_str())
            };
            if wanted {
                out.insert(name.clone(), value_for(root, prop, rng, depth, hostile));
            }
        }
    }
    if hostile && rng.random_bool(0.05) {
        out.insert("no_such_option".into(), json!("x"));
    }
    out
}

fn random_plan(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    // A quarter of the plans are well-formed, the rest hostile.
    let hostile = !seed.is_multiple_of(4);
    let kinds = lifeboat::steps::KINDS;
    let mut steps = Vec::new();
    let count = rng.random_range(1..7);
    for i in 0..count {
        let kind = &kinds[rng.random_range(0..kinds.len())];
        let schema = (kind.options_schema)();
        let mut step = json!({ "id": format!("s{i}"), "kind": kind.name, "with": object_for(&schema, &schema, &mut rng, 0, hostile) });
        if !hostile {
            if i > 0 {
                step["needs"] = json!([format!("s{}", rng.random_range(0..i))]);
            }
            steps.push(step);
            continue;
        }
        if i > 0 && rng.random_bool(0.5) {
            step["needs"] = json!([format!("s{}", rng.random_range(0..i + 1))]);
        }
        if rng.random_bool(0.2) {
            step["timeout"] = json!(*DURATIONS.choose(&mut rng).unwrap());
        }
        if rng.random_bool(0.2) {
            step["retry"] =
                json!({ "attempts": *[0, 1, 3, 5000].choose(&mut rng).unwrap(), "backoff": *DURATIONS.choose(&mut rng).unwrap() });
        }
        if rng.random_bool(0.15) {
            step["when"] = json!(*TEXTS.choose(&mut rng).unwrap());
        }
        if rng.random_bool(0.1) {
            step["mark"] = json!(*["disaster", "recovered", "other"].choose(&mut rng).unwrap());
        }
        if rng.random_bool(0.1) {
            step["on_failure"] = json!(*["abort", "continue", "rollback", "explode"].choose(&mut rng).unwrap());
        }
        if rng.random_bool(0.1) {
            step["compensate"] = json!({ "kind": "sleep", "with": { "duration": *DURATIONS.choose(&mut rng).unwrap() } });
        }
        steps.push(step);
    }
    let mut spec = json!({
        "params": { "p": { "type": "string", "default": "x" } },
        "concurrency": if hostile { *[0, 1, 4, 100000].choose(&mut rng).unwrap() } else { 2 },
        "steps": steps,
    });
    if hostile && rng.random_bool(0.5) {
        let probes = ["validation.tcp_probe", "validation.http_probe", "validation.sql_probe", "exec"];
        let kind = *probes.choose(&mut rng).unwrap();
        let schema = lifeboat::steps::kind(kind)
            .map(|k| (k.options_schema)())
            .unwrap_or(Value::Bool(true));
        let mut guard = json!({
            "id": "g",
            "kind": kind,
            "interval": *DURATIONS.choose(&mut rng).unwrap(),
            "failure_threshold": *[0, 1, 3, 5000].choose(&mut rng).unwrap(),
            "with": object_for(&schema, &schema, &mut rng, 0, hostile),
        });
        if rng.random_bool(0.5) {
            guard["after"] = json!(format!("s{}", rng.random_range(0..count + 1)));
        }
        spec["guards"] = json!([guard]);
    }
    if hostile && rng.random_bool(0.2) {
        spec["objectives"] = json!({ "rto": *DURATIONS.choose(&mut rng).unwrap(), "rows_lost": -1 });
    }
    let document = json!({ "apiVersion": "lifeboat.dev/v1alpha1", "kind": "RecoveryPlan", "metadata": { "name": "fuzz" }, "spec": spec });
    // JSON is YAML: the compiler reads it through the same YAML loader.
    serde_json::to_string_pretty(&document).unwrap()
}

/// An example plan with a few random edits: lines dropped, doubled, cut short, or a token
/// replaced by a hostile one.
fn mutated_example(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let source = std::fs::read_to_string(files.choose(&mut rng).unwrap()).unwrap();
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    for _ in 0..rng.random_range(1..4) {
        if lines.is_empty() {
            break;
        }
        let at = rng.random_range(0..lines.len());
        match rng.random_range(0..5) {
            0 => {
                lines.remove(at);
            }
            1 => {
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            2 => {
                let cut = rng.random_range(0..lines[at].len() + 1);
                let cut = (0..=cut).rev().find(|&c| lines[at].is_char_boundary(c)).unwrap_or(0);
                lines[at].truncate(cut);
            }
            _ => {
                let hostile = if rng.random_bool(0.5) {
                    *DURATIONS.choose(&mut rng).unwrap()
                } else {
                    *TEXTS.choose(&mut rng).unwrap()
                };
                if let Some((key, _)) = lines[at].split_once(": ") {
                    lines[at] = format!("{key}: {hostile:?}");
                }
            }
        }
    }
    lines.join("\n")
}

fn compile_without_panic(source: &str) -> bool {
    let compiled = std::panic::catch_unwind(|| lifeboat::plan::compile("fuzz.yaml", source, lifeboat::steps::catalog()).is_ok());
    match compiled {
        Ok(ok) => ok,
        Err(_) => panic!("the compiler panicked on:\n{source}"),
    }
}

/// `plan validate` and `run --dry-run` exit 0 or 2 and never panic.
fn check_cli(source: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fuzz.yaml");
    std::fs::write(&file, source).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        vec!["plan", "validate", file],
        vec!["run", file, "--dry-run", "--param", "p=${{ env.HOME }}"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 2)) && !stderr.contains("panicked"),
            "`lifeboat {}` exited {:?}:\n{stderr}\non:\n{source}",
            args.join(" "),
            out.status.code()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_compiler_never_panics_on_random_plans(seed in any::<u64>()) {
        compile_without_panic(&random_plan(seed));
    }

    #[test]
    fn the_compiler_never_panics_on_mutated_examples(seed in any::<u64>()) {
        compile_without_panic(&mutated_example(seed));
    }
}

proptest! {
    // Each case starts the binary twice: fewer cases, the same generators.
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    #[test]
    fn validate_and_dry_run_exit_0_or_2_on_random_plans(seed in any::<u64>()) {
        check_cli(&random_plan(seed));
    }

    #[test]
    fn validate_and_dry_run_exit_0_or_2_on_mutated_examples(seed in any::<u64>()) {
        check_cli(&mutated_example(seed));
    }
}

#[test]
fn some_random_plans_compile_so_the_fuzzer_reaches_the_runtime_paths() {
    let compiled = (0..400u64).filter(|&seed| compile_without_panic(&random_plan(seed))).count();
    assert!(
        compiled > 0,
        "no random plan compiled: the generator only exercises the error paths"
    );
}
