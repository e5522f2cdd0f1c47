//! What `cwa add church` and `cwa remove church` say about the edit they made to lines.toml
//! (the plan that follows is the plan view's).

use super::escape::terminal;
use crate::model::E164;

/// The block written, and where.
pub fn added(key: &str, path: &str, line: usize, block: &str) -> String {
    let mut out = format!(
        "Added church.{key} to {} at line {line}:\n\n",
        terminal(path)
    );
    for l in block.lines() {
        out.push_str(&format!("  {}\n", terminal(l)));
    }
    out
}

/// The same church was declared already: nothing written.
pub fn unchanged(key: &str, path: &str) -> String {
    format!(
        "church.{key} is already declared in {} exactly so; nothing was written.\n",
        terminal(path)
    )
}

/// The block removed, the numbers declared kept, or those apply may release.
pub fn removed(key: &str, path: &str, kept: &[E164], to_release: &[E164]) -> String {
    let mut out = format!("Removed church.{key} from {}.\n", terminal(path));
    for n in kept {
        out.push_str(&format!(
            "  {n} stays ours: declared under [kept] (release it later by deleting that entry and applying with --release-numbers).\n"
        ));
    }
    for n in to_release {
        out.push_str(&format!(
            "  {n} is not declared kept: `cwa apply --target church.{key} --release-numbers` releases it (irreversible); without --release-numbers apply keeps it.\n"
        ));
    }
    out
}

/// When the church was never applied, there is nothing live to plan.
pub fn nothing_live(key: &str) -> String {
    format!("church.{key} was never applied: state owns nothing of it, so there is nothing live to remove.\n")
}
