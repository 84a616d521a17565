//! Point-in-time restore. Recovery never happens in place: lifeboat unpacks a base backup
//! into a new (or, with `delta`, a matching) directory, checks that the WAL needed to reach
//! the target is all archived, writes the recovery settings, and optionally starts the server
//! and waits until it has reached the target and been promoted.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};

use crate::archive::{WalArchive, ranges};
use crate::codec;
use crate::error::{BackupError, Result};
use crate::instance::{LocalInstance, ServerUser, log_tail, postmaster_pid};
use crate::manifest::{self, FileEntry, Manifest, Part};
use crate::store::Store;
use crate::wal_name::{Segment, format_lsn};

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Replay every archived WAL segment.
    Latest,
    /// Stop as soon as the backup is consistent.
    Immediate,
    Time(DateTime<Utc>),
    Lsn(u64),
    Name(String),
    Xid(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Latest => write!(f, "latest"),
            Target::Immediate => write!(f, "immediate"),
            Target::Time(t) => write!(f, "time {}", t.to_rfc3339()),
            Target::Lsn(l) => write!(f, "LSN {}", format_lsn(*l)),
            Target::Name(n) => write!(f, "restore point `{n}`"),
            Target::Xid(x) => write!(f, "xid {x}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The repository URL as text, written into `restore_command`.
    pub repo_url: String,
    pub pgdata: PathBuf,
    pub target: Target,
    /// Stop just after the target (true, PostgreSQL's default) or just before it: with an
    /// xid target, `false` restores everything committed before that transaction.
    pub inclusive: bool,
    /// Restore this backup instead of the newest one that can reach the target.
    pub backup: Option<String>,
    /// Reuse files already in `pgdata` whose checksum matches; remove files the backup lacks.
    pub delta: bool,
    pub parallel: usize,
    /// The lifeboat executable PostgreSQL runs as `restore_command`.
    pub lifeboat_exe: PathBuf,
    pub port: Option<u16>,
    pub start: bool,
    /// Database role to connect as when waiting for recovery.
    pub user: String,
    /// Keep WAL archiving on in the restored server (off by default: a scratch copy must not
    /// push a new timeline into the production archive).
    pub keep_archiving: bool,
    pub wait_timeout: Duration,
    /// Environment for the started server (object-store credentials for `restore_command`).
    pub server_env: Vec<(String, String)>,
    /// Starts the server's tools.
    pub spawner: crate::process::Spawner,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    pub backup: String,
    pub target: String,
    pub pgdata: PathBuf,
    pub files_written: usize,
    pub files_reused: usize,
    pub bytes_written: u64,
    pub started: bool,
    pub dsn: Option<String>,
    /// The last WAL position replayed and the commit time of the last transaction replayed.
    pub reached_lsn: Option<String>,
    pub reached_time: Option<DateTime<Utc>>,
    pub timeline: Option<u32>,
    /// Time spent downloading and unpacking the base backup, and in recovery until promotion.
    #[serde(default)]
    pub unpack_ms: u64,
    #[serde(default)]
    pub recovery_ms: u64,
}

impl RestoreReport {
    /// A report of a restore whose files are in place and whose server has not started yet.
    pub fn new(backup: &str, target: &Target, pgdata: &Path) -> RestoreReport {
        RestoreReport {
            backup: backup.to_string(),
            target: target.to_string(),
            pgdata: pgdata.to_path_buf(),
            files_written: 0,
            files_reused: 0,
            bytes_written: 0,
            started: false,
            dsn: None,
            reached_lsn: None,
            reached_time: None,
            timeline: None,
            unpack_ms: 0,
            recovery_ms: 0,
        }
    }

    /// Starts the restored server, waits until it is promoted and records where recovery ended.
    pub async fn start_server(&mut self, instance: &LocalInstance, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        let (lsn, time, timeline) = start_and_wait(instance, timeout).await?;
        self.started = true;
        self.dsn = Some(instance.dsn("postgres"));
        self.reached_lsn = lsn;
        self.reached_time = time;
        self.timeline = Some(timeline);
        self.recovery_ms = started.elapsed().as_millis() as u64;
        Ok(())
    }
}

/// Picks the newest complete backup that can reach `target`.
pub fn choose_backup<'a>(backups: &'a [Manifest], target: &Target, explicit: Option<&str>) -> Result<&'a Manifest> {
    if let Some(id) = explicit {
        return backups.iter().find(|m| m.id == id).ok_or_else(|| {
            BackupError::NotFound(format!(
                "backup {id} is not in the repository (or has no manifest); `lifeboat pg backups` lists them: {}",
                backups.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            ))
        });
    }
    let Some(oldest) = backups.first() else {
        return Err(BackupError::NotFound(
            "the repository has no complete backup; take one with `lifeboat pg backup`".into(),
        ));
    };
    let candidate = match target {
        Target::Time(t) => backups.iter().rev().find(|m| m.stop_time <= *t),
        Target::Lsn(l) => backups.iter().rev().find(|m| m.stop_lsn() <= *l),
        _ => backups.last(),
    };
    candidate.ok_or_else(|| {
        BackupError::Restore(format!(
            "target {target} is older than the oldest backup, which is consistent from {} (LSN {}); the restorable window starts there",
            oldest.stop_time.to_rfc3339(),
            oldest.stop_lsn
        ))
    })
}

