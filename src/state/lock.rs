//! The lock on state/: one apply at a time. The lock file says who holds it, so a second run
//! can say whom it is waiting for, and a lock left by a dead process can be told apart.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{StateError, StateStore};

/// What the lock file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub holder: String,
    pub pid: u32,
    pub time: String,
    pub operation: String,
    /// When the holder process started (`/proc/PID/stat` field 22, clock ticks since boot) and
    /// the boot it ran in, so a pid reused by an unrelated process after the holder died is
    /// not mistaken for the holder. Absent in locks written by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<ProcessStart>,
}

/// Identifies one process beyond its pid: its start time in one boot of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStart {
    pub boot_id: String,
    pub ticks: u64,
}

impl ProcessStart {
    /// The start of process `pid`, if it runs here and /proc says so.
    pub fn of(pid: u32) -> Option<Self> {
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ticks = proc_stat(pid)?.1;
        Some(Self {
            boot_id: boot_id.trim().to_string(),
            ticks,
        })
    }
}

/// `(state, starttime)` from `/proc/PID/stat`. The command name (field 2) is in parentheses
/// and may itself hold spaces and parentheses, so fields are counted after its last `)`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the command: state is field 3, starttime field 22, so 18 more fields on.
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((state, ticks))
}

/// What taking or holding the lock (or the PostgreSQL lease) found that the person running
/// cwa must be told. This module decides it; a view (`render::state::lock_notice`) says it;
/// `commands` connects the two once per run ([`on_notice`]). A notice can arrive at any
/// moment (a lease is lost while an apply runs, from its renewal task), so it is an event
/// handed to the sink, not a value returned to one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockNotice {
    /// The lock file of a process no longer running on this machine was taken over.
    LockTakenOver { stale: LockInfo },
    /// An expired lease was taken over: its holder is fenced out from generation `to` on,
    /// and what it sent is reconciled from the journal before planning.
    LeaseTakenOver {
        /// The URL (without password) and workspace.
        target: String,
        previous: LockInfo,
        expired_at: String,
        from: i64,
        to: i64,
    },
    /// Another cwa took over the lease this process held at `generation`: nothing more this
    /// run does is written.
    LeaseLost { target: String, generation: i64 },
}

/// Where notices go. Unset (the library used without a command), they are logged.
static NOTICE_SINK: std::sync::OnceLock<fn(&LockNotice)> = std::sync::OnceLock::new();

/// Sends every later [`LockNotice`] of this process to `sink` (the first call wins: one
/// process, one view).
pub fn on_notice(sink: fn(&LockNotice)) {
    let _ = NOTICE_SINK.set(sink);
}

/// Hands a notice to the sink [`on_notice`] installed, or to the log when there is none.
pub(super) fn notify(notice: LockNotice) {
    match NOTICE_SINK.get() {
        Some(sink) => sink(&notice),
        None => tracing::warn!("{notice:?}"),
    }
}

/// A held lock (lock.json), or a held lease (PostgreSQL); released when dropped.
#[derive(Debug)]
pub enum StateLock {
    File { path: PathBuf },
    Lease(std::sync::Arc<super::pg::PgBackend>),
}

