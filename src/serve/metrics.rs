//! The service's Prometheus metrics (`/metrics`), named `lifeboat_<what>_<unit>` and
//! labelled by plan, schedule, step kind or webhook — never by run id, so their number of
//! series stays bounded.
//!
//! Counters and histograms are this replica's own (Prometheus sums replicas). The drill
//! gauges (last RTO/RPO/verdict per plan, time since the last passing drill) are read from
//! the journal at each scrape, so every replica reports the same values.

use crate::drill::measure;
use crate::journal::schedules::OccurrenceOutcome;
use crate::journal::{Journal, RunStatus};
use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanStatus {
    plan: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabel {
    plan: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanStep {
    plan: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabel {
    schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleOutcome {
    schedule: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookOutcome {
    webhook: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauges<L> = Family<L, Gauge<f64, AtomicU64>>;

fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

fn journal_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0002, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    runs_finished: Family<PlanStatus, Counter>,
    runs_active: Family<PlanLabel, Gauge>,
    step_duration: Histograms<StepLabels>,
    drill_rto: FloatGauges<PlanLabel>,
    drill_rpo: FloatGauges<PlanLabel>,
    drill_passed: Family<PlanLabel, Gauge>,
    drill_last_pass: FloatGauges<PlanLabel>,
    drill_since_pass: FloatGauges<PlanLabel>,
    rto_objective: FloatGauges<PlanLabel>,
    rpo_objective: FloatGauges<PlanLabel>,
    backup_last_success: FloatGauges<PlanStep>,
    schedule_lag: Histograms<ScheduleLabel>,
    occurrences: Family<ScheduleOutcome, Counter>,
    webhook_requests: Family<WebhookOutcome, Counter>,
    journal_latency: Histograms<OperationLabel>,
    leader: Gauge,
    emergency_stop: Gauge,
    /// Measurements of finished runs, by run id: a finished run's measurement never changes.
    measured: Mutex<HashMap<String, Arc<measure::Measurement>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lifeboat");
        let m = Metrics {
            runs_finished: Family::default(),
            runs_active: Family::default(),
            step_duration: Family::new_with_constructor(seconds_buckets),
            drill_rto: Family::default(),
            drill_rpo: Family::default(),
            drill_passed: Family::default(),
            drill_last_pass: Family::default(),
            drill_since_pass: Family::default(),
            rto_objective: Family::default(),
            rpo_objective: Family::default(),
            backup_last_success: Family::default(),
            schedule_lag: Family::new_with_constructor(seconds_buckets),
            occurrences: Family::default(),
            webhook_requests: Family::default(),
            journal_latency: Family::new_with_constructor(journal_buckets),
            leader: Gauge::default(),
            emergency_stop: Gauge::default(),
            measured: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "runs_finished",
            "Runs this replica drove to their end, by plan and final status",
            m.runs_finished.clone(),
        );
        registry.register("runs_active", "Runs in the journal still running, by plan", m.runs_active.clone());
        registry.register(
            "step_duration_seconds",
            "Duration of step attempts this replica ran, by kind and outcome",
            m.step_duration.clone(),
        );
        registry.register(
            "drill_rto_seconds",
            "RTO measured by the plan's latest finished drill",
            m.drill_rto.clone(),
        );
        registry.register(
            "drill_rpo_seconds",
            "RPO measured by the plan's latest finished drill",
            m.drill_rpo.clone(),
        );
        registry.register(
            "drill_passed",
            "Whether the plan's latest finished drill passed (1) or not (0)",
            m.drill_passed.clone(),
        );
        registry.register(
            "drill_last_pass_timestamp_seconds",
            "When the plan's latest passing drill finished (Unix time)",
            m.drill_last_pass.clone(),
        );
        registry.register(
            "drill_since_last_pass_seconds",
            "Time since the plan's latest passing drill finished",
            m.drill_since_pass.clone(),
        );
        registry.register("plan_rto_objective_seconds", "The plan's RTO objective", m.rto_objective.clone());
        registry.register("plan_rpo_objective_seconds", "The plan's RPO objective", m.rpo_objective.clone());
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When a backup step (postgres.backup, velero.backup) of the plan last succeeded (Unix time)",
            m.backup_last_success.clone(),
        );
        registry.register(
            "schedule_lag_seconds",
            "From an occurrence's fire time to its run's start",
            m.schedule_lag.clone(),
        );
        registry.register(
            "schedule_occurrences",
            "Schedule occurrences decided by this replica, by outcome",
            m.occurrences.clone(),
        );
        registry.register(
            "webhook_requests",
            "Webhook requests received, by webhook and outcome",
            m.webhook_requests.clone(),
        );
        registry.register(
            "journal_operation_seconds",
            "Latency of the service's journal operations",
            m.journal_latency.clone(),
        );
        registry.register(
            "scheduler_leader",
            "Whether this replica holds the scheduler lease",
            m.leader.clone(),
        );
        registry.register(
            "emergency_stop_engaged",
            "Whether the emergency stop is engaged (drills aborted, schedules held)",
            m.emergency_stop.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn run_finished(&self, plan: &str, status: RunStatus) {
        self.runs_finished
            .get_or_create(&PlanStatus {
                plan: plan.to_owned(),
                status: status.as_str().to_owned(),
            })
            .inc();
    }

    pub fn step_finished(&self, kind: &str, outcome: &str, took: Duration) {
        self.step_duration
            .get_or_create(&StepLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Exports every outcome counter of `schedule` at zero, so the first missed occurrence is
    /// an increase Prometheus can see (a series born at 1 shows none).
    pub fn schedule_known(&self, schedule: &str) {
        for outcome in [
            OccurrenceOutcome::Fired,
            OccurrenceOutcome::Buffered,
            OccurrenceOutcome::Skipped,
            OccurrenceOutcome::Missed,
        ] {
            self.occurrences
                .get_or_create(&ScheduleOutcome {
                    schedule: schedule.to_owned(),
                    outcome: outcome.as_str().to_owned(),
                })
                .inc_by(0);
        }
    }

    pub fn occurrence(&self, schedule: &str, outcome: OccurrenceOutcome) {
        self.occurrences
            .get_or_create(&ScheduleOutcome {
                schedule: schedule.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
    }

    pub fn schedule_lag(&self, schedule: &str, lag: Duration) {
        self.schedule_lag
            .get_or_create(&ScheduleLabel {
                schedule: schedule.to_owned(),
            })
            .observe(lag.as_secs_f64());
    }

    pub fn webhook(&self, webhook: &str, outcome: &str) {
        self.webhook_requests
            .get_or_create(&WebhookOutcome {
                webhook: webhook.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn journal_op(&self, operation: &str, took: Duration) {
        self.journal_latency
            .get_or_create(&OperationLabel {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Refreshes the gauges read from the journal, then renders every metric in the
    /// OpenMetrics text format.
    pub async fn render(&self, journal: &Journal, catalog: &super::catalog::Catalog) -> String {
        let started = std::time::Instant::now();
        if let Err(e) = self.refresh(journal, catalog).await {
            tracing::warn!(error = %e, "could not read the journal for the drill metrics");
        }
        self.journal_op("metrics_refresh", started.elapsed());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }

    async fn refresh(&self, journal: &Journal, catalog: &super::catalog::Catalog) -> Result<(), crate::engine::runner::EngineError> {
        let now = Utc::now();
        let stopped = super::emergency::engaged(journal).await?.is_some();
        self.emergency_stop.set(i64::from(stopped));
        // Rebuilt from the journal each scrape: a plan that went (or lost an objective) must
        // not go on exporting its last values and keep alerts firing.
        self.runs_active.clear();
        self.drill_rto.clear();
        self.drill_rpo.clear();
        self.drill_passed.clear();
        self.drill_last_pass.clear();
        self.drill_since_pass.clear();
        self.rto_objective.clear();
        self.rpo_objective.clear();
        self.backup_last_success.clear();
        for (plan, entry) in &catalog.plans {
            let label = PlanLabel { plan: plan.clone() };
            if let Some(rto) = entry.plan.rto {
                self.rto_objective.get_or_create(&label).set(rto.as_secs_f64());
            }
            if let Some(rpo) = entry.plan.rpo {
                self.rpo_objective.get_or_create(&label).set(rpo.as_secs_f64());
            }
            let runs = journal.runs(Some(plan), 50).await?;
            self.refresh_backups(journal, plan, &runs).await?;
            let active = runs.iter().filter(|r| r.status == RunStatus::Running).count();
            self.runs_active.get_or_create(&label).set(active as i64);
            let mut latest_done = true;
            for run in runs.iter().filter(|r| r.status != RunStatus::Running) {
                let m = self.measurement(journal, &run.id).await?;
                if m.disaster.is_none() {
                    continue; // not a drill
                }
                if latest_done {
                    latest_done = false;
                    if let Some(rto) = m.rto_ms {
                        self.drill_rto.get_or_create(&label).set(rto as f64 / 1000.0);
                    }
                    if let Some(rpo) = m.rpo_ms {
                        self.drill_rpo.get_or_create(&label).set(rpo as f64 / 1000.0);
                    }
                    self.drill_passed.get_or_create(&label).set(i64::from(m.passed));
                }
                if m.passed {
                    let at = m.finished_at.unwrap_or(m.started_at);
                    self.drill_last_pass
                        .get_or_create(&label)
                        .set(at.timestamp_millis() as f64 / 1000.0);
                    self.drill_since_pass
                        .get_or_create(&label)
                        .set((now - at).num_milliseconds() as f64 / 1000.0);
                    break;
                }
            }
        }
        Ok(())
    }

    /// The latest success of each backup step among `runs` (newest first).
    async fn refresh_backups(
        &self,
        journal: &Journal,
        plan: &str,
        runs: &[crate::journal::RunRow],
    ) -> Result<(), crate::engine::runner::EngineError> {
        let mut seen = std::collections::HashSet::new();
        for run in runs.iter().filter(|r| r.status != RunStatus::Running) {
            let m = self.measurement(journal, &run.id).await?;
            for step in &m.steps {
                let backup = matches!(step.kind.as_str(), "postgres.backup" | "velero.backup");
                if !backup || step.status != "succeeded" || !seen.insert(step.id.clone()) {
                    continue;
                }
                if let Some(at) = step.finished_at {
                    self.backup_last_success
                        .get_or_create(&PlanStep {
                            plan: plan.to_owned(),
                            step: step.id.clone(),
                        })
                        .set(at.timestamp_millis() as f64 / 1000.0);
                }
            }
        }
        Ok(())
    }

    /// A finished run's measurement, replayed once and kept: it never changes.
    pub async fn measurement(
        &self,
        journal: &Journal,
        run_id: &str,
    ) -> Result<Arc<measure::Measurement>, crate::engine::runner::EngineError> {
        if let Some(m) = self.measured.lock().expect("metrics lock").get(run_id) {
            return Ok(m.clone());
        }
        let m = Arc::new(measure::measure(journal, run_id).await?);
        self.measured.lock().expect("metrics lock").insert(run_id.to_owned(), m.clone());
        Ok(m)
    }
}

/// The OpenMetrics text turned into Prometheus' classic text format (0.0.4), for scrapers
/// and tools (`promtool check metrics`) that do not ask for OpenMetrics: a counter's family
/// is named with its `_total` suffix, and `# EOF` and `# UNIT` lines go.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counter_families_with_their_total_suffix() {
        let m = Metrics::new();
        m.run_finished("nightly", RunStatus::Succeeded);
        m.set_leader(true);
        let mut open = String::new();
        prometheus_client::encoding::text::encode(&mut open, &m.registry).unwrap();
        assert!(open.contains("# TYPE lifeboat_runs_finished counter"));
        let classic = to_prometheus_text(&open);
        assert!(classic.contains("# TYPE lifeboat_runs_finished_total counter"), "{classic}");
        assert!(classic.contains("# HELP lifeboat_runs_finished_total Runs"), "{classic}");
        assert!(
            classic.contains("lifeboat_runs_finished_total{plan=\"nightly\",status=\"succeeded\"} 1"),
            "{classic}"
        );
        assert!(classic.contains("# TYPE lifeboat_scheduler_leader gauge"), "{classic}");
        assert!(!classic.contains("# EOF"));
    }
}