/// Checks that the archive holds every segment replay needs from `backup` to `target`, and
/// returns those segments' names in replay order.
pub fn check_wal_for(archive: &WalArchive, backup: &Manifest, target: &Target) -> Result<Vec<String>> {
    let timeline = archive.latest_timeline_from(backup.timeline);
    let start = backup.start_segment().segno;
    let stop = backup.stop_segment().segno;
    let newest = archive.newest_segno(timeline).unwrap_or(start);
    let size = backup.wal_segment_size;
    let end = match target {
        Target::Immediate => stop,
        Target::Lsn(lsn) => {
            let needed = Segment::containing(timeline, *lsn, size).segno;
            if needed > newest {
                return Err(BackupError::Restore(format!(
                    "target {target} is newer than the archive, which ends in segment {}; wait for archiving or pick an earlier target",
                    archive.expected(timeline, newest).name(size)
                )));
            }
            needed
        }
        Target::Time(time) => {
            if let Some(last) = archive.newest_archived_at(timeline)
                && *time > last
            {
                return Err(BackupError::Restore(format!(
                    "target {target} is newer than the archive: its newest segment was archived at {}; \
                     WAL written after that is not in the repository yet",
                    last.to_rfc3339()
                )));
            }
            archive.first_segno_archived_after(timeline, start, *time).unwrap_or(newest)
        }
        Target::Latest | Target::Name(_) | Target::Xid(_) => newest,
    }
    .max(stop);
    let missing = archive.missing(timeline, start, end);
    if !missing.is_empty() {
        return Err(BackupError::Restore(format!(
            "WAL gap: the archive lacks {} needed to replay backup {} to {target}; replay would stop early at the gap. \
             Restore to a target before the gap or put the missing WAL back",
            ranges(&missing, size).join(", "),
            backup.id
        )));
    }
    Ok((start..=end).map(|segno| archive.expected(timeline, segno).name(size)).collect())
}

/// Segments staged into the restore's WAL spool before recovery starts (1 GiB of 16 MiB
/// segments); later ones are prefetched during replay.
const PRESTAGE_SEGMENTS: usize = 64;

