//! A rollout judged as `kubectl rollout status` judges it: the controller has observed the
//! newest generation, and updated, ready and available replicas have caught up.

use serde_json::Value;

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `Ok(Some(what))` when the rollout is complete, `Ok(None)` while it goes on, `Err` when it
/// failed (its progress deadline passed) or cannot be judged.
pub fn judge(object: &Value) -> Result<Option<String>, String> {
    let (spec, status, meta) = (&object["spec"], &object["status"], &object["metadata"]);
    let generation = int(&meta["generation"]);
    let observed = int(&status["observedGeneration"]);
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    match object["kind"].as_str() {
        Some("Deployment") => {
            if generation > observed {
                return Ok(None);
            }
            let failed = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
            if failed {
                return Err(format!("deployment {} exceeded its progress deadline", meta["name"]));
            }
            let updated = int(&status["updatedReplicas"]);
            if updated < replicas || int(&status["replicas"]) > updated || int(&status["availableReplicas"]) < updated {
                return Ok(None);
            }
            Ok(Some(format!("{updated} of {replicas} updated replicas available")))
        }
        Some("StatefulSet") => {
            if spec["updateStrategy"]["type"].as_str().is_some_and(|t| t != "RollingUpdate") {
                return Err("rollout status is only available for the RollingUpdate strategy".into());
            }
            if observed == 0 || generation > observed {
                return Ok(None);
            }
            let ready = int(&status["readyReplicas"]);
            if ready < replicas {
                return Ok(None);
            }
            if let Some(partition) = spec["updateStrategy"]["rollingUpdate"]["partition"].as_i64().filter(|p| *p > 0) {
                let done = int(&status["updatedReplicas"]) >= replicas - partition;
                return Ok(done.then(|| format!("partitioned roll out complete: {} new pods", int(&status["updatedReplicas"]))));
            }
            let done = status["updateRevision"] == status["currentRevision"];
            Ok(done.then(|| format!("{ready} of {replicas} replicas ready at revision {}", status["updateRevision"])))
        }
        other => Err(format!(
            "a rollout of {} cannot be judged: use k8s.wait",
            other.unwrap_or("this kind")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::judge;
    use serde_json::json;

    #[test]
    fn deployments_wait_for_generation_updated_and_available() {
        let mut d = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(judge(&d), Ok(None), "the new generation is not observed yet");
        d["status"]["observedGeneration"] = 2.into();
        d["status"]["availableReplicas"] = 1.into();
        assert_eq!(judge(&d), Ok(None));
        d["status"]["availableReplicas"] = 2.into();
        assert!(judge(&d).unwrap().is_some());
        d["status"]["conditions"] = json!([{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]);
        assert!(judge(&d).is_err());
    }

    #[test]
    fn statefulsets_wait_for_ready_replicas_and_one_revision() {
        let mut s = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}},
            "status": {"observedGeneration": 1, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}});
        assert_eq!(judge(&s), Ok(None));
        s["status"]["currentRevision"] = "b".into();
        assert!(judge(&s).unwrap().is_some());
    }
}
