//! The state directory at scale: `state.json` is a small manifest (lineage, serial,
//! protections, the fingerprint key id, and the list of shards), and the resources live in
//! immutable, content-addressed shard files under `shards/`.
//!
//! Why: one file of every resource is 143 MB at 100,000 lines (over GitHub's 100 MB limit and
//! unreviewable). Resources are spread over a power of two of buckets by a hash of their
//! address's name (after the kind), so the number, trunk and rule of one church share a shard
//! and a one-line change to lines.toml rewrites one shard and a few lines of the manifest.
//!
//! Atomic across files: a save writes the shards it needs under new names (their content's
//! hash), fsyncs them, then writes the manifest by temp file and rename (the one commit
//! point), and only then moves the shards the new manifest no longer names. A crash at any
//! instant leaves the previous manifest with all its shards, or the new one with all its
//! shards. The previous manifest is kept as `state.json.backup` and its shards that the new
//! one dropped move to `shards-backup/` (per machine, not committed), so the backup stays
//! whole and a reader one save behind still finds what it read.
//!
//! A shard is never written through a symlink: a save that needs different content writes a
//! new regular file, and garbage collection removes a link, never what it points to. A shard
//! that is a symlink is read through, like state.json; a dangling one is refused.
//!
//! The crash tests kill a save at each step with `CWA_TEST_CRASH_AT=MOMENT:N`: `save-shard`
//! (after each new shard file), `save-shards-written`, `save-backup`, `save-manifest` (after
//! the manifest's rename), `save-gc` (after each shard collected).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::test_hooks::crash_point;
use super::{State, StateError, StateResource};

/// The folder of the shards the manifest names (committed).
pub const SHARDS_DIR: &str = "shards";
/// The folder of the shards only the backup manifest names (per machine).
pub const BACKUP_SHARDS_DIR: &str = "shards-backup";
/// How many names a shard holds on average before the buckets double: at 100,000 lines, 256
/// shards of about 0.6 MB.
const NAMES_PER_SHARD: usize = 512;
/// How often a reader retries when the manifest it read was replaced under it.
const READ_ATTEMPTS: usize = 20;

/// What state.json holds in the sharded layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format_version: u32,
    lineage: String,
    serial: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint_key_id: Option<String>,
    #[serde(default)]
    protected: BTreeMap<String, String>,
    /// How many buckets addresses are hashed into (a power of two).
    buckets: u32,
    /// Every non-empty bucket's shard, in bucket order.
    shards: Vec<ShardRef>,
}

/// One shard as the manifest names it: the file (relative to the manifest's directory), the
/// SHA-256 of its bytes, and how many resources it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardRef {
    file: String,
    sha256: String,
    resources: usize,
}

/// What a shard file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shard {
    bucket: u32,
    buckets: u32,
    resources: BTreeMap<String, StateResource>,
}

/// True when state text is a manifest (it names shards) rather than a whole state.
pub fn is_manifest(value: &serde_json::Value) -> bool {
    value.get("shards").is_some()
}

/// The directory the shards of the manifest at `manifest_path` live in: the manifest's own,
/// through a symlinked state.json (a state/ shared by linking it elsewhere keeps its shards
/// beside the real manifest).
pub fn data_dir(manifest_path: &Path) -> Result<PathBuf, StateError> {
    let real = match fs::symlink_metadata(manifest_path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(manifest_path).map_err(|source| StateError::Io {
                action: "follow the symlink",
                path: manifest_path.display().to_string(),
                source,
            })?
        }
        _ => manifest_path.to_path_buf(),
    };
    Ok(real
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf())
}

