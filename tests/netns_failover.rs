//! `plans/region-partition.yaml` on this machine: the plan builds a two-region topology of
//! network namespaces on a bridge, places the primary in `east` and its synchronous standby
//! in `west`, cuts east off the network (its bridge port taken down, the server left
//! running) and fails over; `finally` tears it all down. Needs root (network namespaces);
//! skips cleanly otherwise.

mod support;

use std::process::Command;

use support::servers::{free_port, shared_tempdir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_the_primary_region_off_fails_over_without_losing_a_write() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let tag = format!("t{:04x}", rand::random::<u16>());
    let subnet = format!("10.78.{}", 10 + rand::random::<u8>() % 200);
    let dir = shared_tempdir();
    let report = dir.path().join("report.json");
    let param = |name: &str, value: &str| ["--param".to_owned(), format!("{name}={value}")];
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/region-partition.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["drill", &plan.display().to_string(), "--report", &report.display().to_string()])
        .args(param("tag", &tag))
        .args(param("subnet", &subnet))
        .args(param("port", &free_port().to_string()))
        .args(param("workdir", &dir.path().join("w").display().to_string()))
        .output()
        .unwrap();
    let namespaces = String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned();
    let links = String::from_utf8_lossy(&Command::new("ip").args(["-o", "link", "show"]).output().unwrap().stdout).into_owned();
    if !output.status.success() {
        // Leave nothing behind for the next test, whatever failed.
        for (ns, short) in [("east", "e"), ("west", "w")] {
            support::netns::sh(&["ip", "link", "del", &format!("{tag}{short}o")]);
            support::netns::sh(&["ip", "netns", "del", &format!("{tag}-{ns}")]);
        }
        support::netns::sh(&["ip", "link", "del", &format!("{tag}br")]);
    }
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !namespaces.contains(&tag) && !links.contains(&tag),
        "the plan removed its topology: {namespaces}\n{links}"
    );
    assert!(!dir.path().join("w").exists(), "the plan removed its directory");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(m["passed"], true, "{m}");
    assert_eq!(m["rows_lost"], 0);
    let step = |id: &str| m["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["outputs"].clone();
    // Each region's address exists only inside its namespace: listening on it proves the
    // server was placed there.
    assert_eq!(
        step("east")["dsn"],
        format!("postgres://postgres@{subnet}.2:{}/postgres", step("east")["port"])
    );
    assert_eq!(step("east")["netns"], format!("{tag}-east"));
    assert_eq!(
        step("west")["dsn"],
        format!("postgres://postgres@{subnet}.3:{}/postgres", step("east")["port"])
    );
    assert_eq!(step("west")["sync_state"], "sync");
    assert_eq!(step("partition")["target"], format!("{tag}eo"));
    assert_eq!(step("fence")["action"], "not_local");
    assert_eq!(step("fence")["proxies_cut"], serde_json::json!(["db"]));
    assert_eq!(
        step("stop_east")["stopped"],
        true,
        "east was cut off, not killed: it ran until the end"
    );
}
