//! `cwa import [--out lines.toml]`: read the live account, record what lines.toml already
//! declares in state as it is live, and declare the rest. Writes nothing to any provider,
//! and nothing at all when the result would not validate.

use std::time::Duration;

use miette::miette;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::import::{self, ImportInput};
use crate::model::ProviderName;
use crate::providers;
use crate::session::{self, Session};
use crate::state::StateLock;
use crate::ExitStatus;

/// Runs `cwa import`.
pub async fn import(global: &GlobalArgs, args: &ImportArgs) -> miette::Result<ExitStatus> {
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &ImportArgs) -> miette::Result<ExitStatus> {
    let base = match std::fs::read_to_string(&args.out) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(miette!("cannot read {}: {e}", args.out.display())),
    };
    import::check_base(&args.out, &base)?;
    let store = session.store();
    let _lock = StateLock::acquire(&store, "import", Duration::ZERO)?;
    let state = store.load()?;
    let readable = readable_providers(session);
    if readable.is_empty() {
        return Err(miette!(
            help = "set TELNYX_API_KEY, LIVEKIT_URL with LIVEKIT_API_KEY/LIVEKIT_API_SECRET, or TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN (or run with --sandbox)",
            "no provider credentials: there is no live account to import"
        ));
    }
    let opts = session.client_options(&crate::model::Desired::default(), &state);
    let providers = providers::connect(&session.env, &opts, &readable)?;
    let live = session::refresh(&providers).await?;
    let imported = import::import(&ImportInput {
        path: &args.out,
        base: &base,
        state: &state,
        live: &live,
        secrets: &session.secrets,
    })?;
    session::write_file(&args.out, &imported.text)?;
    let mut new_state = imported.state.clone();
    store.save(&mut new_state)?;
    crate::out!("{}", summary(&imported, args, &readable, session));
    Ok(ExitStatus::Success)
}

/// Providers whose credentials are present: import reads the whole account, not only what
/// lines.toml mentions.
fn readable_providers(session: &Session) -> Vec<ProviderName> {
    ProviderName::ALL
        .into_iter()
        .filter(|p| {
            crate::providers::required_env(*p)
                .iter()
                .all(|n| session.env.get(n).is_some())
        })
        .collect()
}

fn summary(
    imported: &import::Imported,
    args: &ImportArgs,
    read: &[ProviderName],
    session: &Session,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let names: Vec<&str> = read.iter().map(|p| p.as_str()).collect();
    let _ = writeln!(
        out,
        "Read {} (nothing was written to any provider).",
        names.join(", ")
    );
    let state_path = session.store().describe();
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
            args.out.display()
        );
    } else {
        let _ = writeln!(
            out,
            "Declared {} live object(s) in {}:",
            imported.added.len(),
            args.out.display()
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
    for line in imported.protection.report(&args.out.display().to_string()) {
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
