//! Moving a database's traffic in PgBouncer without dropping client connections: `PAUSE`
//! the database (in-flight transactions finish, new queries wait), rewrite its `host`/`port`
//! in the `[databases]` section, `RELOAD`, `RESUME`. Clients see a pause, not an error.
//! The admin console is driven with `psql` (it only speaks the simple query protocol).

use crate::error::{FailoverError, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct PgBouncerSwitch {
    /// `pgbouncer.ini` of the running PgBouncer.
    pub config: PathBuf,
    /// Admin console: host, port and an `admin_users` user.
    pub admin_host: String,
    pub admin_port: u16,
    pub admin_user: String,
    /// The entry of the `[databases]` section to move.
    pub database: String,
    pub host: String,
    pub port: u16,
    /// The `psql` to use.
    pub psql: PathBuf,
    /// Starts `psql`; see `lifeboat_backup::process`.
    pub spawner: lifeboat_backup::process::Spawner,
}

#[derive(Debug, Clone, Serialize)]
pub struct Switched {
    pub previous: String,
    pub now: String,
    pub paused_ms: u128,
    pub switched_at: DateTime<Utc>,
}

async fn admin(s: &PgBouncerSwitch, command: &str) -> Result<()> {
    let mut psql = tokio::process::Command::new(&s.psql);
    psql.args([
        "-h",
        &s.admin_host,
        "-p",
        &s.admin_port.to_string(),
        "-U",
        &s.admin_user,
        "-d",
        "pgbouncer",
    ])
    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command])
    .env("PGCONNECT_TIMEOUT", "5");
    let out = s
        .spawner
        .output(psql)
        .await
        .map_err(|e| FailoverError::Invalid(format!("running {}: {e}", s.psql.display())))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FailoverError::Postgres {
            message: format!("PgBouncer `{command}`: {}", String::from_utf8_lossy(&out.stderr).trim()),
            retryable: true,
        })
    }
}

/// The `[databases]` entry `database = …` rewritten to `host`/`port`; returns the new text
/// and the entry's old value.
pub fn rewrite(config: &str, database: &str, host: &str, port: u16) -> Result<(String, String)> {
    let mut in_databases = false;
    let mut previous = None;
    let mut out = Vec::new();
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_databases = trimmed.eq_ignore_ascii_case("[databases]");
        }
        let entry = trimmed.split_once('=').map(|(k, v)| (k.trim(), v.trim()));
        match entry {
            Some((name, value)) if in_databases && name == database && previous.is_none() => {
                previous = Some(value.to_owned());
                let mut parts: Vec<String> = value
                    .split_whitespace()
                    .filter(|p| !p.starts_with("host=") && !p.starts_with("port="))
                    .map(str::to_owned)
                    .collect();
                parts.insert(0, format!("port={port}"));
                parts.insert(0, format!("host={host}"));
                out.push(format!("{database} = {}", parts.join(" ")));
            }
            _ => out.push(line.to_owned()),
        }
    }
    let previous = previous.ok_or_else(|| {
        FailoverError::Invalid(format!(
            "the [databases] section has no entry `{database}`; add `{database} = host=… port=… dbname=…`"
        ))
    })?;
    Ok((out.join("\n") + "\n", previous))
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("ini.lifeboat-tmp");
    let io = |e: std::io::Error| FailoverError::Invalid(format!("writing {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(io)?;
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(meta.permissions().mode())).map_err(io)?;
    std::os::unix::fs::chown(
        &tmp,
        Some(std::os::unix::fs::MetadataExt::uid(&meta)),
        Some(std::os::unix::fs::MetadataExt::gid(&meta)),
    )
    .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

pub async fn switch(s: &PgBouncerSwitch) -> Result<Switched> {
    let text = std::fs::read_to_string(&s.config).map_err(|e| FailoverError::Invalid(format!("reading {}: {e}", s.config.display())))?;
    let (rewritten, previous) = rewrite(&text, &s.database, &s.host, s.port)?;
    let started = Instant::now();
    admin(s, &format!("PAUSE {}", s.database)).await?;
    // Whatever happens next, clients must not stay paused.
    let result = async {
        write_atomically(&s.config, &rewritten)?;
        admin(s, "RELOAD").await
    }
    .await;
    if result.is_err() {
        let _ = write_atomically(&s.config, &text);
        let _ = admin(s, "RELOAD").await;
    }
    admin(s, &format!("RESUME {}", s.database)).await?;
    result?;
    Ok(Switched {
        previous,
        now: format!("host={} port={}", s.host, s.port),
        paused_ms: started.elapsed().as_millis(),
        switched_at: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rewrites_only_the_named_entry_of_the_databases_section() {
        let ini = "[databases]\napp = host=10.0.0.1 port=5432 dbname=app\nother = host=10.0.0.9\n[pgbouncer]\napp = not-this\n";
        let (out, previous) = super::rewrite(ini, "app", "127.0.0.1", 6000).unwrap();
        assert_eq!(previous, "host=10.0.0.1 port=5432 dbname=app");
        assert!(out.contains("app = host=127.0.0.1 port=6000 dbname=app\n"));
        assert!(out.contains("other = host=10.0.0.9\n") && out.contains("app = not-this"));
        assert!(super::rewrite(ini, "missing", "h", 1).is_err());
    }
}
