//! Real servers for the backup tests: a Garage S3 server and PostgreSQL clusters that archive
//! through the lifeboat binary. Each test starts its own on free loopback ports and they stop
//! when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lifeboat_backup::instance::{InitOptions, LocalInstance, StopMode};
use sqlx::{Connection, PgConnection};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A temporary directory the `postgres` user can reach (tests run as root). Kept after the
/// test when `LIFEBOAT_TEST_KEEP` is set, for post-mortems.
pub fn shared_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-test-")
        .disable_cleanup(std::env::var_os("LIFEBOAT_TEST_KEEP").is_some())
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// The lifeboat binary, copied where the `postgres` user can execute it (the build tree may
/// not be reachable for it).
pub fn lifeboat_for_postgres(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let target = dir.join("lifeboat");
    if !target.exists() {
        std::fs::copy(env!("CARGO_BIN_EXE_lifeboat"), &target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    target
}

fn garage_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LIFEBOAT_TEST_GARAGE") {
        return Some(PathBuf::from(path));
    }
    let cached = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/lifeboat/tools/bin/garage");
    cached.is_file().then_some(cached)
}

pub struct Garage {
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
    pub s3_port: u16,
    pub key_id: String,
    pub secret: String,
}

impl Garage {
    /// Starts a single-node Garage with a key and a bucket, or returns None (skip) outside CI
    /// when Garage is not installed.
    pub fn start() -> Option<Garage> {
        let Some(binary) = garage_binary() else {
            assert!(
                std::env::var("CI").is_err(),
                "CI must test against a real S3 server: run the suite through scripts/test.sh"
            );
            eprintln!("note: Garage not installed (scripts/test.sh installs it); skipping the S3 variant");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let mut garage = Garage {
            dir,
            binary,
            child: None,
            s3_port: 0,
            key_id: String::new(),
            secret: String::new(),
        };
        // Free ports are only free when picked: another test's server may take one before
        // Garage binds it, and Garage then exits. Such a start is retried on new ports.
        let started = (0..5).any(|_| {
            garage.configure(free_port(), free_port());
            garage.run_server();
            garage.stays_up()
        });
        assert!(
            started,
            "Garage did not start; see {}",
            garage.dir.path().join("server.log").display()
        );
        let node = garage.admin(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap().to_string();
        garage.admin(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.admin(&["layout", "apply", "--version", "1"]);
        garage.admin(&["key", "create", "lifeboat"]);
        garage.admin(&["bucket", "create", "lifeboat"]);
        garage.admin(&["bucket", "allow", "--read", "--write", "--owner", "lifeboat", "--key", "lifeboat"]);
        let info = garage.admin(&["key", "info", "lifeboat", "--show-secret"]);
        let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string();
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        Some(garage)
    }

    fn configure(&mut self, s3_port: u16, rpc_port: u16) {
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        std::fs::write(
            self.dir.path().join("garage.toml"),
            format!(
                "metadata_dir = \"{0}/meta\"\ndata_dir = \"{0}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_public_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.garage.localhost\"\n",
                self.dir.path().display()
            ),
        )
        .unwrap();
        self.s3_port = s3_port;
    }

    fn run_server(&mut self) {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .arg("server")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Ready is the admin RPC answering with the server process still alive: the S3 port
    /// answering proves nothing when the port was taken by someone else.
    fn stays_up(&mut self) -> bool {
        for _ in 0..100 {
            if !self.alive() {
                self.stop();
                return false;
            }
            if self.try_admin(&["status"]).is_ok() {
                std::thread::sleep(Duration::from_millis(300));
                if self.alive() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
        false
    }

    fn try_admin(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .output()
            .unwrap();
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    fn admin(&self, args: &[&str]) -> String {
        let mut attempt = 0;
        loop {
            match self.try_admin(args) {
                Ok(out) => return out,
                Err(err) => assert!(attempt < 50, "garage {args:?}: {err}"),
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn repo_url(&self, prefix: &str) -> String {
        format!("s3://lifeboat/{prefix}?endpoint=http://127.0.0.1:{}&region=garage", self.s3_port)
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
        ]
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the server and waits until it stays up: a restarted Garage can open its S3
    /// port and then exit (its RPC port still held by the killed process), so readiness is
    /// its admin RPC answering with the process still alive.
    pub fn restart(&mut self) {
        self.stop();
        for _ in 0..10 {
            self.run_server();
            if self.stays_up() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "Garage did not stay up after a restart; see {}",
            self.dir.path().join("server.log").display()
        );
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a test keeps its repository: a local directory, or a prefix in a Garage bucket.
pub struct TestRepo {
    pub url: String,
    pub env: Vec<(String, String)>,
    pub garage: Option<Garage>,
    pub kind: &'static str,
}

impl TestRepo {
    pub fn local(dir: &Path) -> TestRepo {
        let root = dir.join("repo");
        std::fs::create_dir_all(&root).unwrap();
        lifeboat_backup::instance::ServerUser::chown_tree(lifeboat_backup::instance::ServerUser::current_or_postgres().unwrap(), &root)
            .unwrap();
        TestRepo {
            url: format!("file://{}", root.display()),
            env: Vec::new(),
            garage: None,
            kind: "local",
        }
    }

    pub fn s3() -> Option<TestRepo> {
        let garage = Garage::start()?;
        Some(TestRepo {
            url: garage.repo_url("pitr"),
            env: garage.env(),
            garage: Some(garage),
            kind: "s3",
        })
    }

    /// Opens the store with the repository's credentials in this process's environment.
    pub async fn store(&self) -> lifeboat_backup::store::Store {
        for (key, value) in &self.env {
            // SAFETY: tests set the same credentials before any S3 client reads them; each
            // nextest test runs in its own process.
            unsafe { std::env::set_var(key, value) };
        }
        lifeboat_backup::store::open(&lifeboat_backup::RepoUrl::parse(&self.url).unwrap())
            .await
            .unwrap()
    }
}

/// A PostgreSQL primary archiving into `repo` through the lifeboat binary.
pub struct Primary {
    pub instance: LocalInstance,
}

impl Primary {
    pub async fn start(dir: &Path, repo: &TestRepo) -> Primary {
        let lifeboat = lifeboat_for_postgres(dir);
        let mut instance = LocalInstance::new(&dir.join("primary"), free_port(), lifeboat_backup::process::Spawner::unrecorded()).unwrap();
        instance.env = repo.env.clone();
        let options = InitOptions {
            archive_command: Some(format!("'{}' pg wal-push --repo '{}' %p", lifeboat.display(), repo.url)),
            ..InitOptions::default()
        };
        instance.init(&options).await.unwrap();
        instance.start().await.unwrap();
        Primary { instance }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.instance.dsn("postgres")).await.unwrap()
    }

    /// Switches WAL and waits until everything written so far is archived.
    pub async fn archive_all(&self) {
        let mut conn = self.connect().await;
        let segment: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        for _ in 0..600 {
            let (archived, failed): (Option<String>, Option<String>) =
                sqlx::query_as("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            if archived.as_deref() >= Some(segment.as_str()) {
                return;
            }
            let _ = failed;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "segment {segment} was not archived within 30 s; see {}",
            self.instance.log_file().display()
        );
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        stop_blocking(&self.instance);
    }
}

/// Stops a server from a destructor (no async there).
pub fn stop_blocking(instance: &LocalInstance) {
    if instance.running_pid().is_some() {
        let mut command = Command::new(instance.bins.tool("pg_ctl"));
        command.arg("stop").arg("-D").arg(instance.pgdata()).args(["-m", "immediate", "-w"]);
        if let Some(user) = instance.user {
            use std::os::unix::process::CommandExt;
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

pub async fn stop(instance: &LocalInstance) {
    instance.stop(StopMode::Fast).await.unwrap();
}
