//! Base backups through PostgreSQL's low-level backup API: `pg_backup_start`, a parallel
//! compressed copy of the data directory into parts, `pg_backup_stop` (which waits until the
//! last segment is archived), then the manifest, written last.
//!
//! An incremental backup stores only the files whose content changed since the newest
//! backup of the same cluster, judged by size and SHA-256 against that backup's manifest
//! (not by modification time, which a copied or restored file does not keep truthfully).
//! Its manifest lists the earlier backup's parts for the unchanged files, so a restore reads
//! one manifest whatever the length of the chain.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::Utc;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::mpsc;

use crate::codec;
use crate::error::{BackupError, Result};
use crate::layout;
use crate::manifest::{self, Chunk, DirEntry, FileEntry, Manifest, Part};
use crate::store::{Store, sha256_hex};
use crate::wal_name::{Segment, parse_lsn};

/// Raw bytes per part: small enough that a few in flight stay well under 100 MB of memory,
/// large enough that a 1 GiB cluster is ~128 objects.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Connection to the server being backed up.
    pub dsn: String,
    /// Its data directory; read from the server (`data_directory`) when not given.
    pub pgdata: Option<PathBuf>,
    /// Backup id; defaults to the start time (`20261122T003000Z`). A step passes its
    /// idempotency key so a resumed step finds the backup it already took.
    pub id: Option<String>,
    pub parallel: usize,
    /// Store only the files that changed since the newest backup of this cluster (a full
    /// backup when there is none).
    pub incremental: bool,
}

/// Directories whose contents are never backed up (PostgreSQL recreates or does not need them).
const CONTENTS_EXCLUDED: &[&str] = &[
    "pg_wal",
    "pg_replslot",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
];
const FILES_EXCLUDED: &[&str] = &[
    "postmaster.pid",
    "postmaster.opts",
    "backup_label",
    "tablespace_map",
    "backup_manifest",
    "standby.signal",
    "recovery.signal",
];

