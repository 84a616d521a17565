//! A regional failover where the primary's region is cut off by the network, not killed:
//! east runs in its own network namespace behind a veth pair, and the drill takes the link
//! down. Needs root (network namespaces); skips cleanly otherwise.

mod support;

use std::process::Command;

use lifeboat_backup::instance::{InitOptions, LocalInstance, ServerUser, append_settings};
use support::netns::Region;
use support::servers::{free_port, shared_tempdir};

const PLAN: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: { name: netns-failover }
spec:
  objectives: { rto: 20s, rows_lost: 0 }
  params:
    east: { type: string, description: "host:port of the primary" }
    link: { type: string }
    workdir: { type: string }
  steps:
    - id: west
      kind: postgres.standby
      with: { primary_dsn: "postgres://postgres@${{ params.east }}/postgres", dir: "${{ params.workdir }}/west", name: west, synchronous: true }
    - id: endpoint
      kind: traffic.proxy
      needs: [west]
      with: { proxy: db, upstream: "${{ params.east }}" }
    - id: canary
      kind: validation.canary
      needs: [endpoint]
      with: { dsn: "postgres://postgres@127.0.0.1:${{ steps.endpoint.outputs.listen_port }}/postgres", interval: 20ms }
    - id: traffic
      kind: sleep
      needs: [canary]
      with: { duration: 1s }
    - id: partition
      kind: chaos.partition
      needs: [traffic]
      mark: disaster
      with: { link: "${{ params.link }}" }
    - id: detect
      kind: validation.tcp_probe
      needs: [partition]
      with: { address: "${{ params.east }}", connect_timeout: 200ms, until: failing, consecutive: 3, interval: 250ms, timeout: 30s }
    - id: fence
      kind: postgres.fence
      needs: [detect]
      with:
        dsn: "postgres://postgres@${{ params.east }}/postgres"
        proxies: [db]
        paths: ["postgres://postgres@127.0.0.1:${{ steps.endpoint.outputs.listen_port }}/postgres"]
    - id: promote
      kind: postgres.promote
      needs: [fence]
      with: { dsn: "${{ steps.west.outputs.dsn }}" }
    - id: switch
      kind: traffic.proxy
      needs: [promote]
      with: { proxy: db, upstream: "127.0.0.1:${{ steps.west.outputs.port }}" }
    - id: serving
      kind: validation.sql_probe
      needs: [switch]
      mark: recovered
      with: { dsn: "postgres://postgres@127.0.0.1:${{ steps.endpoint.outputs.listen_port }}/postgres", query: SELECT NOT pg_is_in_recovery(), expect: "t", interval: 50ms, timeout: 20s }
    - id: rpo
      kind: validation.rpo
      needs: [serving]
      with: { dsn: "${{ steps.west.outputs.dsn }}", canary: canary, disaster_at: "${{ steps.detect.outputs.first_check_at }}" }
  finally:
    - id: stop_west
      kind: postgres.local_instance
      with: { action: stop, dir: "${{ params.workdir }}/west" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_primary_region_off_fails_over_without_losing_a_write() {
    let Some(region) = Region::create() else { return };
    let (ns, outer, east_ip) = (region.ns.clone(), region.outer.clone(), region.region_ip.clone());

    // East: a primary inside the namespace, listening only on its veth address.
    let dir = shared_tempdir();
    let port = free_port();
    let mut east = LocalInstance::new(&dir.path().join("east"), port).unwrap();
    east.init(&InitOptions::default()).await.unwrap();
    let pgdata = east.pgdata();
    append_settings(
        &pgdata.join("postgresql.conf"),
        "east listens in its namespace",
        &[("listen_addresses".into(), east_ip.clone())],
    )
    .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(pgdata.join("pg_hba.conf"))
        .and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                b"host all all 10.77.0.0/16 trust\nhost replication all 10.77.0.0/16 trust\n",
            )
        })
        .unwrap();
    let user = ServerUser::current_or_postgres().unwrap();
    let mut start = Command::new("ip");
    start.args(["netns", "exec", &ns]);
    if user.is_some() {
        start.args(["runuser", "-u", "postgres", "--"]);
    }
    start
        .arg(east.bins.tool("pg_ctl"))
        .arg("-D")
        .arg(&pgdata)
        .arg("-l")
        .arg(east.log_file())
        .args(["-w", "start"]);
    assert!(start.status().unwrap().success(), "east did not start in its namespace");

    let plan = dir.path().join("netns.yaml");
    std::fs::write(&plan, PLAN).unwrap();
    let report = dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["drill", &plan.display().to_string(), "--report", &report.display().to_string()])
        .args(["--param", &format!("east={east_ip}:{port}")])
        .args(["--param", &format!("link={outer}")])
        .args(["--param", &format!("workdir={}", dir.path().display())])
        .output()
        .unwrap();
    let link_restored = support::netns::sh(&["sh", "-c", &format!("ip -o link show dev {outer} | grep -q '<.*,UP'")]);
    let east_still_up = east.running_pid().is_some();
    support::servers::stop(&east).await;
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(east_still_up, "east was cut off, not killed");
    assert!(link_restored, "the partition was reverted when the run ended");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(m["rows_lost"], 0);
    let fence = m["steps"].as_array().unwrap().iter().find(|s| s["id"] == "fence").unwrap();
    assert_eq!(fence["outputs"]["action"], "not_local");
    assert_eq!(fence["outputs"]["proxies_cut"], serde_json::json!(["db"]));
}
