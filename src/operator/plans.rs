//! `RecoveryPlan` resources become the service's plans: each is compiled as the plan file
//! it stands for, the catalog is rebuilt from the set (so a deleted plan is gone from it),
//! and each resource's `Compiled` condition says whether it runs and, if not, why.

use super::Context;
use super::crd::{RecoveryPlan, RecoveryPlanStatus};
use super::status;
use crate::plan::{self, diagnostic::Diagnostic, model};
use crate::serve::catalog::{Catalog, PlanEntry};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A compile result, kept while the resource's generation stays the same.
type Compiled = Result<PlanEntry, Vec<String>>;

/// Follows the namespace's plans until `stop`.
/// `loaded` is cancelled once the first full list has been compiled.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken, loaded: CancellationToken) {
    let api: Api<RecoveryPlan> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let (reader, writer) = reflector::store();
    let events = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()).default_backoff());
    let mut events = std::pin::pin!(events);
    let mut cache: HashMap<(String, i64), Compiled> = HashMap::new();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
            Some(Ok(_)) => {
                sync(&ctx, &api, &reader, &mut cache).await;
                loaded.cancel();
            }
            Some(Err(e)) => tracing::warn!(error = %e, "watching RecoveryPlans failed; retrying"),
            None => break,
        }
    }
}

async fn sync(ctx: &Context, api: &Api<RecoveryPlan>, reader: &Store<RecoveryPlan>, cache: &mut HashMap<(String, i64), Compiled>) {
    let resources = reader.state();
    let mut catalog = Catalog::default();
    let mut live = std::collections::HashSet::new();
    for resource in &resources {
        let key = (resource.uid().unwrap_or_default(), resource.meta().generation.unwrap_or_default());
        live.insert(key.clone());
        let compiled = cache.entry(key).or_insert_with(|| compile(&ctx.namespace, resource));
        if let Ok(entry) = compiled {
            catalog.plans.insert(entry.plan.name.clone(), entry.clone());
        }
        let observed = observed(resource, compiled);
        if let Err(e) = status::write(api, &resource.name_any(), resource.status.as_ref(), &observed).await {
            tracing::warn!(plan = %resource.name_any(), error = %e, "cannot write the RecoveryPlan's status");
        }
    }
    cache.retain(|key, _| live.contains(key));
    tracing::debug!(plans = catalog.plans.len(), "plans from RecoveryPlans");
    ctx.sources.catalog.update(|_| catalog);
}

/// The plan document a resource stands for, compiled as a file named
/// `recoveryplan/<namespace>/<name>`.
pub fn compile(namespace: &str, resource: &RecoveryPlan) -> Compiled {
    let name = resource.name_any();
    let document = model::PlanDocument {
        api_version: model::API_VERSION.into(),
        kind: model::KIND.into(),
        metadata: model::Metadata {
            name: name.clone(),
            labels: resource.labels().clone(),
            annotations: Default::default(),
        },
        spec: resource.spec.0.clone(),
    };
    let source = serde_saphyr::to_string(&document).map_err(|e| vec![format!("the plan does not serialize: {e}")])?;
    let file = format!("recoveryplan/{namespace}/{name}");
    match plan::compile(&file, &source, crate::steps::catalog()) {
        Ok(compiled) => Ok(PlanEntry {
            file,
            source,
            plan: Arc::new(compiled),
        }),
        Err(diagnostics) => Err(diagnostics.iter().map(one_line).collect()),
    }
}

/// A compiler diagnostic without the source excerpt (the source is generated from the
/// resource, so its line numbers would point nowhere the user wrote).
fn one_line(d: &Diagnostic) -> String {
    let step = d.step.as_ref().map(|s| format!("step `{s}`: ")).unwrap_or_default();
    let help = d.help.as_ref().map(|h| format!(" (help: {h})")).unwrap_or_default();
    format!("{step}{}{help}", d.message)
}

fn observed(resource: &RecoveryPlan, compiled: &Compiled) -> RecoveryPlanStatus {
    let generation = resource.meta().generation;
    let existing = resource.status.as_ref().map(|s| &s.conditions[..]).unwrap_or_default();
    match compiled {
        Ok(entry) => RecoveryPlanStatus {
            observed_generation: generation,
            conditions: vec![status::condition(existing, "Compiled", true, "Compiled", String::new(), generation)],
            errors: Vec::new(),
            steps: Some(entry.plan.units.len() as u32),
        },
        Err(errors) => RecoveryPlanStatus {
            observed_generation: generation,
            conditions: vec![status::condition(
                existing,
                "Compiled",
                false,
                "Invalid",
                format!(
                    "{} problem(s); the first: {}",
                    errors.len(),
                    errors.first().map_or("", String::as_str)
                ),
                generation,
            )],
            errors: errors.clone(),
            steps: None,
        },
    }
}
