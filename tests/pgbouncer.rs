//! `traffic.pgbouncer` against a real PgBouncer (Debian's) in front of two real PostgreSQL
//! servers: a client querying through PgBouncer all along sees its queries move from the
//! first server to the second without a single error or reconnect.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lifeboat_backup::instance::{LocalInstance, ServerUser};
use sqlx::{Connection, Row};
use support::servers::{free_port, shared_tempdir};

fn pgbouncer_binary() -> Option<std::path::PathBuf> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_pgbouncer_moves_traffic_without_a_client_error() {
    let Some(binary) = pgbouncer_binary() else {
        assert!(std::env::var("CI").is_err(), "CI installs pgbouncer (scripts/test.sh)");
        eprintln!("skipped: pgbouncer is not installed");
        return;
    };
    let dir = shared_tempdir();
    let mut servers = Vec::new();
    for name in ["east", "west"] {
        let mut s = LocalInstance::new(&dir.path().join(name), free_port(), lifeboat_backup::process::Spawner::unrecorded()).unwrap();
        s.init(&Default::default()).await.unwrap();
        s.start().await.unwrap();
        servers.push(s);
    }
    let (east, west) = (servers[0].port, servers[1].port);
    let bouncer_port = free_port();
    let admin_port = bouncer_port;
    let d = dir.path().display();
    std::fs::write(dir.path().join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
    let config = dir.path().join("pgbouncer.ini");
    std::fs::write(
        &config,
        format!(
            "[databases]\napp = host=127.0.0.1 port={east} dbname=postgres\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {bouncer_port}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {d}/userlist.txt\nadmin_users = postgres\npool_mode = transaction\n\
             ignore_startup_parameters = extra_float_digits\nlogfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n"
        ),
    )
    .unwrap();
    let mut bouncer = ServerUser::command(ServerUser::current_or_postgres().unwrap(), &binary)
        .arg(&config)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{bouncer_port}/app");
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = sqlx::PgConnection::connect(&url).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = client.expect("PgBouncer did not come up");

    // One connection, a query every few milliseconds, through the whole switch.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_client = stop.clone();
    let querying = tokio::spawn(async move {
        let (mut seen, mut errors) = (Vec::<String>::new(), Vec::<String>::new());
        while !stop_client.load(Ordering::Relaxed) {
            // The simple query protocol, as clients of a transaction-mode pooler must use:
            // sqlx's extended protocol parses and executes after separate Syncs, which the
            // pooler may send to different servers.
            match sqlx::Executor::fetch_one(&mut client, "SELECT current_setting('port')").await {
                Ok(row) if seen.last().map(String::as_str) != Some(row.get::<&str, _>(0)) => seen.push(row.get(0)),
                Ok(_) => {}
                Err(e) => errors.push(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        (seen, errors)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let plan = dir.path().join("switch.yaml");
    std::fs::write(
        &plan,
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: {{ name: pgbouncer-switch }}\nspec:\n  steps:\n    - id: switch\n      kind: traffic.pgbouncer\n      with: {{ config: \"{}\", admin_port: {admin_port}, database: app, host: 127.0.0.1, port: {west} }}\n",
            config.display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["run", &plan.display().to_string()])
        .output()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (seen, errors) = querying.await.unwrap();
    let _ = bouncer.kill().await;
    for s in &servers {
        support::servers::stop(s).await;
    }
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(errors, Vec::<String>::new(), "the client saw errors during the switch");
    assert_eq!(
        seen,
        vec![east.to_string(), west.to_string()],
        "traffic moved from east to west, once"
    );
    let ini = std::fs::read_to_string(&config).unwrap();
    assert!(ini.contains(&format!("app = host=127.0.0.1 port={west} dbname=postgres")), "{ini}");
}