impl StateLock {
    /// Takes the lock, waiting up to `wait` for a live holder to let go.
    pub fn acquire(
        store: &StateStore,
        operation: &str,
        wait: Duration,
    ) -> Result<Self, StateError> {
        if let Some(pg) = store.remote() {
            pg.acquire(operation, wait)?;
            return Ok(Self::Lease(pg.clone()));
        }
        super::shards::refuse_linked_directories(&store.state_path())?;
        let deadline = Instant::now() + wait;
        loop {
            match Self::try_acquire(store, operation) {
                Err(StateError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    fn try_acquire(store: &StateStore, operation: &str) -> Result<Self, StateError> {
        let path = store.lock_path();
        fs::create_dir_all(store.dir()).map_err(|e| io("create the directory of", &path, e))?;
        let mine = LockInfo {
            holder: holder_name(),
            pid: std::process::id(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            operation: operation.to_string(),
            started: ProcessStart::of(std::process::id()),
        };
        match create_complete(&path, &mine) {
            Ok(()) => Ok(Self::File { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held = match read_info(store) {
                    Err(StateError::NotLocked) => return Self::try_acquire(store, operation),
                    other => other?,
                };
                if !left_by_dead_process_here(&held) {
                    return Err(held_error(held));
                }
                super::test_hooks::stop_point("lock-stale-seen");
                match take_over(store, &held, &mine)? {
                    TakeOver::Taken => {
                        notify(LockNotice::LockTakenOver { stale: held });
                        Ok(Self::File { path })
                    }
                    TakeOver::Changed => Self::try_acquire(store, operation),
                    TakeOver::Busy => Err(StateError::Locked {
                        holder: format!("another cwa taking over the lock of {}", held.holder),
                        pid: held.pid,
                        time: held.time,
                    }),
                    TakeOver::Unguarded => Err(held_error(held)),
                }
            }
            Err(e) => Err(io("create", &path, e)),
        }
    }

    /// Removes a lock. Without `force`, refuses while its holder is still running.
    pub fn force_unlock(store: &StateStore, force: bool) -> Result<LockInfo, StateError> {
        if let Some(pg) = store.remote() {
            return pg.unlock(force);
        }
        let Guard::Held(_guard) = Guard::take(store)? else {
            let info = read_info(store)?;
            return Err(StateError::Locked {
                holder: format!("another cwa taking over the lock of {}", info.holder),
                pid: info.pid,
                time: info.time,
            });
        };
        let info = read_info(store)?;
        if !force && holder_alive(&info) && info.pid != std::process::id() {
            return Err(StateError::Locked {
                holder: info.holder,
                pid: info.pid,
                time: info.time,
            });
        }
        fs::remove_file(store.lock_path()).map_err(|e| io("remove", &store.lock_path(), e))?;
        Ok(info)
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        match self {
            Self::File { path } => {
                // Only this process's own lock: one that was taken over (as stale) in the
                // meantime belongs to its new holder.
                let ours = fs::read(&*path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<LockInfo>(&bytes).ok())
                    .is_some_and(|info| is_this_process(&info));
                if ours {
                    let _ = fs::remove_file(path);
                }
            }
            Self::Lease(pg) => pg.release(),
        }
    }
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// Writes `info` to a temp file beside the lock, synced, so that the lock can appear with its
/// whole content at once (no other process ever reads it empty or half-written).
fn write_temp(path: &Path, info: &LockInfo) -> std::io::Result<PathBuf> {
    let json = serde_json::to_vec_pretty(info).unwrap_or_default();
    let tmp = path.with_file_name(format!(".lock.json.{}.tmp", std::process::id()));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    Ok(tmp)
}

/// Creates the lock file, failing with `AlreadyExists` when a lock is there: the temp file is
/// hard-linked into place. Where hard links are not supported, falls back to
/// create-then-write.
fn create_complete(path: &Path, info: &LockInfo) -> std::io::Result<()> {
    let tmp = write_temp(path, info)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            file.write_all(&serde_json::to_vec_pretty(info).unwrap_or_default())?;
            file.sync_all()
        }
        other => other,
    }
}

/// How an attempt to take over a stale lock ended.
enum TakeOver {
    /// The stale lock was replaced by this process's own: it holds the lock.
    Taken,
    /// The lock is no longer the one judged stale (another process took it over, or it was
    /// released): judge again.
    Changed,
    /// Another process is taking it over at this instant.
    Busy,
    /// The file system offers no exclusive lock to guard a take-over: refuse it.
    Unguarded,
}

/// Replaces a stale lock with this process's own, so that of several processes taking over
/// one stale lock exactly one ends up holding it. Takers (and `state unlock`) serialize on an
/// exclusive `flock` of the state directory, which the kernel releases when its process
/// dies, so a taker killed halfway blocks no one. Under it the lock is read again and
/// replaced only if it is still the one judged stale, by renaming a complete lock file over
/// it: the lock file never disappears, so no process creating a lock gets in between, and
/// a dead holder's lock cannot change by itself.
fn take_over(
    store: &StateStore,
    stale: &LockInfo,
    mine: &LockInfo,
) -> Result<TakeOver, StateError> {
    let _guard = match Guard::take(store)? {
        Guard::Held(file) => file,
        Guard::Busy => return Ok(TakeOver::Busy),
        Guard::Unsupported => return Ok(TakeOver::Unguarded),
    };
    match read_info(store) {
        Ok(now) if now == *stale => {}
        Ok(_) | Err(StateError::NotLocked) => return Ok(TakeOver::Changed),
        Err(e) => return Err(e),
    }
    super::test_hooks::stop_point("lock-taking-over");
    let path = store.lock_path();
    let tmp = write_temp(&path, mine).map_err(|e| io("write the new", &path, e))?;
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io("replace the stale", &path, e));
    }
    Ok(TakeOver::Taken)
}

/// The exclusive `flock` on the state directory that serializes take-overs of its lock.
enum Guard {
    Held(fs::File),
    Busy,
    Unsupported,
}

impl Guard {
    fn take(store: &StateStore) -> Result<Self, StateError> {
        let dir = fs::File::open(store.dir()).map_err(|e| io("open", store.dir(), e))?;
        Ok(match flock_exclusive(&dir) {
            Ok(()) => Self::Held(dir),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Self::Busy,
            Err(_) => Self::Unsupported,
        })
    }
}

#[cfg(unix)]
fn flock_exclusive(file: &fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn flock_exclusive(_file: &fs::File) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

fn read_info(store: &StateStore) -> Result<LockInfo, StateError> {
    let path = store.lock_path();
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        // A link to nothing is there for `create` and gone for `read`: never "not locked",
        // or acquiring would retry for ever (a stack overflow, exit 134).
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && fs::symlink_metadata(&path).is_ok() =>
        {
            return Err(StateError::Corrupt {
                path: path.display().to_string(),
                detail: "the lock file is a symbolic link to nothing; remove the link".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotLocked),
        Err(source) => return Err(io("read", &path, source)),
    };
    serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        path: path.display().to_string(),
        detail: format!(
            "the lock file is unreadable ({e}); remove it with `cwa state unlock --force`"
        ),
    })
}

fn held_error(info: LockInfo) -> StateError {
    if holder_alive(&info) {
        StateError::Locked {
            holder: info.holder,
            pid: info.pid,
            time: info.time,
        }
    } else {
        StateError::StaleLock {
            holder: info.holder,
            pid: info.pid,
            time: info.time,
        }
    }
}

/// Whether this process wrote the lock.
fn is_this_process(info: &LockInfo) -> bool {
    info.pid == std::process::id() && info.started == ProcessStart::of(info.pid)
}

/// A lock whose holder ran on this machine and whose process is gone cannot be in use.
fn left_by_dead_process_here(info: &LockInfo) -> bool {
    let here = holder_name();
    let host = |h: &str| h.rsplit_once('@').map(|(_, host)| host.to_string());
    host(&info.holder) == host(&here) && !holder_alive(info)
}

/// Whether the process that wrote this lock still runs: its pid is alive and, when the lock
/// says when its holder started, the process with that pid is the same one (not a pid
/// reused after the holder died, nor one from before a reboot).
fn holder_alive(info: &LockInfo) -> bool {
    if !process_alive(info.pid) {
        return false;
    }
    match (&info.started, ProcessStart::of(info.pid)) {
        (Some(recorded), Some(now)) => *recorded == now,
        _ => true,
    }
}

/// Whether a process with this pid runs on this machine (Linux: /proc). A zombie (exited,
/// not yet reaped by its parent) or a dead task holds nothing and counts as gone.
pub(super) fn process_alive(pid: u32) -> bool {
    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return false;
    }
    !matches!(proc_stat(pid), Some(('Z' | 'X' | 'x', _)))
}

/// `user@host`: CWA_OPERATOR, else GITHUB_ACTOR (CI), else git's user.email, else USER.
pub fn holder_name() -> String {
    let user = std::env::var("CWA_OPERATOR")
        .or_else(|_| std::env::var("GITHUB_ACTOR"))
        .ok()
        .or_else(git_user)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let host = fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// The committer identity git would use here, if git is installed and configured.
fn git_user() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["config", "user.email"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let email = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !email.is_empty()).then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive_and_a_reused_pid_is_not_the_holder() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not waited for yet: once it exits it is a zombie until reaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc_stat(pid).map(|s| s.0) != Some('Z') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!process_alive(pid), "a zombie counts as gone");
        child.wait().unwrap();

        let me = std::process::id();
        let mut info = LockInfo {
            holder: holder_name(),
            pid: me,
            time: "t".into(),
            operation: "apply".into(),
            started: ProcessStart::of(me),
        };
        assert!(holder_alive(&info));
        info.started.as_mut().unwrap().ticks += 1;
        assert!(!holder_alive(&info), "same pid, another process");
    }

    #[test]
    fn second_acquire_fails_while_held_and_succeeds_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let lock = StateLock::acquire(&store, "apply", Duration::ZERO).unwrap();
        let err = StateLock::acquire(&store, "apply", Duration::ZERO).unwrap_err();
        assert!(matches!(err, StateError::Locked { .. }));
        drop(lock);
        StateLock::acquire(&store, "apply", Duration::ZERO).unwrap();
    }

    #[test]
    fn lock_of_dead_process_is_stale_and_unlockable() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let info = LockInfo {
            holder: "ci@another-machine".into(),
            pid: u32::MAX - 1,
            time: "2026-01-01T00:00:00Z".into(),
            operation: "apply".into(),
            started: None,
        };
        fs::write(store.lock_path(), serde_json::to_vec(&info).unwrap()).unwrap();
        let err = StateLock::acquire(&store, "apply", Duration::ZERO).unwrap_err();
        assert!(matches!(err, StateError::StaleLock { .. }));
        StateLock::force_unlock(&store, false).unwrap();
        assert!(!store.lock_path().exists());
    }
}
