//! kubesim clusters for the Kubernetes tests: serving on loopback, with a kubeconfig file
//! and a client that does not retry.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

pub struct Sim {
    pub cluster: kubesim::Cluster,
    pub running: kubesim::Running,
    _dir: tempfile::TempDir,
    pub kubeconfig: String,
    /// The kubeconfig context plans use (`None`: its current context).
    context: Option<String>,
    config: kube::Config,
    /// A real cluster (`LIFEBOAT_TEST_KUBECONFIG`), not kubesim.
    real: bool,
}

fn serving(cluster: kubesim::Cluster, running: kubesim::Running) -> Sim {
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig").display().to_string();
    std::fs::write(&kubeconfig, running.kubeconfig()).unwrap();
    let mut config = kube::Config::new(running.url.parse().unwrap());
    config.default_retry = false;
    Sim {
        cluster,
        running,
        _dir: tmp,
        kubeconfig,
        context: Some("kubesim".into()),
        config,
        real: false,
    }
}

/// A kubesim cluster serving on loopback, with Velero's (and the other) CRDs when `crds`.
pub async fn sim(crds: bool) -> Sim {
    let dir = kubesim::Cluster::crds_dir();
    let cluster = kubesim::Cluster::new(crds.then_some(dir.as_path())).unwrap();
    let running = cluster.serve().await.unwrap();
    serving(cluster, running)
}

/// A kubesim cluster serving on loopback with only the CRDs under `dir`.
pub async fn sim_with_crds(dir: &std::path::Path) -> Sim {
    let cluster = kubesim::Cluster::new(Some(dir)).unwrap();
    let running = cluster.serve().await.unwrap();
    serving(cluster, running)
}

/// The cluster for a test that needs no fault hook: a real cluster when
/// `LIFEBOAT_TEST_KUBECONFIG` names its kubeconfig (context `LIFEBOAT_TEST_KUBECONTEXT`, else
/// the current one; Velero installed in `velero` for the Velero tests), else kubesim. The
/// test talks to either only through `kube::Client` and the plan's kubeconfig.
pub async fn target(crds: bool) -> Sim {
    let mut sim = sim(crds).await;
    let Ok(kubeconfig) = std::env::var("LIFEBOAT_TEST_KUBECONFIG") else {
        return sim;
    };
    let context = std::env::var("LIFEBOAT_TEST_KUBECONTEXT").ok();
    let file = kube::config::Kubeconfig::read_from(&kubeconfig).expect("LIFEBOAT_TEST_KUBECONFIG is a kubeconfig");
    let options = kube::config::KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .expect("the kubeconfig's context is usable");
    config.default_retry = false;
    eprintln!("note: testing against the cluster of {kubeconfig} (LIFEBOAT_TEST_KUBECONFIG)");
    sim.kubeconfig = kubeconfig;
    sim.context = context;
    sim.config = config;
    sim.real = true;
    sim
}

impl Sim {
    /// The plan's `spec.clusters` with this cluster as `sim`.
    pub fn clusters(&self) -> String {
        format!("  clusters:\n{}", self.cluster_entry("sim"))
    }

    /// This cluster as `name` in a plan's `spec.clusters`, one line.
    pub fn cluster_entry(&self, name: &str) -> String {
        match &self.context {
            Some(context) => format!("    {name}: {{ kubeconfig: \"{}\", context: {context} }}\n", self.kubeconfig),
            None => format!("    {name}: {{ kubeconfig: \"{}\" }}\n", self.kubeconfig),
        }
    }

    /// Whether a count is as expected: exactly `n` on kubesim, at least `n` on a real
    /// cluster, where controllers add objects kubesim does not simulate.
    pub fn exactly_or_more(&self, n: i64) -> impl Fn(i64) -> bool {
        let real = self.real;
        move |count| if real { count >= n } else { count == n }
    }

    /// A client that does not retry (a test sees what happened).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config.clone()).unwrap()
    }

    pub async fn replicas(&self, kind: &str, plural: &str, name: &str) -> i64 {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client(), "app", &ar);
        api.get(name).await.unwrap().data["spec"]["replicas"].as_i64().unwrap()
    }
}

/// A second cluster sharing `primary`'s Velero object storage (one bucket, two clusters),
/// as a DR cluster does.
pub async fn sim_sharing(primary: &Sim) -> Sim {
    let dir = kubesim::Cluster::crds_dir();
    let cluster = kubesim::Cluster::with_storage(Some(dir.as_path()), primary.cluster.velero_storage()).unwrap();
    let running = cluster.serve().await.unwrap();
    serving(cluster, running)
}

impl Sim {
    /// A Velero object (or any custom resource) as JSON, `None` when absent.
    pub async fn velero_object(&self, plural: &str, kind: &str, name: &str) -> Option<serde_json::Value> {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(self.client(), "velero", &ar);
        api.get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
    }
}

/// The manifests of a small application in namespace `app`: a ConfigMap, a Deployment and
/// a StatefulSet.
pub const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: { name: app }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: settings, namespace: app }
data: { mode: production }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: app }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, image: nginx }] }
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db, namespace: app }
spec:
  serviceName: db
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec: { containers: [{ name: db, image: postgres }] }
"#;

/// `text` with every line indented by `by` spaces.
pub fn indented(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

/// The error of a run that should have succeeded, or "" (for assertion messages).
pub fn why_not(report: &lifeboat::engine::runner::RunReport, events: &[lifeboat::journal::Event]) -> String {
    if report.status == lifeboat::journal::RunStatus::Succeeded {
        String::new()
    } else {
        super::first_error(events)
    }
}

/// Runs `plan` through the CLI as a drill on `sim` (its kubeconfig given as the param
/// `kubeconfig_param`, with `params` beyond it) and
/// returns its JSON report, after checking it passed with a measured RTO.
pub async fn passing_drill(
    (sim, kubeconfig_param): (&Sim, &str),
    plan: &str,
    params: &[String],
    dir: &std::path::Path,
) -> serde_json::Value {
    let report = dir.join("report.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--state")
        .arg(dir.join("state.db"))
        .args(["drill", plan, "--param", &format!("{kubeconfig_param}={}", sim.kubeconfig)]);
    for param in params {
        command.args(["--param", param]);
    }
    let out = command.arg("--report").arg(&report).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["rto_ms"].as_i64().unwrap() > 0);
    eprintln!(
        "drill {plan}: rto_ms={} rpo_ms={} rows_lost={}",
        report["rto_ms"], report["rpo_ms"], report["rows_lost"]
    );
    report
}

/// The step `id` of a drill report.
pub fn report_step(report: &serde_json::Value, id: &str) -> serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {report}"))
        .clone()
}
