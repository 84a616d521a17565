//! Throwaway PostgreSQL instances in a directory on a port: initdb, start, stop. Drills
//! restore into them and tests run against them. PostgreSQL refuses to run as root, so when
//! lifeboat is root the server's commands run as the `postgres` user and its files are owned
//! by it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::error::{BackupError, Result};
use crate::process::Spawner;

/// Where PostgreSQL's server binaries are: `LIFEBOAT_PG_BIN`, else the newest Debian
/// `/usr/lib/postgresql/N/bin`, else `pg_config --bindir`'s answer via PATH.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub dir: PathBuf,
}

impl PgBinaries {
    pub fn locate() -> Result<PgBinaries> {
        if let Some(dir) = std::env::var_os("LIFEBOAT_PG_BIN") {
            let dir = PathBuf::from(dir);
            if dir.join("postgres").is_file() {
                return Ok(PgBinaries { dir });
            }
            return Err(BackupError::invalid(format!(
                "LIFEBOAT_PG_BIN={} has no `postgres` binary",
                dir.display()
            )));
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .filter(|(_, bin): &(u32, PathBuf)| bin.join("postgres").is_file())
            .collect();
        versions.sort();
        if let Some((_, dir)) = versions.pop() {
            return Ok(PgBinaries { dir });
        }
        let output = std::process::Command::new("pg_config").arg("--bindir").output();
        if let Ok(output) = output {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if dir.join("postgres").is_file() {
                return Ok(PgBinaries { dir });
            }
        }
        Err(BackupError::invalid(
            "PostgreSQL server binaries not found: install Debian's postgresql package or set LIFEBOAT_PG_BIN to the directory holding `postgres`",
        ))
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The OS user PostgreSQL runs as: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone, Copy)]
pub struct ServerUser {
    pub uid: nix::unistd::Uid,
    pub gid: nix::unistd::Gid,
}

impl ServerUser {
    pub fn current_or_postgres() -> Result<Option<ServerUser>> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let user = nix::unistd::User::from_name("postgres").ok().flatten().ok_or_else(|| {
            BackupError::invalid("running as root, but PostgreSQL refuses to run as root and there is no `postgres` user to run it as; create one (Debian's postgresql package does)")
        })?;
        Ok(Some(ServerUser {
            uid: user.uid,
            gid: user.gid,
        }))
    }

    pub fn command(user: Option<ServerUser>, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some(user) = user {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            command.env("HOME", "/var/lib/postgresql");
        }
        command.stdin(std::process::Stdio::null()).kill_on_drop(false);
        command
    }

    /// Gives `path` and everything below it to the server user.
    pub fn chown_tree(user: Option<ServerUser>, path: &Path) -> Result<()> {
        let Some(user) = user else { return Ok(()) };
        fn walk(path: &Path, user: ServerUser) -> std::io::Result<()> {
            std::os::unix::fs::lchown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
            if std::fs::symlink_metadata(path)?.is_dir() {
                for entry in std::fs::read_dir(path)? {
                    walk(&entry?.path(), user)?;
                }
            }
            Ok(())
        }
        walk(path, user).map_err(BackupError::io(path))
    }
}

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub superuser: String,
    pub data_checksums: bool,
    /// When set, WAL archiving is on with this `archive_command`.
    pub archive_command: Option<String>,
    /// Extra `postgresql.conf` settings, written verbatim as `name = 'value'`.
    pub settings: Vec<(String, String)>,
    /// Networks (CIDR) whose clients and standbys are trusted, besides loopback.
    pub trusted_networks: Vec<String>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            superuser: "postgres".into(),
            data_checksums: true,
            archive_command: None,
            settings: Vec::new(),
            trusted_networks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Fast,
    Immediate,
}

/// A PostgreSQL cluster with its data directory, socket directory and log file. Made by
/// [`LocalInstance::new`] it lives at `<dir>/data`, `<dir>/run`, `<dir>/postgres.log`.
#[derive(Debug, Clone)]
pub struct LocalInstance {
    pub dir: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    pub port: u16,
    pub superuser: String,
    pub bins: PgBinaries,
    pub user: Option<ServerUser>,
    /// Environment for the server, e.g. the object store's credentials its
    /// `archive_command` / `restore_command` need; never written to any file.
    pub env: Vec<(String, String)>,
    /// Starts the server's tools (`initdb`, `pg_ctl`, …); see [`crate::process`].
    pub spawner: Spawner,
    placement: Placement,
}