/// Builds a connection string for a server from its data directory's `postmaster.pid`
/// (port and socket directory).
pub fn dsn_from_pgdata(pgdata: &Path, user: &str) -> Result<String> {
    let pid_file = pgdata.join("postmaster.pid");
    let text = std::fs::read_to_string(&pid_file).map_err(|e| {
        BackupError::invalid(format!(
            "{}: {e}; is PostgreSQL running on this data directory? Or pass --dsn",
            pid_file.display()
        ))
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let (Some(port), Some(socket)) = (lines.get(3), lines.get(4)) else {
        return Err(BackupError::invalid(format!("{} is incomplete; pass --dsn", pid_file.display())));
    };
    let host = if socket.trim().is_empty() {
        "127.0.0.1".to_string()
    } else {
        socket.trim().to_string()
    };
    Ok(format!("postgres:///postgres?host={}&port={}&user={user}", host, port.trim()))
}

pub async fn take(store: &Store, options: &BackupOptions) -> Result<Manifest> {
    if let Some(id) = &options.id
        && let Some(existing) = manifest::read(store, id).await?
    {
        tracing::info!(backup = %id, "backup already complete");
        return Ok(existing);
    }
    let mut conn = PgConnection::connect(&options.dsn).await?;
    let row = sqlx::query(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version'), current_setting('archive_mode'), \
         current_setting('data_directory'), (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), \
         (SELECT system_identifier::text FROM pg_control_system()), pg_is_in_recovery()",
    )
    .fetch_one(&mut conn)
    .await?;
    let (version_num, version, archive_mode, data_directory, segment_size, system_identifier, in_recovery): (
        i32,
        String,
        String,
        String,
        i64,
        String,
        bool,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6));
    if archive_mode == "off" {
        return Err(BackupError::invalid(
            "archive_mode is off: a base backup is only restorable with the WAL written during it. \
             Set archive_mode = on and archive_command = 'lifeboat pg wal-push --repo URL %p', restart, and retry",
        ));
    }
    if in_recovery {
        return Err(BackupError::invalid(
            "the server is a standby; back up the primary (standby backups are not supported yet)",
        ));
    }
    let pgdata = options.pgdata.clone().unwrap_or_else(|| PathBuf::from(&data_directory));
    if !pgdata.join("PG_VERSION").is_file() {
        return Err(BackupError::invalid(format!(
            "{} is not readable here as a data directory; lifeboat backs up servers whose data directory it can read (run it on the database host)",
            pgdata.display()
        )));
    }
    let tablespaces = pgdata.join("pg_tblspc");
    if crate::instance::has_entries(&tablespaces) {
        return Err(BackupError::invalid(
            "the cluster has tablespaces outside the data directory, which lifeboat does not back up yet",
        ));
    }

    let reference = if options.incremental {
        let newest = manifest::list(store)
            .await?
            .into_iter()
            .rev()
            .find(|m| m.system_identifier == system_identifier && m.pg_version_num == version_num);
        if newest.is_none() {
            tracing::warn!("no earlier backup of this cluster in the repository; taking a full backup instead of an incremental one");
        }
        newest
    } else {
        None
    };
    let start_time = Utc::now();
    let id = options
        .id
        .clone()
        .unwrap_or_else(|| start_time.format("%Y%m%dT%H%M%SZ").to_string());
    let label = format!("lifeboat {id}");
    let start_sql = if version_num >= 150000 {
        "SELECT pg_backup_start($1, true)::text"
    } else {
        "SELECT pg_start_backup($1, true, false)::text"
    };
    let start_lsn: String = sqlx::query_scalar(start_sql).bind(&label).fetch_one(&mut conn).await?;
    tracing::info!(backup = %id, start_lsn = %start_lsn, pgdata = %pgdata.display(), "backup started");

    let copied = copy_data_directory(store, &id, &pgdata, options.parallel, reference.as_ref()).await;
    // Always end backup mode, even when the copy failed, so the server is not left in it. A
    // failed backup must not wait for archiving: the repository may be the thing that is down.
    let wait_for_archive = copied.is_ok();
    let stop_sql = if version_num >= 150000 {
        "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop($1)"
    } else {
        "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, $1)"
    };
    let stop = sqlx::query(stop_sql).bind(wait_for_archive).fetch_one(&mut conn).await;
    let (parts, dirs, files) = copied?;
    let stop = stop?;
    let (stop_lsn, backup_label, tablespace_map): (String, String, Option<String>) = (stop.get(0), stop.get(1), stop.get(2));
    let stop_wal: String = sqlx::query_scalar("SELECT pg_walfile_name($1::pg_lsn)")
        .bind(&stop_lsn)
        .fetch_one(&mut conn)
        .await?;
    let _ = conn.close().await;

    let segment_size = segment_size as u64;
    let timeline = label_field(&backup_label, "START TIMELINE:")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let start_wal = Segment::containing(timeline, parse_lsn(&start_lsn)?, segment_size).name(segment_size);
    // pg_backup_stop(true) waited for archiving, so the stop segment must be in the repository.
    if store.head(&layout::wal_key(&stop_wal)).await?.is_none() {
        return Err(BackupError::Restore(format!(
            "backup {id}: WAL segment {stop_wal} is not in the repository although PostgreSQL reported it archived; \
             archive_command must push to this same repository"
        )));
    }
    let own_parts = layout::backup_prefix(&id);
    let manifest = Manifest {
        format: manifest::FORMAT,
        id: id.clone(),
        pg_version: version,
        pg_version_num: version_num,
        system_identifier,
        timeline,
        start_lsn,
        stop_lsn,
        start_wal,
        stop_wal,
        start_time,
        stop_time: Utc::now(),
        wal_segment_size: segment_size,
        backup_label,
        tablespace_map: tablespace_map.filter(|m| !m.is_empty()),
        total_size: files.iter().map(|f| f.size).sum(),
        stored_size: parts.iter().filter(|p| p.key.starts_with(&own_parts)).map(|p| p.stored_size).sum(),
        reference: reference.map(|r| r.id),
        parts,
        dirs,
        files,
    };
    manifest::write(store, &manifest).await?;
    tracing::info!(
        backup = %id,
        stop_lsn = %manifest.stop_lsn,
        files = manifest.files.len(),
        bytes = manifest.total_size,
        stored_bytes = manifest.stored_size,
        reference = manifest.reference.as_deref().unwrap_or(""),
        "backup complete"
    );
    Ok(manifest)
}

pub fn label_field<'a>(label: &'a str, field: &str) -> Option<&'a str> {
    label.lines().find_map(|l| l.strip_prefix(field)).map(str::trim)
}

