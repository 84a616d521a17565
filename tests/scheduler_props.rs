//! Properties of the deterministic core on random DAGs and random completion orders:
//! a step never starts before its needs succeeded, the concurrency cap holds, and
//! without failures every step runs exactly once. Replaying any durable prefix of the
//! journal — over plans with retries, rollbacks with compensation, aborts and `finally` —
//! rebuilds exactly the state the live run held at that point, and the same decisions.

mod support;

use chrono::{Duration, Utc};
use lifeboat::engine::state::{RunState, UnitStatus};
use lifeboat::journal::{Event, Recorded, RunStatus};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Dag {
    /// needs[i] ⊆ 0..i, so the graph is acyclic by construction.
    needs: Vec<Vec<usize>>,
    concurrency: usize,
    fails: Vec<bool>,
}

fn dag() -> impl Strategy<Value = Dag> {
    (1usize..25, 1usize..6).prop_flat_map(|(n, concurrency)| {
        let needs = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(3)).boxed()
                }
            })
            .collect::<Vec<_>>();
        (needs, proptest::collection::vec(proptest::bool::weighted(0.15), n)).prop_map(move |(needs, fails)| Dag {
            needs,
            concurrency,
            fails,
        })
    })
}

fn source(dag: &Dag, on_failure: &str) -> String {
    let mut steps = String::new();
    for (i, needs) in dag.needs.iter().enumerate() {
        let list: Vec<String> = needs.iter().map(|n| format!("s{n}")).collect();
        steps.push_str(&format!(
            "    - id: s{i}\n      kind: sleep\n      needs: [{}]\n      on_failure: {on_failure}\n      with: {{ duration: 0s }}\n",
            list.join(", ")
        ));
    }
    support::plan("props", &format!("  concurrency: {}\n  steps:\n{steps}", dag.concurrency))
}

fn new_state(src: &str) -> RunState {
    let plan = Arc::new(support::compile(src));
    RunState::new(plan, "run".into(), Utc::now(), BTreeMap::new(), Arc::new(BTreeMap::new()))
}

/// Drives a run to its end, completing a random running step at each turn. Returns the
/// journal it would have written.
fn simulate(state: &mut RunState, dag: &Dag, inject_failures: bool, picks: &[usize]) -> Vec<Recorded> {
    let mut journal = Vec::new();
    let mut now = Utc::now();
    let mut seq = 0;
    let mut turn = 0;
    loop {
        let decision = state.decide(now);
        for event in decision.events {
            if let Event::StepStarted { step, .. } = &event {
                let i = state.plan.unit_index(step).unwrap();
                for &n in &state.plan.units[i].needs {
                    assert!(
                        matches!(
                            state.units[n].status,
                            UnitStatus::Succeeded { .. } | UnitStatus::Failed { tolerated: true, .. }
                        ),
                        "{step} started before its need {} finished well",
                        state.plan.units[n].id
                    );
                }
            }
            journal.push(Recorded { seq, at: now, event });
            seq += 1;
        }
        let running = state.active_count(|_| true);
        assert!(running <= dag.concurrency, "{running} running > concurrency {}", dag.concurrency);
        if state.finished.is_some() {
            return journal;
        }
        let active: Vec<usize> = (0..state.units.len())
            .filter(|&i| matches!(state.units[i].status, UnitStatus::Running { .. }))
            .collect();
        assert!(!active.is_empty(), "nothing runs and the run is not finished: deadlock");
        let pick = active[picks[turn % picks.len()] % active.len()];
        turn += 1;
        let attempt = match state.units[pick].status {
            UnitStatus::Running { attempt } => attempt,
            _ => unreachable!(),
        };
        let result = if inject_failures && dag.fails[pick] {
            Err(lifeboat::steps::StepError::terminal("boom"))
        } else {
            Ok(Default::default())
        };
        let event = state.attempt_event(pick, attempt, result, 0.5, now);
        state.apply(&event, now);
        journal.push(Recorded { seq, at: now, event });
        seq += 1;
        now += Duration::milliseconds(1);
    }
}

