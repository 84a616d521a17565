//! `lifeboat operator` against kubesim (the real REST protocol, objects validated against the
//! generated CRDs): real operator processes on a real journal, resources created with the
//! official `kubectl` where the suite installed it.

mod support;

use kube::api::{Api, DeleteParams, PostParams};
use lifeboat::operator::crd::{DrillSchedule, Phase, RecoveryPlan, Run};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::serve::Serve;
use support::servers::free_port;

fn crds_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/lifeboat/crds")
}

/// Applies `manifest` with kubectl (or, without it, creates it through the client) and
/// returns kubectl's output.
async fn apply(sim: &support::cluster::Sim, manifest: &str) -> Result<String, String> {
    match support::installed_tool("LIFEBOAT_TEST_KUBECTL") {
        Some(kubectl) => {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), manifest).unwrap();
            let out = tokio::process::Command::new(kubectl)
                .args(["--kubeconfig", &sim.kubeconfig, "apply", "-f"])
                .arg(file.path())
                .output()
                .await
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            if out.status.success() { Ok(text) } else { Err(text) }
        }
        None => {
            let mut created = String::new();
            for doc in manifest.split("\n---\n") {
                let value: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
                let kind = value["kind"].as_str().unwrap().to_owned();
                let result = match kind.as_str() {
                    "RecoveryPlan" => create::<RecoveryPlan>(sim, value).await,
                    "Run" => create::<Run>(sim, value).await,
                    "DrillSchedule" => create::<DrillSchedule>(sim, value).await,
                    other => panic!("no client path for {other}"),
                };
                created.push_str(&result?);
            }
            Ok(created)
        }
    }
}

async fn create<K>(sim: &support::cluster::Sim, value: serde_json::Value) -> Result<String, String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let api: Api<K> = Api::namespaced(sim.client(), "default");
    api.create(&PostParams::default(), &object)
        .await
        .map(|_| "created\n".into())
        .map_err(|e| e.to_string())
}

fn start_operator(sim: &support::cluster::Sim, state: &str, dir: &Path, name: &str) -> Serve {
    let args = ["operator", "run", "--namespace", "default", "--replica", name].map(String::from);
    let kubeconfig = sim.kubeconfig.clone();
    Serve::start_command(
        &args,
        Some(state),
        free_port(),
        dir.join(format!("{name}.log")),
        &[("KUBECONFIG", &kubeconfig)],
        None,
    )
}

/// The objects of kind `K` as JSON: what lifeboat cannot read as `K` can still be looked at.
fn untyped<K: kube::Resource<DynamicType = ()>>(sim: &support::cluster::Sim) -> Api<kube::api::DynamicObject> {
    Api::namespaced_with(sim.client(), "default", &kube::api::ApiResource::erase::<K>(&()))
}

