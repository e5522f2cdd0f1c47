//! `cwa import [--out lines.toml]`: read the live account, record what lines.toml already
//! declares in state as it is live, and declare the rest. Writes nothing to any provider,
//! and nothing at all when the result would not validate.

use std::time::Duration;

use miette::miette;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::import::{self, ImportInput};
use crate::render;
use crate::session::{self, Session};
use crate::state::StateLock;
use crate::ExitStatus;

/// Runs `cwa import`.
pub async fn import(global: &GlobalArgs, args: &ImportArgs) -> miette::Result<ExitStatus> {
    let base = match std::fs::read_to_string(&args.out) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(miette!("cannot read {}: {e}", args.out.display())),
    };
    import::check_base(&args.out, &base)?;
    let session = Session::open_for_import(global).await?;
    let result = run(&session, args, &base).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &ImportArgs, base: &str) -> miette::Result<ExitStatus> {
    let store = session.store();
    let _lock = StateLock::acquire(&store, "import", Duration::ZERO)?;
    let state = store.load()?;
    let (live, readable) = session.read_account(&state).await?;
    let imported = import::import(&ImportInput {
        path: &args.out,
        base,
        state: &state,
        live: &live,
        secrets: &session.secrets,
    })?;
    session::write_file(&args.out, &imported.text)?;
    let mut new_state = imported.state.clone();
    store.save(&mut new_state)?;
    crate::out!(
        "{}",
        render::import::summary(&imported, &args.out, &readable, &session.store().describe())
    );
    Ok(ExitStatus::Success)
}
