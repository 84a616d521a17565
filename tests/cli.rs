//! The `lifeboat` binary as a user drives it: exit codes, dry runs, approvals, aborts,
//! status views.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> String {
        self.dir.path().join("state.db").display().to_string()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.arg("--state").arg(self.state()).args(args).current_dir(self.dir.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn write(&self, name: &str, body: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    }

    /// Waits until the newest run exists and returns its id.
    fn newest_run(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run(&["runs", "--output", "json"]);
            let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if let Some(id) = runs[0]["id"].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no run appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `step` of `run` is running, as `runs show` sees it.
    fn wait_running(&self, run: &str, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run(&["runs", "show", run, "--output", "json"]);
            let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let steps = shown["steps"].as_array().cloned().unwrap_or_default();
            if steps.iter().any(|s| s["id"] == step && s["status"] == "running") {
                return;
            }
            assert!(Instant::now() < deadline, "step {step} of run {run} never ran: {}", text(&out));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn validate_exits_2_with_every_error_and_0_for_good_plans() {
    let cli = Cli::new();
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/directory-backup-drill.yaml");
    let out = cli.run(&["plan", "validate", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/broken/07-cycle.yaml");
    let out = cli.run(&["plan", "validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("dependency cycle: a → b → c → a"), "{}", text(&out));
}

#[test]
fn run_exit_codes_say_what_happened() {
    let cli = Cli::new();
    let ok = cli.write(
        "ok.yaml",
        &support::plan(
            "ok",
            "  steps:\n    - id: a\n      kind: exec\n      with: { command: [\"true\"] }\n",
        ),
    );
    let failing = cli.write(
        "fail.yaml",
        &support::plan(
            "fail",
            "  steps:\n    - id: a\n      kind: exec\n      with: { command: [\"false\"] }\n",
        ),
    );
    assert_eq!(cli.run(&["run", &ok]).status.code(), Some(0));
    let out = cli.run(&["run", &failing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed: step `a` failed"));
    let out = cli.run(&["run", &ok, "--param", "nope=1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--param nope: the plan declares no such param"));
    assert_eq!(cli.run(&["run", "missing.yaml"]).status.code(), Some(2));
    assert_eq!(cli.run(&["resume", "no-such-run"]).status.code(), Some(2));
}

#[test]
fn missing_required_params_are_reported_together() {
    let cli = Cli::new();
    let p = cli.write("p.yaml", &support::plan("p", "  params:\n    a: { required: true, description: the first }\n    b: { type: integer, required: true }\n  steps:\n    - id: x\n      kind: exec\n      with: { command: [\"echo\", \"${{ params.a }}\", \"${{ params.b }}\"] }\n"));
    let out = cli.run(&["run", &p, "--param", "b=notanumber"]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(t.contains("param `a` is required (the first); pass --param a=VALUE"), "{t}");
    assert!(t.contains("--param b: `notanumber` is not an integer"), "{t}");
}

#[test]
fn dry_run_prints_waves_with_resolved_options_and_records_nothing() {
    let cli = Cli::new();
    let p = cli.write(
        "p.yaml",
        &support::plan("dry", "  params:\n    target: { default: eu-west }\n  steps:\n    - id: first\n      kind: exec\n      with: { command: [\"echo\", \"${{ params.target }}\"] }\n    - id: second\n      kind: exec\n      needs: [first]\n      with: { command: [\"echo\", \"${{ steps.first.outputs.stdout }}\", \"${{ env.HOME }}\"] }\n"),
    );
    let out = cli.run(&["run", &p, "--dry-run", "--param", "target=us-east"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("steps wave 1:\n  - first [exec]"), "{t}");
    assert!(t.contains("steps wave 2:\n  - second [exec]"), "{t}");
    assert!(t.contains("\"us-east\""), "{t}");
    assert!(t.contains("<steps.first.outputs.stdout>"), "{t}");
    assert!(t.contains("<env.HOME (set, hidden)>"), "{t}");
    assert!(!Path::new(&cli.state()).exists(), "a dry run must not create a journal");
}

#[test]
fn lock_held_exits_3_and_approvals_are_validated() {
    let cli = Cli::new();
    let p = cli.write("gate.yaml", &support::plan("gate", "  lock: shared\n  steps:\n    - id: gate\n      kind: approval\n      with: { approvers: [alice] }\n    - id: after\n      kind: exec\n      needs: [gate]\n      with: { command: [\"true\"] }\n"));
    let mut first = cli.cmd(&["run", &p]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run_id = cli.newest_run();
    cli.wait_running(&run_id, "gate");
    let second = cli.run(&["run", &p]);
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    assert!(text(&second).contains(&format!("lock `shared` is held by run {run_id}")));
    let not_approval = cli.run(&["approve", &run_id, "after"]);
    assert_eq!(not_approval.status.code(), Some(2));
    let wrong_person = cli.run(&["approve", &run_id, "gate", "--by", "mallory"]);
    assert_eq!(wrong_person.status.code(), Some(2));
    assert!(text(&wrong_person).contains("mallory may not decide step `gate`; approvers: alice"));
    let show = cli.run(&["runs", "show", &run_id]);
    assert!(String::from_utf8_lossy(&show.stdout).contains(&format!("waiting: lifeboat approve {run_id} gate")));
    let approved = cli.run(&["approve", &run_id, "gate", "--by", "alice", "--comment", "go"]);
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let json = cli.run(&["runs", "show", &run_id, "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["steps"][0]["outputs"]["by"], "alice");
    assert_eq!(v["steps"][0]["outputs"]["comment"], "go");
    assert_eq!(
        cli.run(&["approve", &run_id, "gate", "--by", "alice"]).status.code(),
        Some(2),
        "a finished run takes no decisions"
    );
}

#[test]
fn aborting_an_interrupted_run_runs_its_finally_steps() {
    let cli = Cli::new();
    let marker = cli.dir.path().join("cleaned");
    let p = cli.write(
        "p.yaml",
        &support::plan("orphan", &format!("  steps:\n    - id: slow\n      kind: exec\n      with: {{ command: [\"sleep\", \"30\"] }}\n  finally:\n    - id: cleanup\n      kind: exec\n      with: {{ command: [\"touch\", \"{}\"] }}\n", marker.display())),
    );
    let mut child = cli.cmd(&["run", &p]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let run_id = cli.newest_run();
    cli.wait_running(&run_id, "slow");
    child.kill().unwrap(); // SIGKILL: the run is left interrupted
    child.wait().unwrap();
    let list = cli.run(&["runs"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("interrupted"), "{}", text(&list));
    let out = cli.run(&["abort", &run_id, "--reason", "drill cancelled"]);
    assert_eq!(out.status.code(), Some(1), "an aborted run did not succeed: {}", text(&out));
    assert!(text(&out).contains("aborted"), "{}", text(&out));
    assert!(marker.exists(), "finally must run when an interrupted run is aborted");
    let out = cli.run(&["abort", &run_id]);
    assert_eq!(out.status.code(), Some(2), "aborting a finished run is invalid");
}

#[test]
fn graph_and_schema_commands_work() {
    let cli = Cli::new();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/directory-backup-drill.yaml");
    let out = cli.run(&["plan", "graph", plan.to_str().unwrap(), "--format", "mermaid"]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.starts_with("flowchart TD"), "{t}");
    assert!(t.contains("seed --> manifest"), "{t}");
    let out = cli.run(&["plan", "graph", plan.to_str().unwrap(), "--format", "dot"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"disaster\" -> \"restore\";"));
    let out = cli.run(&["plan", "schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "lifeboat RecoveryPlan");
}

/// `lifeboat plan schema | head -1`: the reader goes away after one line. The command must
/// neither panic nor fail because of it.
#[test]
fn output_read_by_a_reader_that_stops_early_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    let cli = Cli::new();
    let mut child = cli
        .cmd(&["plan", "schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "{");
    // The pipe's read end is closed here, with most of the schema still to be written.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

#[test]
fn drills_judge_objectives_reject_bad_report_names_and_check_guards() {
    let cli = Cli::new();
    // No step marked `recovered` succeeds before the objective: the RTO is not measured.
    let drill = cli.write(
        "drill.yaml",
        &support::plan(
            "drill",
            "  objectives: { rto: 5s }\n  steps:\n    - id: fault\n      kind: sleep\n      mark: disaster\n      with: { duration: 0s }\n    - id: probe\n      kind: sleep\n      needs: [fault]\n      mark: recovered\n      with: { duration: 0s }\n",
        ),
    );
    let out = cli.run(&["drill", &drill, "--report", "bad.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--report bad.txt: unknown report format"), "{}", text(&out));
    let out = cli.run(&["drill", &drill, "--report", "out/d.json", "--report", "out/d.md"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cli.dir.path().join("out/d.json")).unwrap()).unwrap();
    assert_eq!(report["objectives"][0]["name"], "RTO");
    assert_eq!(report["objectives"][0]["met"], true);
    assert!(
        report["disaster"]["evidence"].as_str().unwrap().contains("no injection time"),
        "a marker without injector evidence says so"
    );
    let trend = cli.run(&["runs", "trend", "drill"]);
    assert_eq!(trend.status.code(), Some(0), "{}", text(&trend));
    assert!(text(&trend).contains("RTO  p50"), "{}", text(&trend));
    assert_eq!(cli.run(&["runs", "trend", "no-such-plan"]).status.code(), Some(2));

    let slow = cli.write(
        "slow.yaml",
        &support::plan(
            "slow",
            "  objectives: { rto: 100ms }\n  steps:\n    - id: fault\n      kind: sleep\n      mark: disaster\n      with: { duration: 0s }\n    - id: probe\n      kind: sleep\n      needs: [fault]\n      mark: recovered\n      with: { duration: 300ms }\n",
        ),
    );
    let out = cli.run(&["drill", &slow]);
    assert_eq!(out.status.code(), Some(1), "an objective not met fails the drill: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("✘ RTO"));

    let guarded = cli.write(
        "guarded.yaml",
        &support::plan(
            "guarded",
            "  guards:\n    - id: g1\n      kind: exec\n      with: { command: [\"true\"] }\n    - id: g2\n      kind: validation.tcp_probe\n      with: { address: \"${{ steps.a.outputs.x }}\" }\n  steps:\n    - id: a\n      kind: sleep\n      with: { duration: 0s }\n",
        ),
    );
    let out = cli.run(&["plan", "validate", &guarded]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        t.contains("guarded.yaml:8:13") && t.contains("guard kind `exec` is not a probe"),
        "{t}"
    );
    assert!(t.contains("guard `g2` reads `steps.a.outputs.x`"), "{t}");
    assert!(t.contains("start the guard with `after: <step id>`"), "{t}");

    // With `after`, a guard reads that step and what it needs, nothing else.
    let after = cli.write(
        "after.yaml",
        &support::plan(
            "after",
            "  guards:\n    - id: ok\n      kind: validation.tcp_probe\n      after: b\n      with: { address: \"${{ steps.a.outputs.x }}:${{ steps.b.outputs.y }}\" }\n    \
             - id: sibling\n      kind: validation.tcp_probe\n      after: b\n      with: { address: \"${{ steps.c.outputs.z }}\" }\n    \
             - id: typo\n      kind: validation.tcp_probe\n      after: bb\n      with: { address: \"127.0.0.1:1\" }\n  \
             steps:\n    - id: a\n      kind: sleep\n      with: { duration: 0s }\n    - id: b\n      kind: sleep\n      needs: [a]\n      with: { duration: 0s }\n    \
             - id: c\n      kind: sleep\n      with: { duration: 0s }\n",
        ),
    );
    let out = cli.run(&["plan", "validate", &after]);
    assert_eq!(out.status.code(), Some(2));
    let t = text(&out);
    assert!(
        !t.contains("guard `ok`"),
        "a guard may read its `after` step and that step's needs: {t}"
    );
    assert!(
        t.contains("guard `sibling` reads `steps.c.outputs.z`") && t.contains("the steps it needs"),
        "{t}"
    );
    assert!(t.contains("guard `typo` waits for unknown step `bb`") && t.contains("`b`"), "{t}");
}

#[test]
fn bench_proxy_reports_latency_and_throughput_and_refuses_empty_runs() {
    let cli = Cli::new();
    let out = cli.run(&["bench", "proxy", "--requests", "200", "--rounds", "3", "--bulk-mib", "8"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("round trips of 64 B, 201 per path"), "{text}");
    let ratio: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("proxied/direct"))
        .and_then(|l| l.split('%').next())
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no throughput ratio in {text}"));
    assert!(ratio > 0.0, "{text}");
    let refused = cli.run(&["bench", "proxy", "--requests", "0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--requests, --rounds and --bulk-mib must be at least 1"));
}

/// The repository's own runbooks are checked as CI runs them; a runbook whose step, flag,
/// param or plan name drifted from the plan or the CLI is reported with file:line, exit 2.
#[test]
fn runbook_check_passes_the_repository_runbooks_and_catches_drift() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["runbook", "check", "runbooks", "--plans", "plans"])
        .current_dir(repo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("runbooks/running-a-dr-drill.md: ok"), "{}", text(&out));

    let cli = Cli::new();
    let plan = repo.join("plans/gated-service-failover.yaml");
    let manual = cli.write(
        "manual.yaml",
        &support::plan(
            "manual",
            "  steps:\n    - id: call\n      kind: manual\n      with: { runbook: \"failover.md#call-the-dns-providr\" }\n",
        ),
    );
    let runbook = cli.write(
        "failover.md",
        &format!(
            "---\nplans: [{plan}, {manual}]\n---\n# Failover\n## Call the DNS provider\n```sh\nlifeboat run {plan} --param health_url=http://h --param promote_cmd=x --param demote_cmd=y\nlifeboat approve RUN approve-failover --comment ok\n```\n\nDrifted:\n\n```sh\nlifeboat approve RUN aprove-failover\nlifeboat runs --plann gated-service-failover\nlifeboat run {plan} --param helth_url=http://h\nlifeboat runs trend gated-failover\nlifeboat drill plans/no-such-plan.yaml\nlifeboat runbook run failover.md#call-the-dns-providerr\n```\nThe promoted LSN is `${{{{ steps.promot.outputs.lsn }}}}`.\n",
            plan = plan.display()
        ),
    );
    let plans = cli.dir.path().join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::write(
        plans.join("uncovered.yaml"),
        support::plan(
            "uncovered",
            "  steps:\n    - id: a\n      kind: sleep\n      with: { duration: 0s }\n",
        )
        .replace(
            "  name: uncovered\n",
            "  name: uncovered\n  annotations: { lifeboat.dev/runbook: required }\n",
        ),
    )
    .unwrap();
    let out = cli.run(&["runbook", "check", &runbook, "--plans", plans.to_str().unwrap()]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(2), "{report}");
    for expected in [
        "failover.md:14:1: no covered plan has a step `aprove-failover`",
        "did you mean `approve-failover`?",
        "failover.md:15:1: unexpected argument '--plann' found",
        "failover.md:16:1: `--param helth_url=…`: plan `gated-service-failover` has no param `helth_url`",
        "failover.md:17:1: no covered plan is named `gated-failover`",
        "failover.md:18:1: plan file `plans/no-such-plan.yaml` does not exist",
        "failover.md:2:1: step `call` of plan `manual` shows a runbook section: `failover.md#call-the-dns-providr` names no section of failover.md",
        "uncovered.yaml:5:",
        "this plan asks for a runbook, and no runbook covers it",
        "failover.md:19:1: `failover.md#call-the-dns-providerr` names no section of failover.md",
        "failover.md:21:1: `steps.promot` names no step of a covered plan",
        "9 problems found",
    ] {
        assert!(report.contains(expected), "missing `{expected}` in:\n{report}");
    }
}

/// A `manual` step shows its runbook section and waits until a person says it is done; who,
/// when and what they were shown are its outputs. `approve` is refused on it, and someone not
/// in `by` cannot mark it done.
#[test]
fn a_manual_step_waits_for_a_person_to_say_it_is_done() {
    let cli = Cli::new();
    cli.write(
        "failover.md",
        "---\nplans: []\n---\n# Failover\n## Call the DNS provider\nAsk them to move `orders.example.com` to the west region.\n## Tell customers\nPost on the status page.\n",
    );
    let p = cli.write(
        "manual.yaml",
        &support::plan(
            "manual",
            "  steps:\n    - id: call-dns\n      kind: manual\n      with: { runbook: \"failover.md#call-the-dns-provider\", by: [oncall] }\n",
        ),
    );
    let mut run = cli.cmd(&["run", &p]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run_id = cli.newest_run();
    cli.wait_running(&run_id, "call-dns");
    let shown = cli.run(&["runs", "show", &run_id]);
    assert!(
        text(&shown).contains(&format!("lifeboat done {run_id} call-dns")),
        "{}",
        text(&shown)
    );
    let wrong_verb = cli.run(&["approve", &run_id, "call-dns", "--by", "oncall"]);
    assert_eq!(wrong_verb.status.code(), Some(2));
    assert!(
        text(&wrong_verb).contains("is a manual step: `lifeboat done` or `reject` it"),
        "{}",
        text(&wrong_verb)
    );
    let stranger = cli.run(&["done", &run_id, "call-dns", "--by", "mallory"]);
    assert_eq!(stranger.status.code(), Some(2), "{}", text(&stranger));
    let done = cli.run(&["done", &run_id, "call-dns", "--by", "oncall", "--comment", "ticket 4711"]);
    assert!(done.status.success(), "{}", text(&done));
    let status = run.wait().unwrap();
    assert!(status.success(), "the run succeeded once the step was done");
    let shown = cli.run(&["runs", "show", &run_id, "--output", "json"]);
    let view: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let outputs = &view["steps"][0]["outputs"];
    assert_eq!(outputs["done_by"], "oncall");
    assert_eq!(outputs["comment"], "ticket 4711");
    let instructions = outputs["instructions"].as_str().unwrap();
    assert!(instructions.starts_with("## Call the DNS provider") && instructions.contains("west region"));
    assert!(!instructions.contains("status page"), "only the section: {instructions}");
}

/// A runbook rendered from a plan lists every step in order with what it does, and passes
/// `runbook check`; once the plan changes, the check reports it as drifted at the first line
/// that differs, until it is rendered again.
#[test]
fn a_rendered_runbook_is_checked_and_reported_when_its_plan_drifts() {
    let cli = Cli::new();
    let original = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/gated-service-failover.yaml")).unwrap();
    std::fs::create_dir_all(cli.dir.path().join("plans")).unwrap();
    std::fs::create_dir_all(cli.dir.path().join("runbooks")).unwrap();
    cli.write("plans/gated.yaml", &original);
    let rendered = cli.run(&["runbook", "render", "plans/gated.yaml", "--to", "runbooks/gated.md"]);
    assert!(rendered.status.success(), "{}", text(&rendered));
    let runbook = std::fs::read_to_string(cli.dir.path().join("runbooks/gated.md")).unwrap();
    assert!(
        runbook.starts_with("---\nplans: [../plans/gated.yaml]\nrendered_from: plans/gated.yaml\n---\n"),
        "{runbook}"
    );
    for expected in [
        "2. **`approve-failover`** (`approval`)",
        "Waits for `lifeboat approve RUN approve-failover` (or `reject`) by anyone.",
        "If it fails: completed steps are undone in reverse order, then `finally` runs.",
        "lifeboat run plans/gated.yaml --param demote_cmd=… --param health_url=… --param promote_cmd=…",
        "lifeboat resume RUN",
    ] {
        assert!(runbook.contains(expected), "missing `{expected}` in:\n{runbook}");
    }
    let checked = cli.run(&["runbook", "check", "runbooks", "--plans", "plans"]);
    assert!(checked.status.success(), "{}", text(&checked));

    cli.write(
        "plans/gated.yaml",
        &original
            .replace("id: settle", "id: wait-a-moment")
            .replace("needs: [settle]", "needs: [wait-a-moment]"),
    );
    let drifted = cli.run(&["runbook", "check", "runbooks", "--plans", "plans"]);
    assert_eq!(drifted.status.code(), Some(2), "{}", text(&drifted));
    let line = runbook.lines().position(|l| l.contains("`settle`")).unwrap() + 1;
    assert!(
        text(&drifted).contains(&format!(
            "runbooks/gated.md:{line}:1: the runbook was rendered from `plans/gated.yaml` and has drifted"
        )),
        "{}",
        text(&drifted)
    );
    assert!(text(&drifted).contains("lifeboat runbook render plans/gated.yaml --to runbooks/gated.md"));
}

/// `runbook run` runs one section's commands in order as a journaled run: exports carry on,
/// `lifeboat` in a command is this binary on the same journal, each command's output is
/// recorded, and the first failure stops the rest.
#[test]
fn runbook_run_runs_a_section_in_order_and_stops_at_the_first_failure() {
    let cli = Cli::new();
    let marker = cli.dir.path().join("touched");
    cli.write(
        "ops.md",
        &format!(
            "---\nplans: []\n---\n# Ops\n## Promote the standby\n```sh\nexport REGION=west\necho \"promoting in $REGION\"\nlifeboat runs --output json > runs.json\ntouch {m}\n```\n## Broken\n```sh\necho first\nfalse\ntouch {m}.never\n```\n",
            m = marker.display()
        ),
    );
    let dry = cli.run(&["runbook", "run", "ops.md#promote-the-standby", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("3 commands") && text(&dry).contains("cmd-1: echo \"promoting in $REGION\""),
        "{}",
        text(&dry)
    );
    assert!(!marker.exists(), "a dry run runs nothing");

    let ok = cli.run(&["runbook", "run", "ops.md#promote-the-standby"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(marker.exists());
    let run_id = cli.newest_run();
    let listed = std::fs::read_to_string(cli.dir.path().join("runs.json")).unwrap();
    assert!(
        listed.contains(&run_id),
        "the command's own lifeboat saw this run's journal: {listed}"
    );
    let shown = cli.run(&["runs", "show", &run_id, "--output", "json"]);
    let view: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(view["plan"], "runbook-ops-promote-the-standby");
    assert_eq!(view["steps"][0]["outputs"]["stdout"], "promoting in west\n");

    let bad = cli.run(&["runbook", "run", "ops.md#broken"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(!cli.dir.path().join("touched.never").exists(), "nothing runs after the failure");
    let run_id = cli.newest_run();
    let shown = cli.run(&["runs", "show", &run_id, "--output", "json"]);
    let view: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let statuses: Vec<&str> = view["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed", "skipped"]);

    let missing = cli.run(&["runbook", "run", "ops.md#nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("ops.md has no section `#nope`; its sections: ops, promote-the-standby, broken"),
        "{}",
        text(&missing)
    );
}

#[test]
fn a_signal_whose_sender_died_before_journaling_it_is_not_sent_again() {
    let cli = Cli::new();
    let dir = cli.dir.path();
    let (pid_file, terms) = (dir.join("target.pid"), dir.join("terms"));
    // A target that takes 2 s to die on SIGTERM, counting the TERMs it gets.
    let mut target = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap 'echo term >> {}; sleep 2; exit 0' TERM; echo $$ > {}; while :; do sleep 0.1; done",
            terms.display(),
            pid_file.display()
        ))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "the target never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let p = cli.write(
        "p.yaml",
        &support::plan(
            "term",
            &format!(
                "  steps:\n    - id: term\n      kind: chaos.process_kill\n      with: {{ pid_file: \"{}\", signal: TERM }}\n",
                pid_file.display()
            ),
        ),
    );
    let mut engine = cli.cmd(&["run", &p]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let run_id = cli.newest_run();
    // The step has sent TERM and waits to see the target gone: the engine dies there.
    while !terms.exists() {
        assert!(Instant::now() < deadline, "the target never got the signal");
        std::thread::sleep(Duration::from_millis(10));
    }
    engine.kill().unwrap();
    engine.wait().unwrap();
    target.wait().unwrap();

    let out = cli.run(&["resume", &run_id]);
    assert_eq!(out.status.code(), Some(0), "the earlier signal took effect: {}", text(&out));
    assert_eq!(std::fs::read_to_string(&terms).unwrap().lines().count(), 1, "TERM was sent once");
    let shown = cli.run(&["runs", "show", &run_id, "--output", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let outputs = &shown["steps"][0]["outputs"];
    assert!(outputs["note"].as_str().unwrap_or_default().contains("interrupted"), "{outputs}");
    assert_eq!(outputs["processes"][0]["pid"].as_i64(), Some(i64::from(target.id())));
}
