//! `lifeboat operator`: runs lifeboat as a Kubernetes operator, or prints its CRDs.

use super::invalid;
use crate::serve::{ServeOptions, config};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Follow RecoveryPlans, DrillSchedules and Runs in a namespace and run them; serve the
    /// HTTP API, dashboard and metrics.
    Run(OperatorArgs),
    /// Print the CustomResourceDefinitions (YAML), e.g. for `kubectl apply -f -`.
    Crds,
}

#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// The namespace whose resources to follow (default: the kubeconfig context's or the
    /// pod's namespace).
    #[arg(long, short, value_name = "NS", env = "LIFEBOAT_NAMESPACE")]
    namespace: Option<String>,
    /// A `lifeboat serve` configuration for tokens, webhooks, `listen:` and `handoff_grace:`
    /// (without `plans:` or `schedules:`, which come from the resources).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this address (default: the file's `listen:` (127.0.0.1:8480 when it has
    /// none), or 0.0.0.0:8480 without a file).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// This replica's name in leases and logs (default: host, pid and a random suffix).
    #[arg(long, value_name = "NAME", env = "LIFEBOAT_REPLICA")]
    replica: Option<String>,
    /// Most runs this replica drives at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_runs: u16,
}

pub async fn run(state: &str, command: OperatorCommand) -> anyhow::Result<u8> {
    let args = match command {
        OperatorCommand::Crds => {
            out!("{}", crate::operator::crd::yaml());
            return Ok(super::exit::SUCCESS);
        }
        OperatorCommand::Run(args) => args,
    };
    let mut config = match &args.config {
        Some(file) => {
            let config = config::load(file).map_err(invalid)?;
            if !config.plan_paths.is_empty() || !config.schedules.is_empty() {
                return Err(invalid(format!(
                    "error: {}: `plans:` and `schedules:` are not read by the operator; create RecoveryPlan and DrillSchedule resources instead, and remove them from the file",
                    file.display()
                )));
            }
            config
        }
        None => config::ServeConfig {
            listen: "0.0.0.0:8480".into(),
            handoff_grace: config::DEFAULT_HANDOFF_GRACE,
            max_body_bytes: config::DEFAULT_MAX_BODY_BYTES,
            ..Default::default()
        },
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let kube_config = kube::Config::infer().await.map_err(|e| {
        invalid(format!(
            "error: cannot find the cluster: {e}; set KUBECONFIG or run in a pod with a service account"
        ))
    })?;
    let namespace = args.namespace.unwrap_or_else(|| kube_config.default_namespace.clone());
    let client = kube::Client::try_from(kube_config)?;
    let options = ServeOptions {
        config,
        state: state.to_owned(),
        replica: args.replica,
        max_runs: usize::from(args.max_runs),
    };
    super::serve_cmd::until_signalled(options, |options, stop| {
        crate::operator::run(options, client, namespace, stop, None)
    })
    .await
}
