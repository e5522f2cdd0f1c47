//! Persistence of the world in DIR: a snapshot (`world.json`) plus an append-only journal
//! (`journal.jsonl`) of every request that changed the world since the snapshot.
//!
//! A mutation is appended and fsynced before its answer is sent, so a process killed right
//! after an answer never loses the write; appending one line costs the same at 10 lines or
//! 10,000. On start the journal is replayed over the snapshot (a torn last line, from a kill
//! mid-append, is ignored), then compacted into a fresh snapshot; shutdown compacts too, and
//! so does a long-running sandbox every 20,000 writes.
//! Snapshots are written atomically: temp file, fsync, rename, fsync of the directory.
//! Entries are numbered and a snapshot records the last number it includes, so a crash
//! between writing a snapshot and emptying the journal never applies an entry twice.
//! One process at a time owns a DIR (`sandbox.lock`: pid, token and, once serving, the base
//! URL); a lock left by a process that is gone (Linux: no `/proc/PID`) is taken over.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::world::World;
use super::SandboxError;

const SNAPSHOT: &str = "world.json";
const JOURNAL: &str = "journal.jsonl";
const SNAPSHOT_VERSION: u32 = 1;
const LOCK: &str = "sandbox.lock";
/// A long-running sandbox folds its journal into a snapshot after this many entries, so the
/// next start never replays more than this.
const COMPACT_AFTER: u64 = 20_000;

/// One journaled request: enough to run it again through the same handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the journal, assigned by [`Store::append`].
    #[serde(default)]
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub provider: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: Vec<(String, String)>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// The body, base64 (protobuf bodies are binary).
    #[serde(default)]
    pub body: String,
    /// The id the original answer named (LiveKit ids are random; replay maps them back).
    #[serde(default)]
    pub resource_id: Option<String>,
}

impl JournalEntry {
    pub fn body_bytes(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .unwrap_or_default()
    }

    pub fn encode_body(body: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(body)
    }
}

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    #[serde(default)]
    journal_seq: u64,
    world: World,
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    journal_seq: u64,
    world: &'a World,
}

/// The open journal of one sandbox directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    journal: File,
    last_seq: u64,
    /// Entries appended since the last snapshot.
    pending: u64,
    compact_after: u64,
    _lock: DirLock,
}

impl Store {
    /// Opens DIR (creating it), returning the store, the world found there (snapshot plus
    /// journal entries, which the caller replays), or `None` when DIR holds no world yet.
    pub fn open(dir: &Path) -> Result<(Store, Option<World>, Vec<JournalEntry>), SandboxError> {
        fs::create_dir_all(dir).map_err(|e| SandboxError::io(dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let snapshot = read_snapshot(dir)?;
        let (entries, valid_len) = read_journal(dir)?;
        let journal = open_journal(dir)?;
        cut_torn_tail(&journal, valid_len).map_err(|e| SandboxError::io(&dir.join(JOURNAL), e))?;
        let included = snapshot.as_ref().map_or(0, |s| s.journal_seq);
        let entries: Vec<JournalEntry> = entries.into_iter().filter(|e| e.seq > included).collect();
        let last_seq = entries.last().map_or(included, |e| e.seq);
        let store = Store {
            dir: dir.to_path_buf(),
            journal,
            last_seq,
            pending: 0,
            compact_after: COMPACT_AFTER,
            _lock: lock,
        };
        Ok((store, snapshot.map(|s| s.world), entries))
    }

    /// Numbers one mutation, appends it and makes it durable.
    pub fn append(&mut self, mut entry: JournalEntry) -> Result<(), SandboxError> {
        entry.seq = self.last_seq + 1;
        let mut line = serde_json::to_vec(&entry).map_err(SandboxError::Encode)?;
        line.push(b'\n');
        let path = self.dir.join(JOURNAL);
        self.journal
            .write_all(&line)
            .and_then(|()| self.journal.sync_data())
            .map_err(|e| SandboxError::io(&path, e))?;
        self.last_seq = entry.seq;
        self.pending += 1;
        Ok(())
    }

    /// Whether the journal has grown enough to be folded into a snapshot.
    pub fn wants_compaction(&self) -> bool {
        self.pending >= self.compact_after
    }

    /// Writes `world` as the new snapshot and empties the journal it supersedes.
    pub fn compact(&mut self, world: &World) -> Result<(), SandboxError> {
        write_snapshot(&self.dir, world, self.last_seq)?;
        let path = self.dir.join(JOURNAL);
        self.journal
            .set_len(0)
            .and_then(|()| self.journal.sync_all())
            .map_err(|e| SandboxError::io(&path, e))?;
        self.pending = 0;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records in the lock where this sandbox serves, for [`serving_url`].
    pub fn advertise(&self, base_url: &str) -> Result<(), SandboxError> {
        self._lock.write(Some(base_url))
    }
}

/// Replaces whatever world DIR holds with `world`, and empties its request log.
pub fn replace_world(dir: &Path, world: &World) -> Result<(), SandboxError> {
    let (mut store, _, _) = Store::open(dir)?;
    store.compact(world)?;
    let log = dir.join(super::REQUEST_LOG);
    match fs::remove_file(&log) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SandboxError::io(&log, e)),
    }
}

/// Exclusive use of a sandbox directory by one process.
#[derive(Debug)]
struct DirLock {
    path: PathBuf,
    token: String,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self, SandboxError> {
        let path = dir.join(LOCK);
        let me = std::process::id();
        if let Ok(held) = fs::read_to_string(&path) {
            let holder = held
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = holder.filter(|pid| *pid != me && process_alive(*pid)) {
                return Err(SandboxError::Busy {
                    dir: dir.to_path_buf(),
                    pid,
                    url: held.split_whitespace().nth(2).map(str::to_string),
                });
            }
        }
        let lock = Self {
            path,
            token: uuid::Uuid::new_v4().to_string(),
        };
        lock.write(None)?;
        Ok(lock)
    }