/// A random plan with everything the core decides about: retries, `on_failure` modes,
/// compensations, `finally` steps.
#[derive(Debug, Clone)]
struct RichPlan {
    dag: Dag,
    attempts: Vec<u32>,
    on_failure: Vec<&'static str>,
    compensated: Vec<bool>,
    finally: usize,
}

fn rich_plan() -> impl Strategy<Value = RichPlan> {
    dag().prop_flat_map(|dag| {
        let n = dag.needs.len();
        (
            proptest::collection::vec(1u32..4, n),
            proptest::collection::vec(proptest::sample::select(vec!["abort", "continue", "rollback"]), n),
            proptest::collection::vec(any::<bool>(), n),
            0usize..3,
        )
            .prop_map(move |(attempts, on_failure, compensated, finally)| RichPlan {
                dag: dag.clone(),
                attempts,
                on_failure,
                compensated,
                finally,
            })
    })
}

fn rich_source(p: &RichPlan) -> String {
    let mut steps = String::new();
    for (i, needs) in p.dag.needs.iter().enumerate() {
        let list: Vec<String> = needs.iter().map(|n| format!("s{n}")).collect();
        steps.push_str(&format!(
            "    - id: s{i}\n      kind: sleep\n      needs: [{}]\n      on_failure: {}\n      retry: {{ attempts: {}, backoff: 10ms }}\n      with: {{ duration: 0s }}\n",
            list.join(", "),
            p.on_failure[i],
            p.attempts[i]
        ));
        if p.compensated[i] {
            steps.push_str("      compensate: { kind: sleep, retry: { attempts: 2, backoff: 10ms }, with: { duration: 0s } }\n");
        }
    }
    let mut finally = String::new();
    for f in 0..p.finally {
        finally.push_str(&format!("    - id: f{f}\n      kind: sleep\n      with: {{ duration: 0s }}\n"));
    }
    let finally = if finally.is_empty() {
        String::new()
    } else {
        format!("  finally:\n{finally}")
    };
    support::plan(
        "props",
        &format!("  concurrency: {}\n  steps:\n{steps}{finally}", p.dag.concurrency),
    )
}

/// The live run at a point where everything it applied is in the journal.
struct Durable {
    len: usize,
    at: chrono::DateTime<Utc>,
    fingerprint: String,
    /// What it would decide next, at that instant.
    next: String,
}

/// What the live runner's state and a replay must agree on.
fn fingerprint(state: &RunState) -> String {
    format!(
        "{:?} | {:?} | rollback {} | {:?} | {:?}",
        state.units.iter().map(|u| (&u.status, u.attempts, u.failures)).collect::<Vec<_>>(),
        state.halt,
        state.rollback,
        state.completion_order,
        state.finished
    )
}