struct RawPart {
    index: usize,
    bytes: Vec<u8>,
}

type Copied = (Vec<Part>, Vec<DirEntry>, Vec<FileEntry>);

async fn copy_data_directory(store: &Store, id: &str, pgdata: &Path, parallel: usize, reference: Option<&Manifest>) -> Result<Copied> {
    let parallel = parallel.max(1);
    let (sender, mut receiver) = mpsc::channel::<RawPart>(parallel);
    let pgdata_owned = pgdata.to_path_buf();
    let unchanged = reference.map(Unchanged::from).unwrap_or_default();
    let reader = tokio::task::spawn_blocking(move || pack(&pgdata_owned, sender, &unchanged));

    let mut uploads = tokio::task::JoinSet::new();
    let mut parts: Vec<Option<Part>> = Vec::new();
    let mut failure: Option<BackupError> = None;
    loop {
        // Bound in-flight parts so memory stays flat however large the cluster is.
        while uploads.len() >= parallel {
            collect(uploads.join_next().await, &mut parts, &mut failure);
        }
        let Some(raw) = receiver.recv().await else { break };
        if failure.is_some() {
            continue;
        }
        let (store, key) = (store.clone(), layout::part_key(id, raw.index));
        uploads.spawn(async move {
            let raw_size = raw.bytes.len() as u64;
            let stored = codec::compress_blocking(Bytes::from(raw.bytes), codec::BACKUP_LEVEL).await;
            let sha256 = {
                let stored = stored.clone();
                tokio::task::spawn_blocking(move || sha256_hex(&stored))
                    .await
                    .expect("hashing does not panic")
            };
            let stored_size = stored.len() as u64;
            store.put(&key, stored, Default::default()).await?;
            Ok::<_, BackupError>((
                raw.index,
                Part {
                    key,
                    raw_size,
                    stored_size,
                    sha256,
                },
            ))
        });
    }
    while !uploads.is_empty() {
        collect(uploads.join_next().await, &mut parts, &mut failure);
    }
    let (dirs, mut files, reused) = reader.await.expect("packing does not panic")?;
    if let Some(error) = failure {
        return Err(error);
    }
    let mut parts = parts.into_iter().map(|p| p.expect("every packed part was uploaded")).collect();
    if let Some(reference) = reference {
        share_parts(&mut parts, &mut files, &reused, reference);
    }
    Ok((parts, dirs, files))
}

/// The files of the backup an incremental one is taken against, by path; only entries whose
/// parts all exist, so a damaged manifest costs a re-read, never a broken backup.
#[derive(Default)]
struct Unchanged(HashMap<String, FileEntry>);

impl From<&Manifest> for Unchanged {
    fn from(reference: &Manifest) -> Unchanged {
        let usable = |f: &&FileEntry| f.chunks.iter().all(|c| c.part < reference.parts.len());
        Unchanged(reference.files.iter().filter(usable).map(|f| (f.path.clone(), f.clone())).collect())
    }
}

impl Unchanged {
    /// The earlier entry for `path` when the file still has the same size and content.
    fn matching(&self, path: &str, file: &mut std::fs::File, size: u64) -> std::io::Result<Option<&FileEntry>> {
        let Some(earlier) = self.0.get(path).filter(|e| e.size == size) else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        std::io::copy(file, &mut hasher)?;
        let same = hex::encode(hasher.finalize()) == earlier.sha256;
        file.rewind()?;
        Ok(same.then_some(earlier))
    }
}

/// Points the reused files' chunks at the reference backup's parts, appended after this
/// backup's own (each shared part listed once).
fn share_parts(parts: &mut Vec<Part>, files: &mut [FileEntry], reused: &[usize], reference: &Manifest) {
    let mut shared: HashMap<usize, usize> = HashMap::new();
    for &index in reused {
        for chunk in &mut files[index].chunks {
            chunk.part = *shared.entry(chunk.part).or_insert_with(|| {
                parts.push(reference.parts[chunk.part].clone());
                parts.len() - 1
            });
        }
    }
}

