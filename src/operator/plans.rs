//! `RecoveryPlan` resources become the service's plans: each is compiled as the plan file
//! it stands for, the catalog is rebuilt from the set (so a deleted plan is gone from it),
//! and each resource's `Compiled` condition says whether it runs and, if not, why.

use super::Context;
use super::crd::{RecoveryPlan, RecoveryPlanStatus};
use super::follow::{self, Follower};
use super::status;
use crate::plan::{self, diagnostic::Diagnostic, model};
use crate::serve::catalog::{Catalog, PlanEntry};
use kube::api::{Api, DynamicObject};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A compile result, kept while the resource's generation and labels stay the same.
type Compiled = Result<PlanEntry, Vec<String>>;
type CacheKey = (String, i64, std::collections::BTreeMap<String, String>);

/// Follows the namespace's plans until `stop`. `loaded` is cancelled once the first full
/// list has been compiled.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken, loaded: CancellationToken) {
    let mut plans = Follower::new::<RecoveryPlan>(&ctx, None);
    let mut cache: HashMap<CacheKey, Compiled> = HashMap::new();
    loop {
        let set = tokio::select! {
            _ = stop.cancelled() => break,
            set = plans.next() => set,
        };
        let Some(set) = set else { break };
        sync(&ctx, &plans.api, &set, &mut cache).await;
        loaded.cancel();
    }
}

async fn sync(ctx: &Context, api: &Api<DynamicObject>, resources: &[Arc<DynamicObject>], cache: &mut HashMap<CacheKey, Compiled>) {
    let mut catalog = Catalog::default();
    let mut live = std::collections::HashSet::new();
    for resource in resources {
        let generation = resource.meta().generation;
        let key = (
            resource.uid().unwrap_or_default(),
            generation.unwrap_or_default(),
            resource.labels().clone(),
        );
        live.insert(key.clone());
        let compiled = cache.entry(key).or_insert_with(|| match follow::typed::<RecoveryPlan>(resource) {
            Ok(plan) => compile(&ctx.namespace, &plan),
            Err(e) => Err(vec![format!("the resource does not read as a plan: {e}")]),
        });
        if let Ok(entry) = compiled {
            catalog.plans.insert(entry.plan.name.clone(), entry.clone());
        }
        let current: Option<RecoveryPlanStatus> = follow::status_of(resource);
        let observed = observed(generation, current.as_ref(), compiled);
        if let Err(e) = status::write(api, resource.as_ref(), current.as_ref(), &observed).await {
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
            namespace: Some(namespace.to_owned()),
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

fn observed(generation: Option<i64>, current: Option<&RecoveryPlanStatus>, compiled: &Compiled) -> RecoveryPlanStatus {
    let existing = current.map(|s| &s.conditions[..]).unwrap_or_default();
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
