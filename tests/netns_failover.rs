//! A regional failover on a local two-region topology where each region is its own network
//! namespace on a bridge: the plan itself places the primary in `east` and builds its
//! synchronous standby in `west`, then cuts east off the network (its bridge port taken
//! down, not the process killed) and fails over. Needs root (network namespaces); skips
//! cleanly otherwise.

mod support;

use std::process::Command;

use support::netns::Topology;
use support::servers::{free_port, shared_tempdir};

const PLAN: &str = r#"
apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: { name: netns-failover }
spec:
  objectives: { rto: 20s, rows_lost: 0 }
  params:
    east_netns: { type: string }
    east_ip: { type: string }
    east_link: { type: string, description: the host end of east's veth pair }
    west_netns: { type: string }
    west_ip: { type: string }
    network: { type: string, description: the regions' network (CIDR) }
    port: { type: integer }
    workdir: { type: string }
  steps:
    - id: east
      kind: postgres.local_instance
      with:
        dir: "${{ params.workdir }}/east"
        port: "${{ params.port }}"
        host: "${{ params.east_ip }}"
        netns: "${{ params.east_netns }}"
        trusted_networks: ["${{ params.network }}"]
    - id: west
      kind: postgres.standby
      needs: [east]
      with:
        primary_dsn: "${{ steps.east.outputs.dsn }}"
        dir: "${{ params.workdir }}/west"
        port: "${{ params.port }}"
        host: "${{ params.west_ip }}"
        netns: "${{ params.west_netns }}"
        name: west
        synchronous: true
    - id: endpoint
      kind: traffic.proxy
      needs: [west]
      with: { proxy: db, upstream: "${{ params.east_ip }}:${{ params.port }}" }
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
      with: { link: "${{ params.east_link }}" }
    - id: detect
      kind: validation.tcp_probe
      needs: [partition]
      with: { address: "${{ params.east_ip }}:${{ params.port }}", connect_timeout: 200ms, until: failing, consecutive: 3, interval: 250ms, timeout: 30s }
    - id: fence
      kind: postgres.fence
      needs: [detect]
      with:
        dsn: "${{ steps.east.outputs.dsn }}"
        proxies: [db]
        paths: ["postgres://postgres@127.0.0.1:${{ steps.endpoint.outputs.listen_port }}/postgres"]
    - id: promote
      kind: postgres.promote
      needs: [fence]
      with: { dsn: "${{ steps.west.outputs.dsn }}" }
    - id: switch
      kind: traffic.proxy
      needs: [promote]
      with: { proxy: db, upstream: "${{ params.west_ip }}:${{ params.port }}" }
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
    let Some(topology) = Topology::create(&["east", "west"]) else {
        return;
    };
    let (east, west) = (&topology.regions[0], &topology.regions[1]);
    let dir = shared_tempdir();
    let plan = dir.path().join("netns.yaml");
    std::fs::write(&plan, PLAN).unwrap();
    let report = dir.path().join("report.json");
    let param = |name: &str, value: &str| ["--param".to_owned(), format!("{name}={value}")];
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["drill", &plan.display().to_string(), "--report", &report.display().to_string()])
        .args(param("east_netns", &east.ns))
        .args(param("east_ip", &east.ip))
        .args(param("east_link", &east.outer))
        .args(param("west_netns", &west.ns))
        .args(param("west_ip", &west.ip))
        .args(param("network", &topology.network))
        // Each region has its own addresses, so both servers can use the same port.
        .args(param("port", &free_port().to_string()))
        .args(param("workdir", &dir.path().display().to_string()))
        .output()
        .unwrap();
    let link_restored = support::netns::sh(&["sh", "-c", &format!("ip -o link show dev {} | grep -q '<.*,UP'", east.outer)]);
    let east_instance = lifeboat_backup::instance::LocalInstance::new(&dir.path().join("east"), 1).unwrap();
    let east_still_up = east_instance.running_pid().is_some();
    // The server's network namespace is the region's: the same nsfs inode.
    let placed_in = |netns: &str, pid: Option<i32>| {
        use std::os::unix::fs::MetadataExt;
        let inode = |path: String| std::fs::metadata(path).map(|m| m.ino()).ok();
        pid.is_some_and(|p| {
            inode(format!("/proc/{p}/ns/net")).is_some() && inode(format!("/proc/{p}/ns/net")) == inode(format!("/var/run/netns/{netns}"))
        })
    };
    let east_in_its_region = placed_in(&east.ns, east_instance.running_pid());
    support::servers::stop(&east_instance).await;
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(east_still_up, "east was cut off, not killed");
    assert!(east_in_its_region, "the plan started east inside its network namespace");
    assert!(link_restored, "the partition was reverted when the run ended");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(m["rows_lost"], 0);
    let step = |id: &str| m["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["outputs"].clone();
    assert_eq!(step("west")["sync_state"], "sync");
    // West's address exists only inside west's namespace: listening on it proves the placement.
    assert_eq!(
        step("west")["dsn"],
        format!("postgres://postgres@{}:{}/postgres", west.ip, step("east")["port"])
    );
    assert_eq!(step("fence")["action"], "not_local");
    assert_eq!(step("fence")["proxies_cut"], serde_json::json!(["db"]));
}
