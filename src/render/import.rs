//! The view of `cwa import`'s result. [`crate::import`] decides what is recorded and
//! declared; this only says it.

use std::fmt::Write;
use std::path::Path;

use crate::import::Imported;
use crate::model::ProviderName;

/// What `cwa import` did: which providers it read, what it recorded in state and declared
/// in `out`, which providers it could not read, its notes, what to consider protecting, and
/// the declarations live does not match yet.
pub fn summary(
    imported: &Imported,
    out_path: &Path,
    read: &[ProviderName],
    state_path: &str,
) -> String {
    let mut out = String::new();
    let names: Vec<&str> = read.iter().map(|p| p.as_str()).collect();
    let _ = writeln!(
        out,
        "Read {} (nothing was written to any provider).",
        names.join(", ")
    );
    if imported.recorded.is_empty() && !imported.added.is_empty() {
        // A first import declares everything it records: "Recorded 0" read as nothing done.
        let _ = writeln!(
            out,
            "Recorded {} newly declared object(s) in {} as they are live.",
            imported.added.len(),
            state_path
        );
    } else {
        let _ = writeln!(
            out,
            "Recorded {} declared object(s) in {} as they are live.",
            imported.recorded.len(),
            state_path
        );
    }
    if imported.added.is_empty() {
        let _ = writeln!(
            out,
            "Every live object is already declared; {} is unchanged.",
            out_path.display()
        );
    } else {
        let _ = writeln!(
            out,
            "Declared {} live object(s) in {}:",
            imported.added.len(),
            out_path.display()
        );
        for a in &imported.added {
            let _ = writeln!(out, "  + {a}");
        }
    }
    for p in ProviderName::ALL.iter().filter(|p| !read.contains(p)) {
        let _ = writeln!(
            out,
            "note: {p} was not read (no credentials); its objects were not imported"
        );
    }
    for n in &imported.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for line in imported.protection.report(&out_path.display().to_string()) {
        let _ = writeln!(out, "{line}");
    }
    if !imported.pending.is_empty() {
        let _ = writeln!(
            out,
            "Live is broken where these declarations differ from it; `cwa plan` shows the fixes:"
        );
        for p in &imported.pending {
            let _ = writeln!(out, "  ~ {p}");
        }
    }
    out
}
