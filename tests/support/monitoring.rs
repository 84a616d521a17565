//! Real monitoring servers from Debian's packages for the monitoring tests: Prometheus
//! scraping a service the test controls (examples/service/metrics_app.py), with an alert
//! rule firing into a real Alertmanager. Each test starts its own on free loopback ports;
//! they stop when dropped.

use super::servers::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether Debian's Prometheus and Alertmanager are installed; CI must have them.
pub fn installed() -> bool {
    let found = Path::new("/usr/bin/prometheus").exists() && Path::new("/usr/bin/prometheus-alertmanager").exists();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "CI must test against real Prometheus and Alertmanager: run the suite through scripts/test.sh"
        );
        eprintln!("note: prometheus/prometheus-alertmanager not installed (scripts/test.sh installs them); skipping");
    }
    found
}

/// A child process killed when dropped; its output goes to `log`.
pub struct Server {
    child: Child,
    pub log: PathBuf,
}

impl Server {
    fn spawn(command: &mut Command, log: PathBuf) -> Server {
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Server { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(url: &str, server: &mut Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_ok(url).unwrap_or(false) {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{what} exited with {status}: {}", server.log_text());
        }
        assert!(Instant::now() < deadline, "{what} not ready at {url}: {}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a plain GET of `url` answers 200 (the readiness checks need no more).
fn http_ok(url: &str) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"))
}

/// The example service: Prometheus metrics of requests, a share of them failing.
pub struct App {
    pub port: u16,
    pub pid_file: PathBuf,
    server: Option<Server>,
}

impl App {
    pub fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/service/metrics_app.py")
    }

    pub fn start(dir: &Path, error_ratio: f64) -> App {
        let port = free_port();
        let pid_file = dir.join("service.pid");
        let mut server = Server::spawn(
            Command::new("python3")
                .arg(Self::script())
                .args(["--port", &port.to_string(), "--error-ratio", &error_ratio.to_string()])
                .arg("--pid-file")
                .arg(&pid_file),
            dir.join("app.log"),
        );
        wait_ready(&format!("http://127.0.0.1:{port}/metrics"), &mut server, "the example service");
        App {
            port,
            pid_file,
            server: Some(server),
        }
    }

    /// The shell command a drill's `restart` step runs to start it again, detached.
    pub fn restart_command(&self) -> String {
        format!(
            "setsid -f python3 {} --port {} --pid-file {} >/dev/null 2>&1",
            Self::script().display(),
            self.port,
            self.pid_file.display()
        )
    }

    /// Kills whatever process the pid file names now (a restarted service is not our child).
    pub fn stop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file)
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        self.server.take();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real Alertmanager whose only receiver notifies no one.
pub struct Alertmanager {
    pub url: String,
    _server: Server,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        Alertmanager::start_with(
            "route: { receiver: nobody, group_wait: 0s, group_interval: 1s, repeat_interval: 1h }\nreceivers: [{ name: nobody }]\n",
        )
    }

    /// An Alertmanager with the configuration given (routes and receivers).
    pub fn start_with(config_text: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_text).unwrap();
        let mut server = Server::spawn(
            Command::new("/usr/bin/prometheus-alertmanager")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
            dir.path().join("alertmanager.log"),
        );
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&format!("{url}/-/ready"), &mut server, "Alertmanager");
        Alertmanager {
            url,
            _server: server,
            _dir: dir,
        }
    }

    /// `amtool` against this Alertmanager; its stdout.
    pub fn amtool(&self, args: &[&str]) -> String {
        let out = Command::new("amtool")
            .arg(format!("--alertmanager.url={}", self.url))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "amtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every silence, as JSON, through amtool (`--expired` for the expired ones).
    pub fn silences(&self, expired: bool) -> Vec<serde_json::Value> {
        let mut args = vec!["silence", "query", "-o", "json"];
        if expired {
            args.push("--expired");
        }
        serde_json::from_str(&self.amtool(&args)).unwrap_or_default()
    }
}

/// A real Prometheus scraping `app` every second as job `demo`, with the `ServiceDown`
/// rule firing into `alertmanager`; optionally behind basic auth.
pub struct Prometheus {
    pub url: String,
    _server: Server,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(app_port: u16, alertmanager: Option<&Alertmanager>, basic_auth: Option<(&str, &str)>) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let alerting = alertmanager.map_or(String::new(), |am| {
            format!(
                "alerting:\n  alertmanagers:\n    - static_configs: [{{ targets: [\"{}\"] }}]\n",
                am.url.trim_start_matches("http://")
            )
        });
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nrule_files: [rules.yml]\n{alerting}\
                 scrape_configs:\n  - job_name: demo\n    static_configs: [{{ targets: [\"127.0.0.1:{app_port}\"] }}]\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("rules.yml"),
            "groups:\n  - name: drill\n    rules:\n      - alert: ServiceDown\n        expr: up{job=\"demo\"} == 0\n        labels: { severity: page }\n",
        )
        .unwrap();
        let mut command = Command::new("/usr/bin/prometheus");
        command
            .current_dir(dir.path())
            .arg("--config.file=prometheus.yml")
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let mut ready_url = format!("http://127.0.0.1:{port}/-/ready");
        if let Some((user, password)) = basic_auth {
            let hash = Command::new("python3")
                .args([
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    password,
                ])
                .output()
                .unwrap();
            let hash = String::from_utf8(hash.stdout).unwrap();
            std::fs::write(
                dir.path().join("web.yml"),
                format!("basic_auth_users:\n  {user}: '{}'\n", hash.trim()),
            )
            .unwrap();
            command.arg("--web.config.file=web.yml");
            // The readiness endpoint is behind the same authentication.
            ready_url = format!("http://127.0.0.1:{port}/");
        }
        let mut server = Server::spawn(&mut command, dir.path().join("prometheus.log"));
        if basic_auth.is_some() {
            wait_listening(port, &mut server);
        } else {
            wait_ready(&ready_url, &mut server, "Prometheus");
        }
        Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            _server: server,
            _dir: dir,
        }
    }

    /// Waits until the instant query `query` returns a sample whose value satisfies `ok`.
    pub async fn wait_for(&self, query: &str, ok: impl Fn(f64) -> bool) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer: serde_json::Value = match client
                .post(format!("{}/api/v1/query", self.url))
                .form(&[("query", query)])
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            let value = answer["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
            if value.is_some_and(&ok) {
                return;
            }
            assert!(Instant::now() < deadline, "`{query}` never met the wait: {answer}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn wait_listening(port: u16, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("Prometheus exited with {status}: {}", server.log_text());
        }
        assert!(Instant::now() < deadline, "Prometheus did not listen: {}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}
