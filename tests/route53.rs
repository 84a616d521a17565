//! `traffic.route53` against moto's Route53 server (PyPI `moto[server]`), a test double of
//! the real API: a weighted UPSERT with a health check lands in the zone and reports INSYNC.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

fn moto_server() -> Option<String> {
    if let Ok(path) = std::env::var("LIFEBOAT_TEST_MOTO") {
        return Some(path);
    }
    Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .map(|_| "moto_server".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weighted_upsert_lands_in_the_zone_and_is_insync() {
    let Some(moto) = moto_server() else {
        assert!(std::env::var("CI").is_err(), "CI installs moto (scripts/test.sh)");
        eprintln!("skipped: moto_server is not installed");
        return;
    };
    let port = support::servers::free_port();
    let mut server = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    // moto routes a request to a service by the credential scope of its signature.
    let scope = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=0";
    let http = reqwest::Client::new();
    let mut zone = None;
    for _ in 0..100 {
        let created = http
            .post(format!("{api}/2013-04-01/hostedzone"))
            .header("Authorization", scope)
            .body(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                 <Name>example.test.</Name><CallerReference>lifeboat-test</CallerReference></CreateHostedZoneRequest>",
            )
            .send()
            .await;
        if let Ok(r) = created {
            let body = r.text().await.unwrap();
            let id = body
                .split("<Id>/hostedzone/")
                .nth(1)
                .and_then(|s| s.split('<').next())
                .map(str::to_owned);
            zone = id;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let zone = zone.expect("moto did not create the zone");
    let dir = support::servers::shared_tempdir();
    let plan = dir.path().join("dns.yaml");
    std::fs::write(
        &plan,
        format!(
            "apiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: {{ name: dns }}\nspec:\n  steps:\n    - id: dns\n      kind: traffic.route53\n      with:\n        hosted_zone_id: {zone}\n        name: db.example.test.\n        values: [\"10.1.2.3\"]\n        set_identifier: west\n        weight: 100\n        health_check_id: hc-west\n        endpoint_url: \"{api}\"\n        wait: 30s\n"
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["run", &plan.display().to_string()])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    let records = http
        .get(format!("{api}/2013-04-01/hostedzone/{zone}/rrset"))
        .header("Authorization", scope)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(records.contains("<Value>10.1.2.3</Value>"), "{records}");
    assert!(
        records.contains("<SetIdentifier>west</SetIdentifier>") && records.contains("<Weight>100</Weight>"),
        "{records}"
    );
}
