//! `cwa sandbox serve|reset`.

use std::io::Write;
use std::path::{Path, PathBuf};

use miette::{Context, IntoDiagnostic};

use crate::cli::{GlobalArgs, SandboxCommand, SandboxServeArgs};
use crate::sandbox::{self, Sandbox, SandboxOptions};
use crate::ExitStatus;

/// The `--dir` default of `cwa sandbox serve` (see `cli.rs`).
const DEFAULT_DIR: &str = ".cwa/sandbox";

/// Serves or resets the sandbox.
pub async fn sandbox(_global: &GlobalArgs, command: SandboxCommand) -> miette::Result<ExitStatus> {
    match command {
        SandboxCommand::Serve(args) => serve(args).await,
        SandboxCommand::Reset { world } => reset(&world),
    }
}

/// Prints the environment that points programs at the sandbox, then serves until Ctrl-C.
async fn serve(args: SandboxServeArgs) -> miette::Result<ExitStatus> {
    let dir = serve_dir(&args.dir);
    let mut options = SandboxOptions::new(&dir, &args.world);
    options.listen = args.listen;
    options.latency_ms = args.latency_ms;
    options.fault_rate = args.fault_rate;
    options.rate_limit = args.rate_limit;
    let sandbox = Sandbox::start(options)
        .await
        .into_diagnostic()
        .wrap_err("cannot start the sandbox")?;
    print_exports(&sandbox).into_diagnostic()?;
    eprintln!(
        "sandbox: serving {} from {} (Ctrl-C to stop)",
        sandbox.base_url(),
        dir.display()
    );
    tokio::signal::ctrl_c()
        .await
        .into_diagnostic()
        .wrap_err("cannot wait for Ctrl-C")?;
    sandbox
        .shutdown()
        .await
        .into_diagnostic()
        .wrap_err("the sandbox did not stop cleanly")?;
    eprintln!(
        "sandbox: stopped; the world is saved in {}",
        args.dir.display()
    );
    Ok(ExitStatus::Success)
}

/// `--dir` as given, except that the default follows `CWA_SANDBOX_DIR` like the embedded
/// sandbox does, so `cwa sandbox serve` and `cwa --sandbox` share one world by default.
fn serve_dir(given: &Path) -> PathBuf {
    if given == Path::new(DEFAULT_DIR) {
        sandbox::embedded_dir()
    } else {
        given.to_path_buf()
    }
}

fn print_exports(sandbox: &Sandbox) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for (name, value) in sandbox.env() {
        writeln!(out, "export {name}={value}")?;
    }
    out.flush()
}

/// Deletes the embedded sandbox's world and seeds `world` in its place.
fn reset(world: &str) -> miette::Result<ExitStatus> {
    let dir = sandbox::embedded_dir();
    sandbox::reset(&dir, world)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot reset the sandbox in {}", dir.display()))?;
    eprintln!(
        "sandbox: {} now holds a fresh `{world}` world",
        dir.display()
    );
    Ok(ExitStatus::Success)
}
