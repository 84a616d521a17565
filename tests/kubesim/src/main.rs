//! `kubesim`: the simulated Kubernetes API server as a process, for running lifeboat's
//! Kubernetes plans from the CLI without a cluster.
//!
//!     cargo run -p kubesim -- --kubeconfig /tmp/kubesim.kubeconfig
//!     KUBECONFIG=/tmp/kubesim.kubeconfig kubectl get namespaces

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: kubesim --kubeconfig PATH [--crds DIR]   (serves on a free loopback port until interrupted)");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut crds) = (None, kubesim::Cluster::crds_dir());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            "--crds" => crds = PathBuf::from(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let Some(kubeconfig) = kubeconfig else { usage() };
    let cluster = match kubesim::Cluster::new(Some(&crds)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kubesim: loading CRDs from {}: {e}", crds.display());
            std::process::exit(1)
        }
    };
    let running = match cluster.serve().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kubesim: listening on loopback: {e}");
            std::process::exit(1)
        }
    };
    if let Err(e) = std::fs::write(&kubeconfig, running.kubeconfig()) {
        eprintln!("kubesim: writing {}: {e}", kubeconfig.display());
        std::process::exit(1)
    }
    println!("kubesim serving {} (kubeconfig {})", running.url, kubeconfig.display());
    let _ = tokio::signal::ctrl_c().await;
}