fn collect(
    joined: Option<std::result::Result<Result<(usize, Part)>, tokio::task::JoinError>>,
    parts: &mut Vec<Option<Part>>,
    failure: &mut Option<BackupError>,
) {
    match joined {
        Some(Ok(Ok((index, part)))) => {
            if parts.len() <= index {
                parts.resize(index + 1, None);
            }
            parts[index] = Some(part);
        }
        Some(Ok(Err(e))) => {
            failure.get_or_insert(e);
        }
        Some(Err(join)) => {
            failure.get_or_insert(BackupError::invalid(format!("upload task failed: {join}")));
        }
        None => {}
    }
}

fn excluded_file(name: &str) -> bool {
    FILES_EXCLUDED.contains(&name) || name == "pg_internal.init" || name.starts_with("pgsql_tmp")
}

/// Walks the data directory in path order, streaming file bytes into fixed-size parts; files
/// `unchanged` since the reference backup keep that backup's chunks, and their indices in the
/// returned list are the third value.
fn pack(pgdata: &Path, sender: mpsc::Sender<RawPart>, unchanged: &Unchanged) -> Result<(Vec<DirEntry>, Vec<FileEntry>, Vec<usize>)> {
    let mut dirs = Vec::new();
    let mut paths = Vec::new();
    walk(pgdata, pgdata, &mut dirs, &mut paths)?;
    paths.sort();
    let mut files = Vec::new();
    let mut reused = Vec::new();
    let mut index = 0;
    let mut buffer = Vec::with_capacity(PART_SIZE);
    for relative in paths {
        let path = pgdata.join(&relative);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            // Relations dropped during the backup vanish; WAL replay accounts for that.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::io(&path)(e)),
        };
        let metadata = file.metadata().map_err(BackupError::io(&path))?;
        let mode = metadata.permissions().mode() & 0o7777;
        if let Some(earlier) = unchanged
            .matching(&relative, &mut file, metadata.len())
            .map_err(BackupError::io(&path))?
        {
            reused.push(files.len());
            files.push(FileEntry {
                path: relative,
                mode,
                ..earlier.clone()
            });
            continue;
        }
        let mut hasher = Sha256::new();
        let mut chunks = Vec::new();
        let mut size = 0u64;
        loop {
            let start = buffer.len();
            buffer.resize(PART_SIZE, 0);
            let mut filled = start;
            while filled < PART_SIZE {
                match file.read(&mut buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(BackupError::io(&path)(e)),
                }
            }
            buffer.truncate(filled);
            let read = (filled - start) as u64;
            if read > 0 {
                hasher.update(&buffer[start..filled]);
                chunks.push(Chunk {
                    part: index,
                    offset: start as u64,
                    len: read,
                });
                size += read;
            }
            if buffer.len() < PART_SIZE {
                break;
            }
            let full = std::mem::replace(&mut buffer, Vec::with_capacity(PART_SIZE));
            if sender.blocking_send(RawPart { index, bytes: full }).is_err() {
                return Err(BackupError::invalid("backup upload stopped"));
            }
            index += 1;
        }
        files.push(FileEntry {
            path: relative,
            size,
            mode,
            sha256: hex::encode(hasher.finalize()),
            chunks,
        });
    }
    if !buffer.is_empty() {
        let _ = sender.blocking_send(RawPart { index, bytes: buffer });
    }
    Ok((dirs, files, reused))
}

fn walk(root: &Path, dir: &Path, dirs: &mut Vec<DirEntry>, files: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(BackupError::io(dir))? {
        let entry = entry.map_err(BackupError::io(dir))?;
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("below root").to_string_lossy().into_owned();
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::io(&path)(e)),
        };
        if metadata.is_dir() {
            if name.starts_with("pgsql_tmp") {
                continue;
            }
            dirs.push(DirEntry {
                path: relative.clone(),
                mode: metadata.permissions().mode() & 0o7777,
            });
            if !CONTENTS_EXCLUDED.contains(&relative.as_str()) {
                walk(root, &path, dirs, files)?;
            } else if relative == "pg_wal" {
                dirs.push(DirEntry {
                    path: "pg_wal/archive_status".into(),
                    mode: 0o700,
                });
            }
        } else if metadata.is_file() && !excluded_file(&name) {
            files.push(relative);
        }
    }
    Ok(())
}
