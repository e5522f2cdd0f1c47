//! Independent audit (red team) of the state work that landed this session: sharded state
//! files (issue 17) attacked the way a user or a pull request could, over the real binary and
//! the sandbox. A case whose fix belongs to `src/state/` (owned elsewhere) is committed as
//! `#[ignore = "..."]` with what breaks.

use std::path::Path;

use crate::common::{assert_exit, stderr, Ctx, NEW_CHURCHES};

/// Every file under `dir`, recursively (symlinks not followed), as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// A committed `state/shards` (or `state/shards-backup`) that is a symlink to a directory
/// outside state/ (a pull request can commit one; git stores the link, not the files):
/// the save must not put state outside state/ (where git does not see it, so the next
/// checkout's manifest names shards it does not have) nor add or collect files there. Refused with
/// a diagnostic before any provider write, or the link replaced by a real directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_shards_directory_never_redirects_a_write_outside_state() {
    for link in ["shards", "shards-backup"] {
        let ctx = Ctx::runbook().await;
        assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), "not cwa's").unwrap();
        // The directory's files move to where the link points, so the state stays whole.
        let dir = ctx.path(&format!("state/{link}"));
        std::fs::create_dir_all(&dir).unwrap();
        for name in files_under(&dir) {
            std::fs::rename(dir.join(&name), outside.path().join(&name)).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(outside.path(), &dir).unwrap();
        let before = files_under(outside.path());
        assert_exit(&ctx.cwa(&["plan"]).await, 0);
        ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
        let out = ctx.cwa(&["apply", "--auto-approve"]).await;
        assert_eq!(
            files_under(outside.path()),
            before,
            "{link}: state written outside state/ (exit {:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        if out.status.code() == Some(0) {
            let meta = std::fs::symlink_metadata(ctx.path(&format!("state/{link}"))).unwrap();
            assert!(!meta.file_type().is_symlink(), "{link}: the link is kept");
        } else {
            assert!(stderr(&out).contains("cwa::state::"), "{}", stderr(&out));
        }
    }
}