pub async fn restore(store: &Store, options: &RestoreOptions) -> Result<RestoreReport> {
    let backups = manifest::list(store).await?;
    let backup = choose_backup(&backups, &options.target, options.backup.as_deref())?.clone();
    let archive = WalArchive::load(store, backup.wal_segment_size).await?;
    let needed_wal = check_wal_for(&archive, &backup, &options.target)?;
    prepare_directory(&options.pgdata, options.delta)?;
    tracing::info!(backup = %backup.id, target = %options.target, pgdata = %options.pgdata.display(), "restoring");

    let unpack_started = std::time::Instant::now();
    let reuse = if options.delta {
        reusable_files(&options.pgdata, &backup, options.parallel)?
    } else {
        BTreeSet::new()
    };
    // Stage replay's first segments into the spool `wal-fetch` serves from, so recovery
    // never waits on the object store segment by segment. After the unpack, not beside it:
    // on two cores running both at once slowed the unpack more than it saved. When the
    // server is started here, staging runs beside its start-up and replay instead of before
    // them; `wal-fetch` waits for a segment the stager holds (docs/BENCHMARKS.md).
    let spool = options.pgdata.join("pg_wal").join(crate::wal::SPOOL_DIR);
    let staged = &needed_wal[..needed_wal.len().min(PRESTAGE_SEGMENTS)];
    let (files_written, bytes_written) = unpack(store, &backup, &options.pgdata, &reuse, options.parallel).await?;
    write_recovery_settings(&backup, options)?;
    let user = ServerUser::current_or_postgres()?;
    ServerUser::chown_tree(user, &options.pgdata)?;

    let mut report = RestoreReport::new(&backup.id, &options.target, &options.pgdata);
    report.files_written = files_written;
    report.files_reused = reuse.len();
    report.bytes_written = bytes_written;
    report.unpack_ms = unpack_started.elapsed().as_millis() as u64;
    if !options.start {
        let prestaged = crate::wal::prefetch(store, staged, &spool, options.parallel).await?;
        ServerUser::chown_tree(user, &spool)?;
        tracing::info!(segments = prestaged, "WAL staged for replay");
        return Ok(report);
    }
    let mut instance = LocalInstance::for_pgdata(&options.pgdata, options.port.unwrap_or(5432), options.spawner.clone())?;
    instance.superuser = options.user.clone();
    instance.env = options.server_env.clone();
    // The spool exists, owned by the server's user, before the server's first `wal-fetch`.
    crate::wal::prepare_spool(&spool)?;
    ServerUser::chown_tree(user, &spool)?;
    let staging = crate::wal::prefetch(store, staged, &spool, options.parallel);
    let (prestaged, started) = tokio::join!(staging, report.start_server(&instance, options.wait_timeout));
    started?;
    tracing::info!(segments = prestaged?, "WAL staged beside replay");
    Ok(report)
}

