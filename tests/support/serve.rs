//! `lifeboat serve` as a real child process for the service tests: its configuration
//! written to a temp folder, its port free on loopback, killed when dropped.

use super::servers::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// API tokens every test service accepts: `admin` (all scopes), `reader` (read only),
/// `approver` (read + approve).
pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
pub const READER_TOKEN: &str = "reader-token-0123456789abcdef";
pub const APPROVER_TOKEN: &str = "approver-token-0123456789abcdef";
pub const AM_TOKEN: &str = "alertmanager-token-0123456789";

/// The tokens section of a test configuration.
pub const TOKENS: &str = "tokens:
  - { name: admin, token_env: T_ADMIN, scopes: [read, run, approve, admin] }
  - { name: reader, token_env: T_READER, scopes: [read] }
  - { name: approver, token_env: T_APPROVER, scopes: [read, approve] }
";

/// A plan that sleeps `ms` milliseconds in each of two steps.
pub fn sleepy_plan(name: &str, ms: u64) -> String {
    format!(
        "apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata:
  name: {name}
spec:
  params:
    service:
      type: string
      default: none
  steps:
    - id: first
      kind: sleep
      with: {{ duration: {ms}ms }}
    - id: second
      kind: sleep
      needs: [first]
      with: {{ duration: {ms}ms }}
"
    )
}

/// Debian's libfaketime (package `libfaketime`, installed with `faketime`).
pub const FAKETIME_LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A folder with `serve.yaml` (body given, `listen` and tokens added) and `plans/`.
pub struct ServeDir {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl ServeDir {
    pub fn new(config_body: &str, plans: &[(&str, String)]) -> ServeDir {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::create_dir(dir.path().join("plans")).unwrap();
        for (file, text) in plans {
            std::fs::write(dir.path().join("plans").join(file), text).unwrap();
        }
        std::fs::write(
            dir.path().join("serve.yaml"),
            format!("listen: 127.0.0.1:{port}\nplans: [plans]\n{TOKENS}{config_body}"),
        )
        .unwrap();
        ServeDir { dir, port }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("serve.yaml")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A running `lifeboat serve`.
pub struct Serve {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Serve {
    /// Starts a replica on `state` listening on `port`, and waits until it answers.
    pub fn start(config: &Path, state: &str, port: u16, log: PathBuf, extra_env: &[(&str, &str)]) -> Serve {
        Serve::start_with_clock(config, state, port, log, extra_env, None)
    }

    /// Starts a replica whose clock is off by `skew` (e.g. `+2h`), through libfaketime.
    pub fn start_with_clock(config: &Path, state: &str, port: u16, log: PathBuf, extra_env: &[(&str, &str)], skew: Option<&str>) -> Serve {
        let args = ["serve".to_owned(), "--config".to_owned(), config.display().to_string()];
        Serve::start_command(&args, Some(state), port, log, extra_env, skew)
    }

    /// Starts `lifeboat [--state <state>] <args> --listen 127.0.0.1:<port>` (`serve` or
    /// `operator run`) and waits until it answers. Without `state`, the environment's
    /// `LIFEBOAT_STATE` names the journal.
    pub fn start_command(
        args: &[String],
        state: Option<&str>,
        port: u16,
        log: PathBuf,
        extra_env: &[(&str, &str)],
        skew: Option<&str>,
    ) -> Serve {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        if let Some(offset) = skew {
            // libfaketime preloaded into lifeboat itself: the `faketime` wrapper forks, and
            // killing it would leave the service running.
            command.env("LD_PRELOAD", FAKETIME_LIBRARY).env("FAKETIME", offset);
        }
        command
            .args(state.map(|s| ["--state", s]).into_iter().flatten())
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("T_ADMIN", ADMIN_TOKEN)
            .env("T_READER", READER_TOKEN)
            .env("T_APPROVER", APPROVER_TOKEN)
            .env("T_AM", AM_TOKEN)
            .env("RUST_LOG", "lifeboat=info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start lifeboat serve");
        let mut serve = Serve {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        serve.wait_healthy();
        serve
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "lifeboat serve exited with {status}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if std::net::TcpStream::connect(self.url.trim_start_matches("http://")).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "lifeboat serve did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: no chance to hand anything over.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the graceful stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "lifeboat serve did not stop within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client of the service's API with a token.
pub struct Api {
    pub base: String,
    pub token: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Polls `GET path` until `done` holds, for at most `limit`.
    pub async fn wait_for(&self, path: &str, limit: Duration, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let (_, body) = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never satisfied the condition; last answer:\n{body:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
