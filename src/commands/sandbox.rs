//! `cwa sandbox serve|reset`.

use miette::{Context, IntoDiagnostic};

use crate::cli::{GlobalArgs, SandboxCommand, SandboxServeArgs};
use crate::render;
use crate::sandbox::{self, Sandbox, SandboxOptions};
use crate::ExitStatus;

/// Serves or resets the sandbox.
pub async fn sandbox(global: &GlobalArgs, command: SandboxCommand) -> miette::Result<ExitStatus> {
    match command {
        SandboxCommand::Serve(args) => serve(global, args).await,
        SandboxCommand::Reset { world } => reset(global, &world),
    }
}

/// Prints the environment that points programs at the sandbox, then serves until Ctrl-C.
async fn serve(global: &GlobalArgs, args: SandboxServeArgs) -> miette::Result<ExitStatus> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| sandbox::embedded_dir(&global.config));
    let kept = sandbox::has_world(&dir);
    let mut options = SandboxOptions::new(&dir, &args.world);
    options.listen = args.listen;
    options.latency_ms = args.latency_ms;
    options.fault_rate = args.fault_rate;
    options.rate_limit = args.rate_limit;
    let sandbox = Sandbox::start(options)
        .await
        .into_diagnostic()
        .wrap_err("cannot start the sandbox")?;
    crate::out!("{}", render::sandbox::exports(&sandbox.env()));
    crate::errln!("{}", render::sandbox::world(&dir, &args.world, kept));
    crate::errln!("{}", render::sandbox::serving(&sandbox.base_url(), &dir));
    tokio::signal::ctrl_c()
        .await
        .into_diagnostic()
        .wrap_err("cannot wait for Ctrl-C")?;
    sandbox
        .shutdown()
        .await
        .into_diagnostic()
        .wrap_err("the sandbox did not stop cleanly")?;
    crate::errln!("{}", render::sandbox::stopped(&dir));
    Ok(ExitStatus::Success)
}

/// Deletes the embedded sandbox's world and seeds `world` in its place.
fn reset(global: &GlobalArgs, world: &str) -> miette::Result<ExitStatus> {
    let dir = sandbox::embedded_dir(&global.config);
    sandbox::reset(&dir, world)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot reset the sandbox in {}", dir.display()))?;
    crate::errln!("{}", render::sandbox::reset(&dir, world));
    Ok(ExitStatus::Success)
}