fn prepare_directory(pgdata: &Path, delta: bool) -> Result<()> {
    if let Some(pid) = postmaster_pid(pgdata) {
        return Err(BackupError::Restore(format!(
            "{} belongs to a running PostgreSQL (pid {pid}); lifeboat never restores over a running cluster. Stop it first",
            pgdata.display()
        )));
    }
    if crate::instance::has_entries(pgdata) && !delta {
        return Err(BackupError::Restore(format!(
            "{} is not empty; restore into a new directory, or pass --delta to reuse the files that match the backup",
            pgdata.display()
        )));
    }
    std::fs::create_dir_all(pgdata).map_err(BackupError::io(pgdata))?;
    std::fs::set_permissions(pgdata, std::fs::Permissions::from_mode(0o700)).map_err(BackupError::io(pgdata))
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Delta restore: files whose size and checksum match the backup stay; files the backup does
/// not have are removed (they would confuse recovery). Checksums are computed on `parallel`
/// threads.
fn reusable_files(pgdata: &Path, backup: &Manifest, parallel: usize) -> Result<BTreeSet<String>> {
    let wanted: BTreeMap<&str, &FileEntry> = backup.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let dirs: BTreeSet<&str> = backup.dirs.iter().map(|d| d.path.as_str()).collect();
    let mut candidates: Vec<(String, PathBuf, &FileEntry)> = Vec::new();
    let mut stack = vec![pgdata.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(BackupError::io(&dir))? {
            let path = entry.map_err(BackupError::io(&dir))?.path();
            let relative = path.strip_prefix(pgdata).expect("below pgdata").to_string_lossy().into_owned();
            let metadata = std::fs::symlink_metadata(&path).map_err(BackupError::io(&path))?;
            if metadata.is_dir() {
                if dirs.contains(relative.as_str()) {
                    stack.push(path);
                } else {
                    std::fs::remove_dir_all(&path).map_err(BackupError::io(&path))?;
                }
                continue;
            }
            match wanted.get(relative.as_str()) {
                Some(entry) if metadata.is_file() && metadata.len() == entry.size => candidates.push((relative, path, entry)),
                _ => std::fs::remove_file(&path).map_err(BackupError::io(&path))?,
            }
        }
    }
    let same = checksums_match(&candidates, parallel)?;
    let mut reuse = BTreeSet::new();
    for ((relative, path, _), same) in candidates.into_iter().zip(same) {
        if same {
            reuse.insert(relative);
        } else {
            std::fs::remove_file(&path).map_err(BackupError::io(&path))?;
        }
    }
    Ok(reuse)
}

/// Whether each candidate's content has its manifest checksum, hashed on `parallel` threads,
/// the largest files dealt out first so that one large file does not finish last alone.
fn checksums_match(candidates: &[(String, PathBuf, &FileEntry)], parallel: usize) -> Result<Vec<bool>> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(candidates[i].2.size));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Vec<(usize, Result<bool>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..parallel.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&index) = order.get(at) else { break };
                        let (_, path, entry) = &candidates[index];
                        done.push((
                            index,
                            file_sha256(path).map(|sha| sha == entry.sha256).map_err(BackupError::io(path)),
                        ));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("hashing does not panic")).collect()
    });
    let mut same = vec![false; candidates.len()];
    for (index, result) in results.into_iter().flatten() {
        same[index] = result?;
    }
    Ok(same)
}

/// One slice of a part destined for a file: (file index, offset in file, offset in part, length).
type Placement = (usize, u64, u64, u64);