    fn write(&self, url: Option<&str>) -> Result<(), SandboxError> {
        let line = format!(
            "{} {} {}",
            std::process::id(),
            self.token,
            url.unwrap_or("")
        );
        fs::write(&self.path, format!("{}\n", line.trim_end()))
            .map_err(|e| SandboxError::io(&self.path, e))
    }
}

/// Whether `dir` already holds a world (a snapshot or journal entries), which a start keeps
/// instead of seeding a new one.
pub fn has_world(dir: &Path) -> bool {
    dir.join(SNAPSHOT).is_file() || fs::metadata(dir.join(JOURNAL)).is_ok_and(|m| m.len() > 0)
}

/// The base URL of a sandbox process serving `dir` right now, if there is one.
pub fn serving_url(dir: &Path) -> Option<String> {
    let held = fs::read_to_string(dir.join(LOCK)).ok()?;
    let mut fields = held.split_whitespace();
    let pid = fields.next()?.parse::<u32>().ok()?;
    let url = fields.nth(1)?;
    process_alive(pid).then(|| url.to_string())
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let ours = fs::read_to_string(&self.path).is_ok_and(|held| held.contains(&self.token));
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether a process with this pid exists on this machine (Linux: `/proc`).
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Drops a partial last line, so the next append starts on a line of its own.
fn cut_torn_tail(mut journal: &File, valid_len: u64) -> std::io::Result<()> {
    let len = journal.metadata()?.len();
    if valid_len < len {
        journal.set_len(valid_len)?;
    } else if valid_len > len {
        journal.write_all(b"\n")?;
    }
    Ok(())
}

fn open_journal(dir: &Path) -> Result<File, SandboxError> {
    let path = dir.join(JOURNAL);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| SandboxError::io(&path, e))
}

fn read_snapshot(dir: &Path) -> Result<Option<Snapshot>, SandboxError> {
    let path = dir.join(SNAPSHOT);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SandboxError::io(&path, e)),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| SandboxError::Corrupt {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if snapshot.version != SNAPSHOT_VERSION {
        return Err(SandboxError::Corrupt {
            path,
            detail: format!(
                "snapshot version {} is not {SNAPSHOT_VERSION}",
                snapshot.version
            ),
        });
    }
    Ok(Some(snapshot))
}

/// The journal's entries and the length of its intact part (a torn last line is cut off).
fn read_journal(dir: &Path) -> Result<(Vec<JournalEntry>, u64), SandboxError> {
    let path = dir.join(JOURNAL);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(SandboxError::io(&path, e)),
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| SandboxError::io(&path, e))?;
    let count = lines.len();
    let mut entries = Vec::with_capacity(count);
    let mut valid_len = 0u64;
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<JournalEntry>(line) {
            Ok(entry) => {
                entries.push(entry);
                valid_len += line.len() as u64 + 1;
            }
            Err(_) if i + 1 == count => break,
            Err(e) => {
                return Err(SandboxError::Corrupt {
                    path,
                    detail: format!("line {}: {e}", i + 1),
                })
            }
        }
    }
    Ok((entries, valid_len))
}

