//! Reading and atomically writing the state directory (state.json as the manifest of
//! content-addressed shards, see [`super::shards`]), with a backup of the previous version.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::location::{self, Location};
use super::pg::{self, PgBackend};
use super::shards;
use super::{State, StateError, FORMAT_VERSION};
use crate::model::Kind;

/// Where state is kept: the state directory and the files in it (the default), or a
/// workspace in PostgreSQL (`remote`). Every caller goes through this one API; which backend
/// serves it is decided here alone.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    remote: Option<Arc<PgBackend>>,
}

impl StateStore {
    /// The state directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            remote: None,
        }
    }

    /// The state `--state` names: a directory, or a `postgres://` URL (with `--workspace`).
    /// Nothing is opened yet: a database is connected to (and its schema migrated) on first
    /// use.
    pub fn open(location: &Path, workspace: Option<&str>) -> Result<Self, StateError> {
        Ok(match location::parse(location, workspace)? {
            Location::Dir(dir) => Self::new(dir),
            Location::Postgres(target) => Self {
                dir: PathBuf::from(target.shown()),
                remote: Some(pg::backend(&target)),
            },
        })
    }

    /// The PostgreSQL backend, when state is there.
    pub(super) fn remote(&self) -> Option<&Arc<PgBackend>> {
        self.remote.as_ref()
    }

    /// Where state is, for messages: the directory, or the URL (never its password) and
    /// workspace.
    pub fn describe(&self) -> String {
        match &self.remote {
            Some(pg) => pg.shown(),
            None => self.dir.display().to_string(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn backup_path(&self) -> PathBuf {
        self.dir.join("state.json.backup")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock.json")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// Reads state.json (a manifest and its shards, or a whole state as cwa wrote it before
    /// shards); a missing file is an empty state (nothing owned yet).
    pub fn load(&self) -> Result<State, StateError> {
        if let Some(pg) = &self.remote {
            return pg.load();
        }
        let path = self.state_path();
        match read_state_text(&path)? {
            Some(text) => parse_state(&path, &text),
            None => Ok(State::new()),
        }
    }

    /// Writes the state atomically, bumping its serial and keeping the previous file as a
    /// backup (itself written atomically: it is what a user restores from). A crash at any
    /// instant leaves either the old or the new file, never half of one.
    pub fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.bind_fingerprints(super::fingerprint::key());
        self.write(state, None)
    }

    /// Saves a state whose secrets this process did not touch, as it is: a copy from another
    /// store (`cwa state migrate`, which must be lossless) or an edit that opens no session
    /// (`cwa state rm`, which has no fingerprint key of its own). The serial moves on; the
    /// fingerprints and their key id are kept, not rebound under this process's key.
    pub fn save_copy(&self, state: &mut State) -> Result<(), StateError> {
        self.write(state, None)
    }

    /// Bumps the serial and sets the format (what every backend saves), then writes where
    /// state is kept.
    fn write(&self, state: &mut State, expected: Option<&State>) -> Result<(), StateError> {
        state.serial = state
            .serial
            .checked_add(1)
            .ok_or_else(|| StateError::Corrupt {
                path: self.describe(),
                detail: SERIAL_AT_MAXIMUM.into(),
            })?;
        state.format_version = FORMAT_VERSION;
        match &self.remote {
            Some(pg) => pg.save(state, expected),
            None => self.write_files(state),
        }
    }

    fn write_files(&self, state: &State) -> Result<(), StateError> {
        let path = self.state_path();
        let previous = match fs::read(&path) {
            Ok(previous) => Some(previous),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StateError::Io {
                    action: "back up",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        shards::save(&path, state, previous.as_deref(), |previous| {
            // The backup is cwa's own per-machine file: a symlink planted there (a
            // committed state/) is replaced, never written through to what it points at.
            let backup = self.backup_path();
            if is_symlink(&backup) {
                fs::remove_file(&backup).map_err(|source| StateError::Io {
                    action: "replace the symlink",
                    path: backup.display().to_string(),
                    source,
                })?;
            }
            write_atomic(&backup, previous)
        })?;
        shards::remove_temp_files_of_dead_writers(&self.dir);
        Ok(())
    }

    /// Called by the executor right before it orders a number of `kind` (bought and billed,
    /// whatever happens next). See [`confirm_lease`](Self::confirm_lease).
    pub fn before_order(&self, kind: Kind) -> Result<(), StateError> {
        match kind {
            Kind::TelnyxNumber | Kind::TwilioNumber => self.confirm_lease(),
            _ => Ok(()),
        }
    }

    /// Called by the executor right before it deletes an object; `releasing` when that
    /// releases a number for good (someone else can buy it).
    pub fn before_release(&self, releasing: bool) -> Result<(), StateError> {
        if releasing {
            return self.confirm_lease();
        }
        Ok(())
    }

    /// The fence before a provider write that cannot be undone: state, journal and audit
    /// writes are fenced by the lease's generation, but a provider call is not, so a holder
    /// paused between journaling an order and sending it (past its lease, while another cwa
    /// took over and bought the number) must find out before it sends. With state in
    /// PostgreSQL the lease is checked (and renewed) here; a directory's lock file cannot be
    /// taken over while its holder lives, so there is nothing to check.
    fn confirm_lease(&self) -> Result<(), StateError> {
        super::test_hooks::stop_point("irreversible");
        match &self.remote {
            Some(pg) => pg.confirm_lease(),
            None => Ok(()),
        }
    }

    /// Saves like [`save`](Self::save), but only if state.json still holds `expected` (what
    /// this run read or last wrote). Otherwise someone changed it under the lock (a hand edit,
    /// another checkout's state copied in): nothing is written, and the error names what
    /// changed, so the run stops instead of overwriting it.
    pub fn save_if_unchanged(&self, state: &mut State, expected: &State) -> Result<(), StateError> {
        if self.remote.is_some() {
            state.bind_fingerprints(super::fingerprint::key());
            return self.write(state, Some(expected));
        }
        let path = self.state_path();
        let on_disk = match read_state_text(&path)? {
            Some(text) => Some(parse_state(&path, &text)?),
            None => None,
        };
        let unchanged = match &on_disk {
            Some(disk) => disk == expected,
            None => expected.serial == 0,
        };
        if !unchanged {
            return Err(StateError::ChangedSinceRead {
                path: self.state_path().display().to_string(),
                what: what_changed(expected, on_disk.as_ref()),
            });
        }
        self.save(state)
    }
}

/// The text of state.json; none when there is no state yet. A dangling state.json symlink
/// is not "no state yet": it is refused, before any write.
fn read_state_text(path: &Path) -> Result<Option<String>, StateError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_symlink(path) => Ok(None),
        Err(source) => Err(StateError::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Parses the text of the state file at `path`: a manifest, with its shards read from beside
/// it (see [`shards`]), or a whole state (the layout before shards, read as is and written
/// back as shards by the next save). A newer format is refused before anything else is read.
pub fn parse_state(path: &Path, text: &str) -> Result<State, StateError> {
    let value = parse_head(path, text)?;
    if !shards::is_manifest(&value) {
        return parse_whole(path, value);
    }
    let state = shards::load(path, text.to_string(), || {
        Ok(read_state_text(path)?.unwrap_or_default())
    })?;
    check(path, state)
}

/// State text as JSON, with a format this build reads.
fn parse_head(path: &Path, text: &str) -> Result<serde_json::Value, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.display().to_string(),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let found = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("missing format_version".into()))?;
    if found > u64::from(FORMAT_VERSION) {
        return Err(StateError::NewerFormat {
            path: path.display().to_string(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: FORMAT_VERSION,
        });
    }
    Ok(value)
}

fn parse_whole(path: &Path, value: serde_json::Value) -> Result<State, StateError> {
    let state: State = serde_json::from_value(value).map_err(|e| StateError::Corrupt {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    check(path, state)
}

/// What every state read must hold, whatever its layout.
fn check(path: &Path, state: State) -> Result<State, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.display().to_string(),
        detail,
    };
    if state.serial == u64::MAX {
        return Err(corrupt(SERIAL_AT_MAXIMUM.into()));
    }
    if state.lineage.trim().is_empty() {
        return Err(corrupt("the lineage is empty: purchase references derive from it, so it is never regenerated; restore it from git".into()));
    }
    Ok(state)
}

/// "serial 4 -> 5; telnyx_number.grace added; …", for the changed-under-the-lock error.
fn what_changed(expected: &State, disk: Option<&State>) -> String {
    let Some(disk) = disk else {
        return "state.json was removed".into();
    };
    let mut parts = Vec::new();
    if disk.lineage != expected.lineage {
        parts.push(format!(
            "lineage {} -> {} (another state)",
            expected.lineage, disk.lineage
        ));
    }
    if disk.serial != expected.serial {
        parts.push(format!("serial {} -> {}", expected.serial, disk.serial));
    }
    let keys: std::collections::BTreeSet<&String> = expected
        .resources
        .keys()
        .chain(disk.resources.keys())
        .collect();
    for key in keys {
        match (expected.resources.get(key), disk.resources.get(key)) {
            (None, Some(_)) => parts.push(format!("{key} added")),
            (Some(_), None) => parts.push(format!("{key} removed")),
            (Some(a), Some(b)) if a != b => parts.push(format!("{key} changed")),
            _ => {}
        }
    }
    if disk.protected != expected.protected {
        parts.push("the protected ids changed".into());
    }
    if parts.is_empty() {
        parts.push("its format".into());
    }
    let shown = parts.len().min(8);
    let more = parts.len() - shown;
    let mut text = parts[..shown].join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

/// A serial cannot grow past u64::MAX; no real state gets there, so one that has was edited.
const SERIAL_AT_MAXIMUM: &str =
    "serial is 18446744073709551615 (u64::MAX), so it cannot be incremented: the file was edited by hand";

/// A dangling state.json symlink is not "no state yet": it is refused, before any write.
fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The file a write to `path` must replace: `path` itself, or, when `path` is a symlink (a
/// state/ shared by linking state.json elsewhere), the file it points to, so the link is
/// kept. A dangling link is refused: there is nothing sensible to write through to.
fn write_target(path: &Path) -> Result<PathBuf, StateError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|source| StateError::Io {
                action: "follow the symlink",
                path: path.display().to_string(),
                source,
            })
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// Writes a file so that readers see either the old or the new content: a temp file in the
/// same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let path = &write_target(path)?;
    let io = |action: &'static str, source: std::io::Error| StateError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let mut file = fs::File::create(&tmp).map_err(|e| io("create a temp file for", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io("rename into place", e))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_state_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        let state = store.load().unwrap();
        assert!(state.resources.is_empty());
        assert!(!store.dir().exists());
    }

    #[test]
    fn save_bumps_serial_and_keeps_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let mut state = State::new();
        store.save(&mut state).unwrap();
        store.save(&mut state).unwrap();
        assert_eq!(store.load().unwrap().serial, 2);
        let backup: State =
            serde_json::from_str(&fs::read_to_string(store.backup_path()).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
    }

    #[test]
    fn newer_format_is_refused() {
        let err = parse_state(
            Path::new("state.json"),
            r#"{"format_version": 99, "lineage": "x", "serial": 1}"#,
        )
        .unwrap_err();
        assert!(matches!(err, StateError::NewerFormat { found: 99, .. }));
    }

    #[test]
    fn truncated_file_is_corrupt() {
        let err =
            parse_state(Path::new("state.json"), r#"{"format_version": 1, "lin"#).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }));
    }
}