/// Drives a run the way the runner does — results and aborts are applied as they happen,
/// then journaled together with the next decisions in one batch — with attempts failing
/// (retryably or not) at random and, at a random turn, an abort (with or without rollback).
/// Returns the journal and, after each durable batch, the live state's fingerprint and
/// what it would decide next at that instant.
fn simulate_like_the_runner(state: &mut RunState, choices: &[u8], abort_at: Option<(usize, bool)>) -> (Vec<Recorded>, Vec<Durable>) {
    let mut journal = Vec::new();
    let mut durable = Vec::new();
    let mut now = Utc::now();
    let mut pending: Vec<Event> = Vec::new();
    for turn in 0..10_000 {
        if abort_at.is_some_and(|(t, _)| t == turn) && state.halt.is_none() && state.finished.is_none() {
            let event = Event::AbortRequested {
                by: "test".into(),
                reason: None,
                rollback: abort_at.is_some_and(|(_, r)| r),
            };
            state.apply(&event, now);
            pending.push(event);
        }
        let decision = state.decide(now);
        let mut batch = std::mem::take(&mut pending);
        batch.extend(decision.events);
        for event in batch {
            journal.push(Recorded {
                seq: journal.len() as i64,
                at: now,
                event,
            });
        }
        durable.push(Durable {
            len: journal.len(),
            at: now,
            fingerprint: fingerprint(state),
            next: format!("{:?}", state.clone().decide(now).events),
        });
        if state.finished.is_some() {
            return (journal, durable);
        }
        let running: Vec<usize> = (0..state.units.len())
            .filter(|&i| matches!(state.units[i].status, UnitStatus::Running { .. }))
            .collect();
        if running.is_empty() {
            // Only retries are waiting: let their backoff pass.
            now = decision
                .wake_at
                .expect("nothing runs, nothing waits, and the run is not finished: deadlock");
            continue;
        }
        let choice = choices[turn % choices.len()];
        let pick = running[choice as usize % running.len()];
        let UnitStatus::Running { attempt } = state.units[pick].status else {
            unreachable!()
        };
        let result = match choice % 8 {
            0 => Err(lifeboat::steps::StepError::terminal("boom")),
            1 | 2 => Err(lifeboat::steps::StepError::retryable("flaky")),
            _ => Ok(Default::default()),
        };
        let event = state.attempt_event(pick, attempt, result, (choice as f64) / 255.0, now);
        state.apply(&event, now);
        pending.push(event);
        now += Duration::milliseconds(1);
    }
    panic!("the run did not finish in 10000 turns");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replaying_any_durable_prefix_rebuilds_the_live_state_and_its_decisions(
        plan in rich_plan(),
        choices in proptest::collection::vec(any::<u8>(), 1..64),
        abort_at in proptest::option::of((0usize..40, any::<bool>())),
        cut in any::<prop::sample::Index>(),
    ) {
        let src = rich_source(&plan);
        let mut live = new_state(&src);
        let (journal, durable) = simulate_like_the_runner(&mut live, &choices, abort_at);
        let point = &durable[cut.index(durable.len())];
        let mut replayed = RunState::replay(live.plan.clone(), "run".into(), BTreeMap::new(), Arc::new(BTreeMap::new()), &journal[..point.len]);
        prop_assert_eq!(&fingerprint(&replayed), &point.fingerprint, "replaying {} of {} events", point.len, journal.len());
        // Whatever a resumed engine decides next must be what the live one would have.
        prop_assert_eq!(format!("{:?}", replayed.decide(point.at).events), point.next.clone());
    }

    #[test]
    fn without_failures_every_step_runs_exactly_once(dag in dag(), picks in proptest::collection::vec(any::<usize>(), 1..50)) {
        let mut state = new_state(&source(&dag, "abort"));
        let journal = simulate(&mut state, &dag, false, &picks);
        prop_assert_eq!(state.finished.as_ref().map(|f| f.0), Some(RunStatus::Succeeded));
        let mut starts = BTreeMap::new();
        for r in &journal {
            if let Event::StepStarted { step, .. } = &r.event {
                *starts.entry(step.clone()).or_insert(0) += 1;
            }
        }
        prop_assert_eq!(starts.len(), dag.needs.len());
        prop_assert!(starts.values().all(|&n| n == 1));
    }

    #[test]
    fn failures_stop_dependants_and_never_start_steps_early(dag in dag(), picks in proptest::collection::vec(any::<usize>(), 1..50), continue_on_failure in any::<bool>()) {
        let mut state = new_state(&source(&dag, if continue_on_failure { "continue" } else { "abort" }));
        simulate(&mut state, &dag, true, &picks);
        let status = state.finished.as_ref().map(|f| f.0).unwrap();
        let any_failed = state.units.iter().any(|u| matches!(u.status, UnitStatus::Failed { .. }));
        if continue_on_failure || !any_failed {
            prop_assert_eq!(status, RunStatus::Succeeded);
        } else {
            prop_assert_eq!(status, RunStatus::Failed);
        }
        prop_assert!(state.units.iter().all(|u| u.status.is_terminal()));
    }
}