/// Writes the snapshot atomically: temp file, fsync, rename, fsync of the directory.
fn write_snapshot(dir: &Path, world: &World, journal_seq: u64) -> Result<(), SandboxError> {
    let path = dir.join(SNAPSHOT);
    let temp = dir.join(format!("{SNAPSHOT}.tmp"));
    let snapshot = SnapshotRef {
        version: SNAPSHOT_VERSION,
        journal_seq,
        world,
    };
    let bytes = serde_json::to_vec(&snapshot).map_err(SandboxError::Encode)?;
    let mut file = File::create(&temp).map_err(|e| SandboxError::io(&temp, e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| SandboxError::io(&temp, e))?;
    fs::rename(&temp, &path).map_err(|e| SandboxError::io(&path, e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> JournalEntry {
        JournalEntry {
            seq: 0,
            time: Utc::now(),
            provider: "telnyx".into(),
            method: "PATCH".into(),
            path: format!("/v2/phone_numbers/{n}"),
            query: vec![],
            content_type: Some("application/json".into()),
            body: JournalEntry::encode_body(b"{}"),
            resource_id: None,
        }
    }

    #[test]
    fn journal_survives_reopen_and_ignores_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, world, entries) = Store::open(dir.path()).unwrap();
        assert!(world.is_none() && entries.is_empty());
        store.append(entry(1)).unwrap();
        store.append(entry(2)).unwrap();
        drop(store);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        file.write_all(b"{\"time\":").unwrap();
        let (mut store, _, entries) = Store::open(dir.path()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].path, "/v2/phone_numbers/2");
        store.append(entry(3)).unwrap();
        drop(store);
        let (mut store, _, entries) = Store::open(dir.path()).unwrap();
        assert_eq!(entries.len(), 3, "a torn line is cut off, not buried");
        store.compact(&World::default()).unwrap();
        let (_, world, entries) = Store::open(dir.path()).unwrap();
        assert!(world.is_some());
        assert!(entries.is_empty());
    }

    #[test]
    fn a_directory_held_by_a_live_process_is_refused_and_a_dead_ones_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOCK), "1 someone-else\n").unwrap();
        let refused = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(refused, SandboxError::Busy { pid: 1, .. }),
            "{refused}"
        );
        fs::write(dir.path().join(LOCK), format!("{} gone\n", u32::MAX)).unwrap();
        let (store, _, _) = Store::open(dir.path()).unwrap();
        drop(store);
        assert!(!dir.path().join(LOCK).exists(), "released on drop");
    }

    #[test]
    fn a_long_journal_asks_for_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _, _) = Store::open(dir.path()).unwrap();
        store.compact_after = 2;
        store.append(entry(1)).unwrap();
        assert!(!store.wants_compaction());
        store.append(entry(2)).unwrap();
        assert!(store.wants_compaction());
        store.compact(&World::default()).unwrap();
        assert!(!store.wants_compaction());
    }

    #[test]
    fn entries_a_snapshot_includes_are_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _, _) = Store::open(dir.path()).unwrap();
        store.append(entry(1)).unwrap();
        store.append(entry(2)).unwrap();
        let journal = fs::read(dir.path().join(JOURNAL)).unwrap();
        store.compact(&World::default()).unwrap();
        fs::write(dir.path().join(JOURNAL), &journal).unwrap();
        let (mut store, _, entries) = Store::open(dir.path()).unwrap();
        assert!(entries.is_empty(), "a crash before the journal was emptied");
        store.append(entry(3)).unwrap();
        let (_, _, entries) = Store::open(dir.path()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].seq, entries[0].path.as_str()),
            (3, "/v2/phone_numbers/3")
        );
    }
}