/// Where a server sits on the network: the address it listens on and is reached at, and
/// the network namespace (`ip netns`) it runs in — a "region" of a local topology. Kept in
/// a file beside the data directory, so that every later use of the instance (a restart as
/// a standby, a switchover, a reprotect) starts it in the same place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    pub host: String,
    pub netns: Option<String>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            host: "127.0.0.1".into(),
            netns: None,
        }
    }
}

pub fn quote_conf(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl LocalInstance {
    pub fn new(dir: &Path, port: u16, spawner: Spawner) -> Result<LocalInstance> {
        Self::with_layout(dir, dir.join("data"), dir.join("run"), dir.join("postgres.log"), port, spawner)
    }

    /// An instance for an existing data directory: the layout of [`LocalInstance::new`] when
    /// it is called `data`, otherwise `<pgdata>.run` and `<pgdata>.log` beside it.
    pub fn for_pgdata(pgdata: &Path, port: u16, spawner: Spawner) -> Result<LocalInstance> {
        match (pgdata.file_name().and_then(|n| n.to_str()), pgdata.parent()) {
            (Some("data"), Some(dir)) => Self::new(dir, port, spawner),
            _ => {
                let dir = pgdata.parent().unwrap_or(Path::new("/"));
                Self::with_layout(
                    dir,
                    pgdata.to_path_buf(),
                    sibling(pgdata, ".run"),
                    sibling(pgdata, ".log"),
                    port,
                    spawner,
                )
            }
        }
    }

    fn with_layout(
        dir: &Path,
        pgdata: PathBuf,
        socket_dir: PathBuf,
        log_file: PathBuf,
        port: u16,
        spawner: Spawner,
    ) -> Result<LocalInstance> {
        let placement_file = sibling(&pgdata, ".placement.json");
        let placement = match std::fs::read(&placement_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                BackupError::invalid(format!(
                    "{}: {e}; remove it to place the server on 127.0.0.1",
                    placement_file.display()
                ))
            })?,
            Err(_) => Placement::default(),
        };
        Ok(LocalInstance {
            dir: dir.to_path_buf(),
            pgdata,
            socket_dir,
            log_file,
            port,
            superuser: "postgres".into(),
            bins: PgBinaries::locate()?,
            user: ServerUser::current_or_postgres()?,
            env: Vec::new(),
            spawner,
            placement,
        })
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Places the server (before it is created or started) and records the placement
    /// beside its data directory.
    pub fn set_placement(&mut self, placement: Placement) -> Result<()> {
        if placement.host.trim().is_empty() || placement.netns.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(BackupError::invalid("placement: `host` and `netns` must not be empty"));
        }
        let file = sibling(&self.pgdata, ".placement.json");
        if placement == Placement::default() {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(BackupError::io(&file)(e)),
                _ => {}
            }
        } else {
            std::fs::create_dir_all(&self.dir).map_err(BackupError::io(&self.dir))?;
            let json = serde_json::to_vec_pretty(&placement).unwrap_or_default();
            std::fs::write(&file, json).map_err(BackupError::io(&file))?;
        }
        self.placement = placement;
        Ok(())
    }

    pub fn pgdata(&self) -> PathBuf {
        self.pgdata.clone()
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.socket_dir.clone()
    }

    pub fn log_file(&self) -> PathBuf {
        self.log_file.clone()
    }

    pub fn dsn(&self, database: &str) -> String {
        format!("postgres://{}@{}:{}/{database}", self.superuser, self.placement.host, self.port)
    }

    /// Settings every lifeboat-managed instance gets so it is reachable where we expect it.
    pub fn placement_settings(&self) -> Vec<(String, String)> {
        vec![
            ("port".into(), self.port.to_string()),
            ("listen_addresses".into(), self.placement.host.clone()),
            ("unix_socket_directories".into(), self.socket_dir().display().to_string()),
        ]
    }

    /// Creates the cluster unless it already exists (so a resumed step does not fail).
    pub async fn init(&mut self, options: &InitOptions) -> Result<()> {
        self.superuser = options.superuser.clone();
        let pgdata = self.pgdata();
        if pgdata.join("PG_VERSION").is_file() {
            return Ok(());
        }
        for dir in [&self.dir, &self.socket_dir()] {
            std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
        }
        if pgdata.exists() {
            std::fs::remove_dir_all(&pgdata).map_err(BackupError::io(&pgdata))?;
        }
        ServerUser::chown_tree(self.user, &self.dir)?;
        let mut command = ServerUser::command(self.user, &self.bins.tool("initdb"));
        command
            .arg("-D")
            .arg(&pgdata)
            .args(["-U", &options.superuser, "--auth=trust", "-E", "UTF8", "--locale=C"]);
        if options.data_checksums {
            command.arg("--data-checksums");
        }
        run_checked(&self.spawner, command, "initdb").await?;
        let mut settings = self.placement_settings();
        settings.push(("wal_level".into(), "replica".into()));
        settings.push(("max_wal_senders".into(), "10".into()));
        if let Some(archive) = &options.archive_command {
            settings.push(("archive_mode".into(), "on".into()));
            settings.push(("archive_command".into(), archive.clone()));
        }
        settings.extend(options.settings.iter().cloned());
        append_settings(&pgdata.join("postgresql.conf"), "written by lifeboat", &settings)?;
        trust_networks(&pgdata, &options.trusted_networks)
    }

    /// A postmaster killed by SIGKILL can linger as a zombie until init reaps it, and
    /// PostgreSQL refuses to start while the pid in its lock file exists at all. A zombie
    /// holds no shared memory and serves nothing, so its lock file is removed.
    pub fn clear_dead_pid_file(&self) -> Result<()> {
        let mut lock_files = vec![self.pgdata().join("postmaster.pid")];
        if let Ok(entries) = std::fs::read_dir(self.socket_dir()) {
            lock_files.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".s.PGSQL.") && n.ends_with(".lock"))
            }));
        }
        for file in lock_files {
            let pid = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
            if let Some(pid) = pid
                && process_state(pid) == Some('Z')
            {
                tracing::warn!(pid, file = %file.display(), "removing the lock file of a dead (zombie) postmaster");
                std::fs::remove_file(&file).map_err(BackupError::io(&file))?;
            }
        }
        Ok(())
    }

    pub fn running_pid(&self) -> Option<i32> {
        postmaster_pid(&self.pgdata())
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) -> Result<()> {
        if self.running_pid().is_some() {
            return Ok(());
        }
        self.clear_dead_pid_file()?;
        self.spawn().await?;
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_secs(120);
        loop {
            if sqlx_connect(&self.dsn("postgres")).await.is_ok() {
                return Ok(());
            }
            // pg_ctl returns before the postmaster writes its pid file; give it a moment.
            if self.running_pid().is_none() && started.elapsed() > Duration::from_secs(3) {
                return Err(BackupError::Postgres {
                    message: format!(
                        "server in {} exited during start-up: {}",
                        self.pgdata().display(),
                        log_tail(&self.log_file(), 10)
                    ),
                    retryable: false,
                });
            }
            if tokio::time::Instant::now() > deadline {
                return Err(BackupError::Postgres {
                    message: format!("server on port {} not ready after 120 s", self.port),
                    retryable: true,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A command for one of the server's tools, run as the server user.
    pub fn tool(&self, name: &str) -> Command {
        ServerUser::command(self.user, &self.bins.tool(name))
    }

    /// Launches the postmaster without waiting for it to accept connections (recovery may take long).
    pub async fn spawn(&self) -> Result<()> {
        std::fs::create_dir_all(self.socket_dir()).map_err(BackupError::io(self.socket_dir()))?;
        ServerUser::chown_tree(self.user, &self.socket_dir())?;
        if !self.log_file().exists() {
            std::fs::write(self.log_file(), b"").map_err(BackupError::io(self.log_file()))?;
            ServerUser::chown_tree(self.user, &self.log_file())?;
        }
        let mut command = match &self.placement.netns {
            None => ServerUser::command(self.user, &self.bins.tool("pg_ctl")),
            // Entering a namespace needs root, so the switch to the server user comes after.
            Some(netns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", netns]);
                if let Some(user) = self.user {
                    c.arg("setpriv")
                        .arg(format!("--reuid={}", user.uid))
                        .arg(format!("--regid={}", user.gid))
                        .args(["--init-groups", "--"])
                        .env("HOME", "/var/lib/postgresql");
                }
                c.arg(self.bins.tool("pg_ctl")).stdin(std::process::Stdio::null());
                c
            }
        };
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
            .arg("start")
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(self.log_file())
            .arg("-W");
        run_checked(&self.spawner, command, "pg_ctl start").await
    }

    pub async fn stop(&self, mode: StopMode) -> Result<()> {
        if self.running_pid().is_none() {
            return Ok(());
        }
        let mut command = ServerUser::command(self.user, &self.bins.tool("pg_ctl"));
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        command
            .arg("stop")
            .arg("-D")
            .arg(self.pgdata())
            .args(["-m", mode, "-w", "-t", "60"]);
        run_checked(&self.spawner, command, "pg_ctl stop").await
    }
}

/// Appends `host` lines trusting `networks` (clients and replication) to `pg_hba.conf`.
fn trust_networks(pgdata: &Path, networks: &[String]) -> Result<()> {
    if networks.is_empty() {
        return Ok(());
    }
    let mut lines = String::from("\n# written by lifeboat: trusted networks\n");
    for network in networks {
        if network.parse::<std::net::IpAddr>().is_err()
            && !network
                .split_once('/')
                .is_some_and(|(ip, bits)| ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok())
        {
            return Err(BackupError::invalid(format!(
                "trusted network `{network}` is not an address or CIDR such as 10.77.0.0/16"
            )));
        }
        lines.push_str(&format!("host all all {network} trust\nhost replication all {network} trust\n"));
    }
    let hba = pgdata.join("pg_hba.conf");
    let mut file = std::fs::OpenOptions::new().append(true).open(&hba).map_err(BackupError::io(&hba))?;
    std::io::Write::write_all(&mut file, lines.as_bytes()).map_err(BackupError::io(&hba))
}

async fn sqlx_connect(dsn: &str) -> std::result::Result<sqlx::PgConnection, sqlx::Error> {
    use sqlx::Connection;
    sqlx::PgConnection::connect(dsn).await
}

/// `path` with `suffix` appended to its last component: where lifeboat keeps things that
/// belong to a data directory but must not be inside it (`/srv/db` → `/srv/db.log`).
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `dir` exists and has anything in it.
pub fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()).unwrap_or(false)
}

/// The live postmaster's pid from `postmaster.pid`, if that process still exists.
pub fn postmaster_pid(pgdata: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    // A killed postmaster stays a zombie until init reaps it; it serves nothing.
    (!matches!(process_state(pid), Some('Z' | 'X'))).then_some(pid)
}

/// The state letter of `/proc/<pid>/stat` (R, S, D, Z, T…).
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next())
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Appends `name = 'value'` lines under a comment to a PostgreSQL configuration file.
pub fn append_settings(conf: &Path, comment: &str, settings: &[(String, String)]) -> Result<()> {
    let text: String = settings.iter().map(|(k, v)| format!("{k} = {}\n", quote_conf(v))).collect();
    append(conf, &format!("\n# {comment}\n{text}"))
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(BackupError::io(path))?;
    file.write_all(text.as_bytes()).map_err(BackupError::io(path))
}

/// Runs one of PostgreSQL's tools (or pgBackRest) to its end; a non-zero exit is an error
/// quoting its standard error.
pub async fn run_checked(spawner: &Spawner, command: Command, what: &str) -> Result<()> {
    let output = spawner
        .output(command)
        .await
        .map_err(|e| BackupError::invalid(format!("cannot run {what}: {e}")))?;
    if !output.status.success() {
        return Err(BackupError::Postgres {
            message: format!(
                "{what} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            retryable: false,
        });
    }
    Ok(())
}

/// The lifeboat executable as the server user can run it (for `archive_command` and
/// `restore_command`). As root the server runs as `postgres`, which may not be able to reach
/// the build or install directory, so the binary is copied into `dir` (which it owns).
pub fn executable_for_server(exe: &Path, dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let Some(user) = ServerUser::current_or_postgres()? else {
        return Ok(exe.to_path_buf());
    };
    std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
    let copy = dir.join("lifeboat");
    let same = std::fs::metadata(&copy)
        .ok()
        .zip(std::fs::metadata(exe).ok())
        .is_some_and(|(a, b)| a.len() == b.len());
    if !same {
        let temp = dir.join(".lifeboat.tmp");
        std::fs::copy(exe, &temp).map_err(BackupError::io(&temp))?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755)).map_err(BackupError::io(&temp))?;
        std::fs::rename(&temp, &copy).map_err(BackupError::io(&copy))?;
    }
    ServerUser::chown_tree(Some(user), &copy)?;
    Ok(copy)
}
