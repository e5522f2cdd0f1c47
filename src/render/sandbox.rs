//! What `cwa sandbox serve|reset` says: the environment that points programs at the sandbox
//! (stdout, for `eval`), and its status lines (stderr). `commands::sandbox` decides nothing
//! beyond the flags; this view words it.

use std::path::Path;

/// The `export NAME=value` lines a shell evaluates to use the sandbox.
pub fn exports(env: &[(String, String)]) -> String {
    env.iter()
        .map(|(name, value)| format!("export {name}={value}\n"))
        .collect()
}

/// How the world being served came to be: kept as it was (`--world` seeds only an empty
/// directory), or seeded now.
pub fn world(dir: &Path, world: &str, kept: bool) -> String {
    if kept {
        format!(
            "sandbox: {} already holds a world; serving it as it is (--world {world} seeds only an empty directory; `cwa sandbox reset --world {world}` starts over)",
            dir.display()
        )
    } else {
        format!(
            "sandbox: seeded a fresh `{world}` world in {}",
            dir.display()
        )
    }
}

/// The sandbox is up.
pub fn serving(url: &str, dir: &Path) -> String {
    format!(
        "sandbox: serving {url} from {} (Ctrl-C to stop)",
        dir.display()
    )
}

/// The sandbox stopped after Ctrl-C.
pub fn stopped(dir: &Path) -> String {
    format!("sandbox: stopped; the world is saved in {}", dir.display())
}

/// `cwa sandbox reset`: the directory now holds a fresh world.
pub fn reset(dir: &Path, world: &str) -> String {
    format!(
        "sandbox: {} now holds a fresh `{world}` world",
        dir.display()
    )
}
