//! Headless Chromium for the browser tests: Debian's `chromium` driven through its
//! `chromedriver` (WebDriver) with fantoccini. Each test starts its own chromedriver on a free
//! loopback port and a fresh Chromium profile in a temp folder; `close()` ends both, and a
//! `Browser` dropped without it (a failed test) still kills them. Screenshots are kept only
//! when `LIFEBOAT_SCREENSHOTS` names a folder, for looking at what a person would see.

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "install Debian's chromium and chromium-driver (scripts/test.sh does)";

/// A WebDriver session on a headless Chromium of its own.
pub struct Browser {
    pub client: Client,
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a fresh headless Chromium session
    /// (1280x900 window). Headless Chromium still keeps room for its window's toolbars, so the
    /// page's viewport, and so a screenshot, is 1280x757.
    pub async fn start() -> Browser {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(std::path::Path::new(path).exists(), "{path} is missing: {INSTALL_HINT}");
        }
        let mut driver = Driver::spawn();
        driver.wait_ready().await;

        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities(&driver))
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}\n{}", driver.log_text()));
        Browser { client, driver }
    }

    /// Saves a PNG screenshot of the current page to `$LIFEBOAT_SCREENSHOTS/<name>.png` when
    /// that env var is set (creating the folder); does nothing otherwise.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("LIFEBOAT_SCREENSHOTS") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Closes the session and stops chromedriver (and so Chromium).
    pub async fn close(self) {
        // Ending the session lets chromedriver quit Chromium in an orderly way; dropping `self`
        // then kills chromedriver and whatever is left of its process group. The client is a
        // handle, so closing a clone ends the one session they share.
        if let Err(e) = self.client.clone().close().await {
            eprintln!("note: ending the browser session: {e}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Nothing here may panic: this also runs while a failed test unwinds.
        self.driver.stop();
    }
}

/// The capabilities of a new session: Debian's Chromium, headless, in a sandbox that runs as
/// root (so no Chromium sandbox) and has no network beyond loopback (so nothing that phones
/// home or updates itself).
fn capabilities(driver: &Driver) -> Capabilities {
    let profile = driver.dir.path().join("profile");
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=1280,900".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        // WebDriver's default page-load limit is 300 s; a page of a loopback server that takes
        // longer than 30 s is a failure worth reporting sooner.
        "timeouts": { "pageLoad": 30_000, "script": 30_000 },
    });
    match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// chromedriver as a child process, leading a process group of its own so that the Chromium
/// processes it starts can be killed with it.
struct Driver {
    child: Child,
    port: u16,
    /// Holds chromedriver's log and Chromium's profile; removed after both are stopped.
    dir: tempfile::TempDir,
    stopped: bool,
}

impl Driver {
    fn spawn() -> Driver {
        let dir = tempfile::Builder::new().prefix("lifeboat-browser-").tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).unwrap();
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}: {INSTALL_HINT}"));
        Driver {
            child,
            port,
            dir,
            stopped: false,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// Waits until chromedriver says it is ready for new sessions (30 s at most).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if status_ready(self.port).unwrap_or(false) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited with {status} before it was ready: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready on port {} after 30 s: {}",
                self.port,
                self.log_text()
            );
            // An async sleep, so that servers the test runs on the same runtime keep serving.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills chromedriver's whole process group (Chromium included) and reaps chromedriver.
    fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // The group's id is chromedriver's pid, which stays reserved until it is reaped below.
        // Chromium's crash handlers leave the group (they start sessions of their own) but exit
        // by themselves once the browser they watch is gone.
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Also covers a `Browser::start` that panics before the `Browser` exists.
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether chromedriver's `GET /status` answers `"ready": true`.
fn status_ready(port: u16) -> std::io::Result<bool> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    // chromedriver refuses HTTP/1.0 and keeps the connection open whatever the request says,
    // so the body is read by its Content-Length rather than to the end of the stream.
    write!(s, "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut reader = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(status["value"]["ready"] == true)
}