async fn unpack(store: &Store, backup: &Manifest, pgdata: &Path, reuse: &BTreeSet<String>, parallel: usize) -> Result<(usize, u64)> {
    for dir in &backup.dirs {
        let path = pgdata.join(&dir.path);
        std::fs::create_dir_all(&path).map_err(BackupError::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(dir.mode.max(0o700))).map_err(BackupError::io(&path))?;
    }
    let mut placements: BTreeMap<usize, Vec<Placement>> = BTreeMap::new();
    let mut written = 0;
    let mut bytes = 0;
    for (index, file) in backup.files.iter().enumerate() {
        if reuse.contains(&file.path) {
            continue;
        }
        let path = pgdata.join(&file.path);
        let handle = std::fs::File::create(&path).map_err(BackupError::io(&path))?;
        handle.set_len(file.size).map_err(BackupError::io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode)).map_err(BackupError::io(&path))?;
        let mut offset = 0;
        for chunk in &file.chunks {
            placements
                .entry(chunk.part)
                .or_default()
                .push((index, offset, chunk.offset, chunk.len));
            offset += chunk.len;
        }
        written += 1;
        bytes += file.size;
    }
    // Downloads run as their own tasks, more of them than unpacking workers: a download
    // mostly waits on the repository, and the workers should never wait for one.
    let downloads = placements.into_iter().map(|(part_index, slices)| {
        let (store, part) = (store.clone(), backup.parts[part_index].clone());
        let files: Vec<PathBuf> = slices.iter().map(|(i, ..)| pgdata.join(&backup.files[*i].path)).collect();
        tokio::spawn(async move {
            let stored = download_part(&store, &part).await?;
            Ok::<_, BackupError>((part, slices, files, stored))
        })
    });
    futures::stream::iter(downloads)
        .buffered(DOWNLOADS_PER_WORKER * parallel.max(1))
        .map(|downloaded| async move {
            let (part, slices, files, stored) = downloaded.expect("downloading does not panic")?;
            tokio::task::spawn_blocking(move || unpack_part(&part, &stored, &slices, &files))
                .await
                .expect("unpacking does not panic")
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok((written, bytes))
}

/// Downloads in flight per unpacking worker.
const DOWNLOADS_PER_WORKER: usize = 2;

async fn download_part(store: &Store, part: &Part) -> Result<Bytes> {
    part.fetch(store).await?.ok_or_else(|| {
        BackupError::Restore(format!(
            "backup object {} is missing from the repository; the backup is damaged",
            part.key
        ))
    })
}

/// Decompresses one part and writes its slices where the manifest places them.
fn unpack_part(part: &Part, stored: &[u8], slices: &[Placement], files: &[PathBuf]) -> Result<()> {
    let raw = codec::decompress(&part.key, stored, part.raw_size as usize)?;
    for ((_, file_offset, part_offset, len), path) in slices.iter().zip(files) {
        let slice = raw
            .get(*part_offset as usize..(*part_offset + *len) as usize)
            .ok_or_else(|| BackupError::Restore(format!("{} is shorter than its manifest says; the backup is damaged", part.key)))?;
        let file = std::fs::OpenOptions::new().write(true).open(path).map_err(BackupError::io(path))?;
        file.write_all_at(slice, *file_offset).map_err(BackupError::io(path))?;
    }
    Ok(())
}

fn write_recovery_settings(backup: &Manifest, options: &RestoreOptions) -> Result<()> {
    let pgdata = &options.pgdata;
    let write = |name: &str, text: &str| {
        let path = pgdata.join(name);
        std::fs::write(&path, text).map_err(BackupError::io(&path))
    };
    write("backup_label", &backup.backup_label)?;
    if let Some(map) = &backup.tablespace_map {
        write("tablespace_map", map)?;
    }
    write("recovery.signal", "")?;
    let restore_command = format!(
        "'{}' pg wal-fetch --repo '{}' %f %p",
        options.lifeboat_exe.display().to_string().replace('\'', "'\\''"),
        options.repo_url.replace('\'', "'\\''")
    );
    let mut settings = vec![("restore_command".to_string(), restore_command)];
    match &options.target {
        Target::Latest => {}
        Target::Immediate => settings.push(("recovery_target".into(), "immediate".into())),
        Target::Time(t) => settings.push(("recovery_target_time".into(), t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())),
        Target::Lsn(l) => settings.push(("recovery_target_lsn".into(), format_lsn(*l))),
        Target::Name(n) => settings.push(("recovery_target_name".into(), n.clone())),
        Target::Xid(x) => settings.push(("recovery_target_xid".into(), x.clone())),
    }
    if !options.inclusive && !matches!(options.target, Target::Latest | Target::Immediate) {
        settings.push(("recovery_target_inclusive".into(), "off".into()));
    }
    settings.push(("recovery_target_action".into(), "promote".into()));
    settings.push(("recovery_target_timeline".into(), "latest".into()));
    settings.extend(server_settings(pgdata, options.port, options.keep_archiving)?);
    append_settings(
        pgdata,
        &format!("lifeboat restore of backup {} to {}", backup.id, options.target),
        &settings,
    )
}

/// Where a restored server listens, and whether it archives; shared with the pgBackRest provider.
pub fn server_settings(pgdata: &Path, port: Option<u16>, keep_archiving: bool) -> Result<Vec<(String, String)>> {
    let mut settings = Vec::new();
    if !keep_archiving {
        settings.push(("archive_mode".into(), "off".into()));
    }
    if let Some(port) = port {
        // Only the placement is read: nothing is started.
        let instance = LocalInstance::for_pgdata(pgdata, port, crate::process::Spawner::unrecorded())?;
        settings.extend(instance.placement_settings());
    }
    Ok(settings)
}

/// Appends settings to `postgresql.auto.conf`, which overrides `postgresql.conf`.
pub fn append_settings(pgdata: &Path, comment: &str, settings: &[(String, String)]) -> Result<()> {
    crate::instance::append_settings(&pgdata.join("postgresql.auto.conf"), comment, settings)
}

/// Starts the restored server and waits until recovery has finished and it accepts writes.
/// Where recovery ended: last replayed LSN, last replayed commit time, the new timeline.
type Reached = (Option<String>, Option<DateTime<Utc>>, u32);

async fn start_and_wait(instance: &LocalInstance, timeout: Duration) -> Result<Reached> {
    instance.spawn().await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let started = tokio::time::Instant::now();
    let dsn = instance.dsn("postgres");
    loop {
        if let Ok(mut conn) = PgConnection::connect(&dsn).await
            && let Ok(false) = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await
        {
            let row = sqlx::query(
                "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(), \
                 ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
            )
            .fetch_one(&mut conn)
            .await?;
            let _ = conn.close().await;
            let timeline = row.get::<i32, _>(2) as u32;
            // The new timeline's history file records exactly where recovery ended; the replay
            // pointer may already be past it (the end-of-recovery record).
            let reached = switchpoint(&instance.pgdata(), timeline).or_else(|| row.get(0));
            return Ok((reached, row.get(1), timeline));
        }
        if instance.running_pid().is_none() && started.elapsed() > Duration::from_secs(3) {
            // The postmaster's last log lines may land just after it is gone.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Err(recovery_failure(&instance.log_file()));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(BackupError::Restore(format!(
                "recovery did not finish within {} s; the server is still running in {} (log: {})",
                timeout.as_secs(),
                instance.pgdata().display(),
                instance.log_file().display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn switchpoint(pgdata: &Path, timeline: u32) -> Option<String> {
    let text = std::fs::read_to_string(pgdata.join("pg_wal").join(format!("{timeline:08X}.history"))).ok()?;
    crate::wal_name::parse_history(&text)
        .last()
        .map(|entry| format_lsn(entry.switchpoint))
}

fn recovery_failure(log: &Path) -> BackupError {
    let tail = log_tail(log, 15);
    let reason = if tail.contains("recovery ended before configured recovery target was reached") {
        "WAL ended before the recovery target was reached: the target is newer than the archive, or a WAL segment is missing"
    } else if tail.contains("before consistent recovery point") {
        "the target lies before the end of the chosen backup; pick an older backup with --backup or a later target"
    } else if tail.contains("could not locate required checkpoint record") || tail.contains("could not find redo location") {
        "the backup's starting WAL could not be fetched from the repository"
    } else {
        "PostgreSQL stopped during recovery"
    };
    BackupError::Restore(format!("{reason}. Last lines of {}:\n{tail}", log.display()))
}

/// Parses a recovery target time: RFC 3339, or PostgreSQL's `YYYY-MM-DD HH:MM:SS[.ffffff][+TZ]`
/// (UTC when no zone is given).
pub fn parse_target_time(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    Err(BackupError::invalid(format!(
        "`{text}` is not a time; use RFC 3339 like 2026-11-22T10:15:00Z or `2026-11-22 10:15:00+00`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_times() {
        let expected = DateTime::parse_from_rfc3339("2026-11-22T10:15:00.25Z").unwrap().with_timezone(&Utc);
        for text in [
            "2026-11-22T10:15:00.25Z",
            "2026-11-22 10:15:00.25+00",
            "2026-11-22 12:15:00.25+02:00",
            "2026-11-22 10:15:00.25",
        ] {
            assert_eq!(parse_target_time(text).unwrap(), expected, "{text}");
        }
        assert!(parse_target_time("yesterday").unwrap_err().to_string().contains("RFC 3339"));
    }
}