/// Refuses a `shards/` or `shards-backup/` directory that is a symlink, before any write: a
/// pull request can commit one, and a save through it would put state (or collect files)
/// outside state/, where git never sees it. Reading through it stays allowed.
pub fn refuse_linked_directories(manifest_path: &Path) -> Result<(), StateError> {
    let dir = data_dir(manifest_path)?;
    for name in [SHARDS_DIR, BACKUP_SHARDS_DIR] {
        let path = dir.join(name);
        if is_symlink(&path) {
            return Err(StateError::LinkedDirectory {
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Reads the state a manifest names: every shard found, its hash checked, every resource in
/// the bucket its address hashes to. `reread` gives the manifest's current text, so a reader
/// whose manifest was replaced under it (a save's garbage collection moved a shard it wanted)
/// starts again from the new one instead of reporting a missing shard.
pub fn load(
    manifest_path: &Path,
    mut text: String,
    reread: impl Fn() -> Result<String, StateError>,
) -> Result<State, StateError> {
    let dir = data_dir(manifest_path)?;
    for _ in 0..READ_ATTEMPTS {
        match load_once(manifest_path, &dir, &text) {
            Err(Missing(e)) => {
                let now = reread()?;
                if now == text {
                    return Err(e);
                }
                text = now;
            }
            Ok(state) => return Ok(state),
        }
    }
    load_once(manifest_path, &dir, &text).map_err(|Missing(e)| e)
}

/// An error reading a manifest's shards; only a missing shard is worth a retry.
struct Missing(StateError);

fn load_once(manifest_path: &Path, dir: &Path, text: &str) -> Result<State, Missing> {
    let corrupt = |path: &Path, detail: String| {
        Missing(StateError::Corrupt {
            path: path.display().to_string(),
            detail,
        })
    };
    let manifest: Manifest =
        serde_json::from_str(text).map_err(|e| corrupt(manifest_path, e.to_string()))?;
    if !manifest.buckets.is_power_of_two() {
        return Err(corrupt(
            manifest_path,
            format!("buckets is {}, not a power of two", manifest.buckets),
        ));
    }
    let mut resources = BTreeMap::new();
    for shard_ref in &manifest.shards {
        let shard = read_shard(manifest_path, dir, shard_ref, manifest.buckets)?;
        for (addr, r) in shard {
            if resources.insert(addr.clone(), r).is_some() {
                return Err(corrupt(
                    &dir.join(&shard_ref.file),
                    format!("{addr} is in two shards"),
                ));
            }
        }
    }
    Ok(State {
        format_version: manifest.format_version,
        lineage: manifest.lineage,
        serial: manifest.serial,
        resources,
        protected: manifest.protected,
        remembered: BTreeMap::new(),
        fingerprint_key_id: manifest.fingerprint_key_id,
    })
}

/// One shard's resources, checked against what the manifest says of it.
fn read_shard(
    manifest_path: &Path,
    dir: &Path,
    shard_ref: &ShardRef,
    buckets: u32,
) -> Result<BTreeMap<String, StateResource>, Missing> {
    let help = "state.json names it";
    let corrupt = |path: &Path, detail: String| {
        Missing(StateError::Corrupt {
            path: path.display().to_string(),
            detail,
        })
    };
    let name = shard_file_name(&shard_ref.file).ok_or_else(|| {
        corrupt(
            manifest_path,
            format!("{} is not a shard file name", shard_ref.file),
        )
    })?;
    let path = dir.join(SHARDS_DIR).join(name);
    let bytes = match read_either(&path, &dir.join(BACKUP_SHARDS_DIR).join(name)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_symlink(&path) => {
            return Err(Missing(StateError::Corrupt {
                path: path.display().to_string(),
                detail: format!("the shard is missing ({help}); its resources would be dropped, so nothing is read"),
            }));
        }
        Err(source) => {
            return Err(Missing(StateError::Io {
                action: "read the shard",
                path: path.display().to_string(),
                source,
            }))
        }
    };
    let found = hex::encode(Sha256::digest(&bytes));
    if found != shard_ref.sha256 {
        return Err(corrupt(
            &path,
            format!("the shard was edited: its SHA-256 is {found}, not the {} that state.json names (shards are written by cwa only)", shard_ref.sha256),
        ));
    }
    let shard: Shard = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e.to_string()))?;
    if shard.buckets != buckets || shard.resources.len() != shard_ref.resources {
        return Err(corrupt(
            &path,
            format!(
                "the shard says {} resources of {} buckets; state.json says {} of {buckets}",
                shard.resources.len(),
                shard.buckets,
                shard_ref.resources
            ),
        ));
    }
    if let Some(addr) = shard
        .resources
        .keys()
        .find(|a| bucket_of(a, buckets) != shard.bucket)
    {
        return Err(corrupt(
            &path,
            format!("{addr} does not belong in bucket {}", shard.bucket),
        ));
    }
    Ok(shard.resources)
}

/// Reads `path`, or `fallback` when `path` does not exist (a shard the last save moved to the
/// backup folder, or a backup restored by copying state.json.backup over state.json).
fn read_either(path: &Path, fallback: &Path) -> std::io::Result<Vec<u8>> {
    match fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_symlink(path) => {
            fs::read(fallback).map_err(|_| e)
        }
        other => other,
    }
}

/// `shards/NAME` → NAME, for names cwa writes only (`BUCKET-HASH.json`): a manifest naming
/// anything else (`../../etc/passwd`) is corrupt.
fn shard_file_name(file: &str) -> Option<&str> {
    let name = file.strip_prefix("shards/")?;
    is_shard_name(name).then_some(name)
}

fn is_shard_name(name: &str) -> bool {
    let Some((bucket, rest)) = name.split_once('-') else {
        return false;
    };
    let Some(hash) = rest.strip_suffix(".json") else {
        return false;
    };
    let hexes = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    hexes(bucket, 4) && hexes(hash, 16)
}

/// The bucket of an address: a hash of its name (after `kind.`), so every resource of one
/// church shares a shard.
fn bucket_of(address: &str, buckets: u32) -> u32 {
    let name = address.split_once('.').map_or(address, |(_, n)| n);
    let digest = Sha256::digest(name.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & (buckets - 1)
}

/// How many buckets `state` is spread over: the previous count while it fits (so shards keep
/// their content between saves), doubled when shards grow past [`NAMES_PER_SHARD`] on
/// average, shrunk when they fall under an eighth of it.
fn bucket_count(state: &State, previous: Option<u32>) -> u32 {
    let names: BTreeSet<&str> = state
        .resources
        .keys()
        .map(|a| a.split_once('.').map_or(a.as_str(), |(_, n)| n))
        .collect();
    let names = names.len();
    let ideal = names.div_ceil(NAMES_PER_SHARD).max(1).next_power_of_two();
    let ideal = u32::try_from(ideal).unwrap_or(1 << 16).min(1 << 16);
    match previous.filter(|p| p.is_power_of_two()) {
        Some(p)
            if names <= p as usize * NAMES_PER_SHARD
                && (p == 1 || names * 8 >= p as usize * NAMES_PER_SHARD) =>
        {
            p
        }
        _ => ideal,
    }
}

/// A shard's file name and bytes, as a save writes them.
type ShardFile = (String, Vec<u8>);

/// The manifest of `state` and the bytes of each of its shards, by file name.
fn build(state: &State, previous: Option<u32>) -> Result<(Manifest, Vec<ShardFile>), StateError> {
    let buckets = bucket_count(state, previous);
    let mut by_bucket: BTreeMap<u32, BTreeMap<String, StateResource>> = BTreeMap::new();
    for (addr, r) in &state.resources {
        by_bucket
            .entry(bucket_of(addr, buckets))
            .or_default()
            .insert(addr.clone(), r.clone());
    }
    let mut refs = Vec::new();
    let mut files = Vec::new();
    for (bucket, resources) in by_bucket {
        let count = resources.len();
        let shard = Shard {
            bucket,
            buckets,
            resources,
        };
        let bytes = pretty(&shard)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let name = format!("{bucket:04x}-{}.json", &sha256[..16]);
        refs.push(ShardRef {
            file: format!("{SHARDS_DIR}/{name}"),
            sha256,
            resources: count,
        });
        files.push((name, bytes));
    }
    let manifest = Manifest {
        format_version: state.format_version,
        lineage: state.lineage.clone(),
        serial: state.serial,
        fingerprint_key_id: state.fingerprint_key_id.clone(),
        protected: state.protected.clone(),
        buckets,
        shards: refs,
    };
    Ok((manifest, files))
}

fn pretty<T: Serialize>(value: &T) -> Result<Vec<u8>, StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Corrupt {
        path: "state".into(),
        detail: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Saves `state` as a manifest at `manifest_path` and its shards, in the order that keeps
/// every instant whole (see the module's doc); `backup` writes the previous manifest's bytes
/// as the backup, after the new shards and before the new manifest.
pub fn save(
    manifest_path: &Path,
    state: &State,
    previous: Option<&[u8]>,
    backup: impl FnOnce(&[u8]) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let dir = data_dir(manifest_path)?;
    let old: Option<Manifest> = previous.and_then(|p| serde_json::from_slice(p).ok());
    let (manifest, files) = build(state, old.as_ref().map(|m| m.buckets))?;
    let shards = dir.join(SHARDS_DIR);
    for (name, bytes) in &files {
        write_shard(&shards.join(name), bytes)?;
        crash_point("save-shard");
    }
    sync_dir(&shards);
    crash_point("save-shards-written");
    if let Some(previous) = previous {
        backup(previous)?;
    }
    crash_point("save-backup");
    super::store::write_atomic(manifest_path, &pretty(&manifest)?)?;
    crash_point("save-manifest");
    collect_garbage(&dir, &manifest, old.as_ref());
    Ok(())
}

/// Writes a shard unless a regular file of that name already holds exactly these bytes (the
/// name is their hash: an unchanged shard is not rewritten). A symlink or a file with other
/// bytes in its place is replaced by rename, never written through.
fn write_shard(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let regular = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    if regular && fs::read(path).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    let io = |action: &'static str, source: std::io::Error| StateError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("shard");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(|e| io("create a temp file for", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io("rename into place", e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// After the new manifest is in place: shards it does not name move to the backup folder when
/// the previous manifest (now the backup) names them, and are removed otherwise; the backup
/// folder keeps only what the backup names; temp files of dead writers go. Best effort: what
/// a crash here leaves is swept by the next save, and no manifest names it.
fn collect_garbage(dir: &Path, current: &Manifest, previous: Option<&Manifest>) {
    let names = |m: &Manifest| -> BTreeSet<String> {
        m.shards
            .iter()
            .filter_map(|s| shard_file_name(&s.file).map(str::to_string))
            .collect()
    };
    let keep = names(current);
    let backed_up: BTreeSet<String> = previous
        .map(names)
        .unwrap_or_default()
        .difference(&keep)
        .cloned()
        .collect();
    let shards = dir.join(SHARDS_DIR);
    let backup = dir.join(BACKUP_SHARDS_DIR);
    if !backed_up.is_empty() {
        let _ = fs::create_dir_all(&backup);
    }
    for name in listed(&shards) {
        if is_shard_name(&name) && !keep.contains(&name) {
            let from = shards.join(&name);
            if backed_up.contains(&name) && !is_symlink(&from) {
                let _ = fs::rename(&from, backup.join(&name));
            } else {
                let _ = fs::remove_file(&from);
            }
            crash_point("save-gc");
        }
    }
    for name in listed(&backup) {
        if is_shard_name(&name) && !backed_up.contains(&name) {
            let _ = fs::remove_file(backup.join(&name));
        }
    }
    for folder in [&shards, &backup] {
        remove_temp_files_of_dead_writers(folder);
    }
    sync_dir(&shards);
}

fn listed(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A writer killed mid-save leaves its temp file (`.NAME.tmp.<pid>`); it is never named by a
/// manifest, and state/ is committed to git, so it is swept on the next save.
pub fn remove_temp_files_of_dead_writers(dir: &Path) {
    for name in listed(dir) {
        let pid = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp."))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !super::lock::process_alive(pid) {
                let _ = fs::remove_file(dir.join(&name));
            }
        }
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Spec;

    fn state_of(n: usize) -> State {
        use crate::model::{NumberSpec, TelnyxNumberSpec, E164};
        let mut state = State::new();
        for i in 0..n {
            let spec = Spec::TelnyxNumber(TelnyxNumberSpec {
                number: NumberSpec::Fixed {
                    number: E164::parse(&format!("+1414{:07}", i)).unwrap(),
                },
                connection: None,
                tags: vec![],
                settings: Default::default(),
            });
            state.resources.insert(
                format!("telnyx_number.c{i}"),
                StateResource {
                    id: i.to_string(),
                    spec,
                    church: None,
                    protected: false,
                },
            );
        }
        state
    }

    #[test]
    fn buckets_grow_with_names_and_stay_put_in_between() {
        assert_eq!(bucket_count(&state_of(10), None), 1);
        assert_eq!(bucket_count(&state_of(600), None), 2);
        assert_eq!(bucket_count(&state_of(600), Some(1)), 2);
        assert_eq!(bucket_count(&state_of(300), Some(2)), 2);
        assert_eq!(bucket_count(&state_of(10), Some(2)), 1);
    }

    #[test]
    fn a_round_trip_keeps_every_resource_and_reuses_unchanged_shards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = state_of(1_500);
        save(&path, &state, None, |_| Ok(())).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let back = load(&path, text.clone(), || Ok(text.clone())).unwrap();
        assert_eq!(back.resources, state.resources);
        let before: BTreeSet<String> = listed(&dir.path().join(SHARDS_DIR)).into_iter().collect();
        assert_eq!(before.len(), 4);
        state.resources.get_mut("telnyx_number.c7").unwrap().id = "changed".into();
        let previous = fs::read(&path).unwrap();
        save(&path, &state, Some(&previous), |_| Ok(())).unwrap();
        let after: BTreeSet<String> = listed(&dir.path().join(SHARDS_DIR)).into_iter().collect();
        assert_eq!(
            before.intersection(&after).count(),
            3,
            "one shard rewritten"
        );
        assert_eq!(listed(&dir.path().join(BACKUP_SHARDS_DIR)).len(), 1);
    }

    #[test]
    fn only_names_cwa_writes_are_shards() {
        assert!(shard_file_name("shards/00a3-0123456789abcdef.json").is_some());
        for bad in [
            "shards/../x.json",
            "../shards/00a3-0123456789abcdef.json",
            "shards/00a3.json",
        ] {
            assert!(shard_file_name(bad).is_none(), "{bad}");
        }
    }
}
