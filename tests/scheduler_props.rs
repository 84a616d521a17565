//! Properties of the deterministic core on random DAGs and random completion orders:
//! a step never starts before its needs succeeded, the concurrency cap holds, and
//! without failures every step runs exactly once. Replaying the journal mid-run
//! rebuilds the same decisions.

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
        let event = state.attempt_event(pick, attempt, result, 0.5);
        state.apply(&event, now);
        journal.push(Recorded { seq, at: now, event });
        seq += 1;
        now += Duration::milliseconds(1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

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

    #[test]
    fn replaying_a_prefix_of_the_journal_rebuilds_the_same_state(dag in dag(), picks in proptest::collection::vec(any::<usize>(), 1..50), cut in any::<prop::sample::Index>()) {
        let src = source(&dag, "abort");
        let mut state = new_state(&src);
        let journal = simulate(&mut state, &dag, true, &picks);
        let prefix = &journal[..cut.index(journal.len() + 1)];
        let mut replayed = RunState::replay(state.plan.clone(), "run".into(), BTreeMap::new(), Arc::new(BTreeMap::new()), prefix);
        let mut live = new_state(&src);
        for r in prefix {
            live.apply(&r.event, r.at);
        }
        for (a, b) in replayed.units.iter().zip(&live.units) {
            prop_assert_eq!(&a.status, &b.status);
        }
        // Whatever a resumed engine decides next must be the same as a live one would.
        let t = Utc::now();
        prop_assert_eq!(format!("{:?}", replayed.decide(t).events), format!("{:?}", live.decide(t).events));
    }
}