/// Polls `name` until `done` holds for it, or panics with the operator's log.
async fn wait_for<K>(api: &Api<K>, name: &str, limit: Duration, log: &Path, done: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + limit;
    loop {
        let current = api.get_opt(name).await.unwrap();
        if let Some(object) = &current
            && done(object)
        {
            return object.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not get there in {limit:?}; last seen: {current:#?}\noperator log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The drill the tests run: its recovery takes the param `pause` (default 300ms).
fn drill() -> String {
    support::timed_drill(
        "failover-drill",
        "${{ params.pause }}",
        "  params:\n    pause: { type: duration, default: 300ms }\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_created_with_kubectl_succeeds_with_its_rto_in_kubectl_get() {
    let sim = support::cluster::sim_with_crds(&crds_dir()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("journal.db").display().to_string();
    let operator = start_operator(&sim, &state, dir.path(), "only");
    let plans: Api<RecoveryPlan> = Api::namespaced(sim.client(), "default");
    let runs: Api<Run> = Api::namespaced(sim.client(), "default");

    // What the plan language refuses structurally, the API server refuses at apply.
    let bad_id = drill().replace("id: outage", "id: Outage Now").replace("failover-drill", "bad-id");
    let refused = apply(&sim, &bad_id).await.expect_err("a step id with spaces is refused at apply");
    assert!(refused.contains("should match"), "{refused}");
    // What only the compiler can judge is the plan's Compiled condition.
    let cyclic = drill()
        .replace("needs: [outage]", "needs: [healthy]")
        .replace("failover-drill", "cyclic");
    apply(&sim, &cyclic).await.unwrap();
    let cyclic = wait_for(&plans, "cyclic", Duration::from_secs(20), &operator.log, |p| p.status.is_some()).await;
    let status = cyclic.status.unwrap();
    assert_eq!(status.conditions[0].type_, "Compiled");
    assert_eq!(status.conditions[0].status, "False");
    assert!(status.errors.iter().any(|e| e.contains("cycle")), "{:?}", status.errors);

    // A plan the schema lets through but lifeboat cannot read is reported on that plan only.
    let zero = drill()
        .replace("failover-drill", "zero-timeout")
        .replace("      kind: sleep\n", "      kind: sleep\n      timeout: 0s\n");
    assert!(zero.contains("timeout: 0s"));
    apply(&sim, &zero).await.unwrap();
    let zero = wait_for(
        &untyped::<RecoveryPlan>(&sim),
        "zero-timeout",
        Duration::from_secs(20),
        &operator.log,
        |p| p.data["status"].is_object(),
    )
    .await;
    let status = &zero.data["status"];
    assert_eq!(status["conditions"][0]["status"], "False", "{status}");
    assert!(status["errors"][0].as_str().unwrap().contains("timeout"), "{status}");

    apply(&sim, &drill()).await.unwrap();
    let compiled = wait_for(&plans, "failover-drill", Duration::from_secs(20), &operator.log, |p| {
        p.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.status == "True"))
    })
    .await;
    assert_eq!(compiled.status.unwrap().steps, Some(3));

    let run = r#"apiVersion: lifeboat.dev/v1alpha1
kind: Run
metadata: { name: drill-1, namespace: default }
spec:
  plan: failover-drill
  params: { pause: 400ms }
"#;
    apply(&sim, run).await.unwrap();
    let done = wait_for(&runs, "drill-1", Duration::from_secs(30), &operator.log, |r| {
        r.status.as_ref().and_then(|s| s.phase).is_some_and(Phase::is_final)
    })
    .await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!(status.verdict.as_deref(), Some("Pass"));
    let rto = status.rto_seconds.unwrap();
    assert!((0.4..30.0).contains(&rto), "the RTO covers the 400ms pause: {rto}");
    assert_eq!(status.observed_generation, done.metadata.generation);
    assert_eq!(
        status.steps.iter().map(|s| (s.id.as_str(), s.status.as_str())).collect::<Vec<_>>(),
        [("outage", "succeeded"), ("recover", "succeeded"), ("healthy", "succeeded")]
    );
    // Finished, nothing is left to abort: the finalizer goes, so deleting it needs no operator.
    wait_for(&runs, "drill-1", Duration::from_secs(20), &operator.log, |r| {
        r.metadata.finalizers.as_ref().is_none_or(Vec::is_empty)
    })
    .await;
    // The journal has the run under the id the status names, with the Run's params.
    let journal = lifeboat::journal::Journal::open(&state).await.unwrap();
    let run_id = status.run_id.clone().unwrap();
    let request = journal.request(&run_id).await.unwrap().unwrap();
    assert_eq!(request.params["pause"], json!("400ms"));
    assert_eq!(request.requested_by, "kubernetes:default/drill-1");
    let accepted = status.conditions.iter().find(|c| c.type_ == "Accepted").unwrap();
    assert_eq!((accepted.status.as_str(), accepted.reason.as_str()), ("True", "Requested"));

    // An edited spec changes nothing that ran, and the Run says so.
    apply(&sim, &run.replace("pause: 400ms", "pause: 2s")).await.unwrap();
    let edited = wait_for(&runs, "drill-1", Duration::from_secs(20), &operator.log, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "SpecChanged"))
    })
    .await;
    assert_eq!(edited.status.as_ref().unwrap().phase, Some(Phase::Succeeded));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = runs.get("drill-1").await.unwrap().status.unwrap();
    assert!(
        later.conditions.iter().any(|c| c.reason == "SpecChanged"),
        "the condition flapped: {later:#?}"
    );

    if let Some(kubectl) = support::installed_tool("LIFEBOAT_TEST_KUBECTL") {
        let out = Command::new(kubectl)
            .args(["--kubeconfig", &sim.kubeconfig, "get", "runs"])
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&out.stdout).to_string();
        eprintln!("{table}");
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "PLAN", "PHASE", "RTO", "VERDICT", "AGE"], "{table}");
        let row = table.lines().find(|l| l.starts_with("drill-1")).unwrap();
        assert!(
            row.contains("failover-drill") && row.contains("Succeeded") && row.contains("Pass"),
            "{table}"
        );
        assert!(row.contains(status.rto.as_deref().unwrap()), "{table}");
    }

    // Params the plan refuses fail the Run without a journal request; an unknown plan waits.
    let bad = run.replace("drill-1", "drill-bad").replace("pause: 400ms", "pause: soon");
    apply(&sim, &bad).await.unwrap();
    let bad = wait_for(&runs, "drill-bad", Duration::from_secs(20), &operator.log, |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed)
    })
    .await;
    assert!(bad.status.unwrap().message.unwrap().contains("pause"));
    let orphan = run
        .replace("drill-1", "drill-orphan")
        .replace("plan: failover-drill", "plan: not-yet");
    apply(&sim, &orphan).await.unwrap();
    let waiting = wait_for(&runs, "drill-orphan", Duration::from_secs(20), &operator.log, |r| {
        r.status.is_some()
    })
    .await;
    let status = waiting.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(status.conditions[0].reason, "PlanNotReady");
    // The plan arrives: the waiting Run starts.
    apply(&sim, &drill().replace("failover-drill", "not-yet")).await.unwrap();
    wait_for(&runs, "drill-orphan", Duration::from_secs(30), &operator.log, |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Succeeded)
    })
    .await;

    // An operator on a journal that lost the runs (replaced, restored from nothing) does not
    // run the finished Runs again; it says why.
    drop(operator);
    let fresh = dir.path().join("fresh.db").display().to_string();
    let operator = start_operator(&sim, &fresh, dir.path(), "after-loss");
    let lost = wait_for(&runs, "drill-1", Duration::from_secs(20), &operator.log, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "JournalMissing"))
    })
    .await;
    assert_eq!(lost.status.unwrap().phase, Some(Phase::Succeeded));
    let fresh_journal = lifeboat::journal::Journal::open(&fresh).await.unwrap();
    assert!(fresh_journal.request(&run_id).await.unwrap().is_none(), "a finished Run ran again");
    drop(operator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_schedule_fires_and_suspends() {
    let sim = support::cluster::sim_with_crds(&crds_dir()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("journal.db").display().to_string();
    let operator = start_operator(&sim, &state, dir.path(), "only");
    apply(&sim, &drill()).await.unwrap();
    let schedule = r#"apiVersion: lifeboat.dev/v1alpha1
kind: DrillSchedule
metadata: { name: every-two-seconds, namespace: default }
spec:
  plan: failover-drill
  cron: "*/2 * * * * *"
  timezone: Europe/Berlin
  params: { pause: 10ms }
"#;
    apply(&sim, schedule).await.unwrap();
    let schedules: Api<DrillSchedule> = Api::namespaced(sim.client(), "default");
    let fired = wait_for(&schedules, "every-two-seconds", Duration::from_secs(30), &operator.log, |s| {
        s.status
            .as_ref()
            .is_some_and(|s| s.last_run.is_some() && s.conditions[0].status == "True")
    })
    .await;
    let status = fired.status.unwrap();
    assert!(status.next_schedule_time.is_some());
    let journal = lifeboat::journal::Journal::open(&state).await.unwrap();
    let first = status.last_run.unwrap();
    let request = journal.request(&first).await.unwrap().unwrap();
    assert_eq!(request.schedule.as_deref(), Some("every-two-seconds"));
    assert_eq!(request.params["pause"], json!("10ms"));

    // suspend: the journal records the pause, and no occurrence becomes a run any more.
    apply(&sim, &schedule.replace("params:", "suspend: true\n  params:")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !journal.schedule("every-two-seconds").await.unwrap().unwrap().paused {
        assert!(Instant::now() < deadline, "suspend: true did not pause the schedule");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = runs_of(&journal, "every-two-seconds").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(runs_of(&journal, "every-two-seconds").await, before, "a suspended schedule fired");
    let suspended = schedules.get("every-two-seconds").await.unwrap().status.unwrap();
    assert_eq!(suspended.conditions[0].reason, "Suspended");
    assert_eq!(suspended.next_schedule_time, None);

    // Un-suspended, it fires again.
    apply(&sim, schedule).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs_of(&journal, "every-two-seconds").await == before {
        assert!(Instant::now() < deadline, "the resumed schedule did not fire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!journal.schedule("every-two-seconds").await.unwrap().unwrap().paused);

    // A blackout the schema lets through but lifeboat cannot read: that schedule says why,
    // and the others go on.
    apply(
        &sim,
        &schedule
            .replace("every-two-seconds", "odd-blackout")
            .replace("params:", "blackouts: [{ every: sometimes }]\n  params:"),
    )
    .await
    .unwrap();
    let odd = wait_for(
        &untyped::<DrillSchedule>(&sim),
        "odd-blackout",
        Duration::from_secs(20),
        &operator.log,
        |s| s.data["status"].is_object(),
    )
    .await;
    let condition = &odd.data["status"]["conditions"][0];
    assert_eq!(
        (&condition["status"], &condition["reason"]),
        (&json!("False"), &json!("Invalid")),
        "{condition}"
    );
    assert!(condition["message"].as_str().unwrap().contains("blackouts"), "{condition}");
    let fired = runs_of(&journal, "every-two-seconds").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs_of(&journal, "every-two-seconds").await == fired {
        assert!(Instant::now() < deadline, "a bad schedule stopped the good one");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A schedule naming a plan that is not here is not Ready, and says why.
    apply(
        &sim,
        &schedule
            .replace("every-two-seconds", "orphan")
            .replace("plan: failover-drill", "plan: nowhere"),
    )
    .await
    .unwrap();
    let orphan = wait_for(&schedules, "orphan", Duration::from_secs(20), &operator.log, |s| s.status.is_some()).await;
    let condition = &orphan.status.unwrap().conditions[0];
    assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("False", "PlanNotReady"));
    assert!(condition.message.contains("nowhere"), "{}", condition.message);
    drop(operator);
}

async fn runs_of(journal: &lifeboat::journal::Journal, schedule: &str) -> usize {
    let filter = lifeboat::journal::requests::RequestFilter {
        schedule: Some(schedule.to_owned()),
        limit: 1000,
        ..Default::default()
    };
    journal.requests(&filter).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_run_aborts_it_and_reverts_its_fault_before_it_goes() {
    let sim = support::cluster::sim_with_crds(&crds_dir()).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("journal.db").display().to_string();
    let operator = start_operator(&sim, &state, dir.path(), "only");
    let mut victim = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = victim.id();
    let plan = format!(
        "{}---\napiVersion: lifeboat.dev/v1alpha1\nkind: Run\nmetadata: {{ name: freeze-1 }}\nspec: {{ plan: freeze }}\n",
        support::freeze_plan("freeze", pid)
    );
    apply(&sim, &plan).await.unwrap();
    let runs: Api<Run> = Api::namespaced(sim.client(), "default");
    let running = wait_for(&runs, "freeze-1", Duration::from_secs(30), &operator.log, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.steps.iter().any(|step| step.id == "soak" && step.status == "running"))
    })
    .await;
    assert_eq!(support::process_state(pid), 'T', "the fault froze the process");
    let run_id = running.status.unwrap().run_id.unwrap();

    runs.delete("freeze-1", &DeleteParams::default()).await.unwrap();
    // Gone only after the abort finished, and by then the process runs again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs.get_opt("freeze-1").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the deleted Run did not go:\n{}",
            std::fs::read_to_string(&operator.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(support::process_state(pid), 'T', "the fault was reverted before the Run went");
    let journal = lifeboat::journal::Journal::open(&state).await.unwrap();
    let row = journal.run(&run_id).await.unwrap();
    assert_eq!(row.status, lifeboat::journal::RunStatus::Aborted);
    victim.kill().unwrap();
    let _ = victim.wait();
    drop(operator);
}

/// Whether the replica at `url` holds the scheduler lease, by its `/metrics`.
async fn leads(url: &str) -> bool {
    let body = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    body.lines().any(|l| l == "lifeboat_scheduler_leader 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_run_lets_the_other_replica_lead_and_finish_the_run() {
    let Ok(admin) = std::env::var("LIFEBOAT_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "CI must run the replica test on PostgreSQL");
        eprintln!("note: LIFEBOAT_TEST_POSTGRES_URL unset; skipping (two replicas need a shared journal)");
        return;
    };
    let journal = support::postgres(&admin).await;
    let sim = support::cluster::sim_with_crds(&crds_dir()).await;
    let dir = tempfile::tempdir().unwrap();
    // A alone first: it leads the scheduler and drives the run; B joins as a follower.
    let mut a = start_operator(&sim, &journal.url, dir.path(), "replica-a");
    let plan = format!(
        "{}---\napiVersion: lifeboat.dev/v1alpha1\nkind: Run\nmetadata: {{ name: slow-1 }}\nspec: {{ plan: slow }}\n",
        support::timed_drill("slow", "8s", "")
    );
    apply(&sim, &plan).await.unwrap();
    let runs: Api<Run> = Api::namespaced(sim.client(), "default");
    let running = wait_for(&runs, "slow-1", Duration::from_secs(30), &a.log, |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.steps.iter().any(|step| step.id == "recover" && step.status == "running"))
    })
    .await;
    let run_id = running.status.unwrap().run_id.unwrap();
    assert_eq!(journal.journal.run(&run_id).await.unwrap().owner.pid as i32, a.pid());
    assert!(leads(&a.url).await, "the only replica leads the scheduler");
    let b = start_operator(&sim, &journal.url, dir.path(), "replica-b");
    // B tries for the lease every scheduler tick (250 ms) and must not get it while A lives.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!leads(&b.url).await, "two leaders");
    }
    a.kill();

    let done = wait_for(&runs, "slow-1", Duration::from_secs(60), &b.log, |r| {
        r.status.as_ref().and_then(|s| s.phase).is_some_and(Phase::is_final)
    })
    .await;
    let status = done.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!(status.verdict.as_deref(), Some("Pass"));
    assert!(status.rto_seconds.unwrap() >= 8.0);
    let row = journal.journal.run(&run_id).await.unwrap();
    assert_eq!(row.owner.pid as i32, b.pid(), "the surviving replica finished the run");
    let steps: std::collections::HashMap<_, _> = status.steps.iter().map(|s| (s.id.as_str(), s.attempts)).collect();
    assert_eq!(steps["outage"], 1, "work finished before the kill is not done again");
    // The dead leader's lease runs out by the journal's clock, and the survivor takes it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !leads(&b.url).await {
        assert!(Instant::now() < deadline, "the survivor did not take the scheduler lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lifeboat(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (
        out.status.code(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_command_errors_say_what_and_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let with_plans = dir.path().join("serve.yaml");
    std::fs::write(&with_plans, "plans: [plans]\n").unwrap();
    let state = dir.path().join("journal.db").display().to_string();
    let (code, text) = lifeboat(
        &["--state", &state, "operator", "run", "--config", with_plans.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("serve.yaml") && text.contains("RecoveryPlan"), "{text}");

    let nowhere = dir.path().join("missing-kubeconfig");
    let (code, text) = lifeboat(
        &["--state", &state, "operator", "run"],
        &[("KUBECONFIG", nowhere.to_str().unwrap())],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("cannot find the cluster") && text.contains("KUBECONFIG"), "{text}");

    // `serve` still needs its plans.
    let without_plans = dir.path().join("empty.yaml");
    std::fs::write(&without_plans, "listen: 127.0.0.1:0\n").unwrap();
    let (code, text) = lifeboat(&["--state", &state, "serve", "--config", without_plans.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("`plans:` is missing"), "{text}");

    // A cluster without the CRDs: refused at start, saying how to install them.
    let bare = support::cluster::sim(false).await;
    let (code, text) = lifeboat(
        &["--state", &state, "operator", "run", "--listen", "127.0.0.1:0"],
        &[("KUBECONFIG", &bare.kubeconfig)],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("does not serve recoveryplans.lifeboat.dev") && text.contains("operator crds"),
        "{text}"
    );

    // One file serves `kubectl apply` and the CLI: a RecoveryPlan with its namespace validates.
    let manifest = dir.path().join("plan.yaml");
    std::fs::write(
        &manifest,
        drill().replace("  name: failover-drill\n", "  name: failover-drill\n  namespace: dr\n"),
    )
    .unwrap();
    assert!(std::fs::read_to_string(&manifest).unwrap().contains("namespace: dr"));
    let (code, text) = lifeboat(&["plan", "validate", manifest.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{text}");

    // `operator crds` prints the three CRDs the chart ships.
    let (code, text) = lifeboat(&["operator", "crds"], &[]);
    assert_eq!(code, Some(0), "{text}");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let names: Vec<&str> = docs.iter().map(|d| d["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["recoveryplans.lifeboat.dev", "drillschedules.lifeboat.dev", "runs.lifeboat.dev"]
    );
}
