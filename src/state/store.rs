//! Reading and atomically writing state.json, with a backup of the previous version.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{State, StateError, FORMAT_VERSION};

/// The state directory and the files in it.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
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

    /// Reads state.json; a missing file is an empty state (nothing owned yet).
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.state_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new()),
            Err(source) => {
                return Err(StateError::Io {
                    action: "read",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        parse_state(&path, &text)
    }

    /// Writes the state atomically, bumping its serial and keeping the previous file as a
    /// backup (itself written atomically: it is what a user restores from). A crash at any
    /// instant leaves either the old or the new file, never half of one.
    pub fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        state.format_version = FORMAT_VERSION;
        let mut json = serde_json::to_string_pretty(state).map_err(|e| StateError::Corrupt {
            path: self.state_path().display().to_string(),
            detail: e.to_string(),
        })?;
        json.push('\n');
        let path = self.state_path();
        match fs::read(&path) {
            Ok(previous) => write_atomic(&self.backup_path(), &previous)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateError::Io {
                    action: "back up",
                    path: path.display().to_string(),
                    source,
                })
            }
        }
        write_atomic(&path, json.as_bytes())?;
        self.remove_temp_files_of_dead_writers();
        Ok(())
    }

    /// A writer killed mid-save leaves its temp file (`.state.json.tmp.<pid>`) behind; it never
    /// replaces state.json, but state/ is committed to git, so it is swept on the next save.
    fn remove_temp_files_of_dead_writers(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| {
                    n.strip_prefix(".state.json.tmp.")
                        .or_else(|| n.strip_prefix(".state.json.backup.tmp."))
                })
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !super::lock::process_alive(pid) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Parses state text, refusing a newer format before trying to read it as this one.
pub fn parse_state(path: &Path, text: &str) -> Result<State, StateError> {
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
    serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
}

/// Writes a file so that readers see either the old or the new content: a temp file in the
/// same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
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
