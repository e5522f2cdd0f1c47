//! `cwa sandbox serve|reset`.

use miette::{Context, IntoDiagnostic};

use crate::cli::{GlobalArgs, SandboxCommand, SandboxServeArgs};
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
    print_exports(&sandbox);
    if kept {
        crate::errln!(
            "sandbox: {} already holds a world; serving it as it is (--world {} seeds only an empty directory; `cwa sandbox reset --world {}` starts over)",
            dir.display(),
            args.world,
            args.world
        );
    } else {
        crate::errln!(
            "sandbox: seeded a fresh `{}` world in {}",
            args.world,
            dir.display()
        );
    }
    crate::errln!(
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
    crate::errln!("sandbox: stopped; the world is saved in {}", dir.display());
    Ok(ExitStatus::Success)
}

fn print_exports(sandbox: &Sandbox) {
    for (name, value) in sandbox.env() {
        crate::outln!("export {name}={value}");
    }
}

/// Deletes the embedded sandbox's world and seeds `world` in its place.
fn reset(global: &GlobalArgs, world: &str) -> miette::Result<ExitStatus> {
    let dir = sandbox::embedded_dir(&global.config);
    sandbox::reset(&dir, world)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot reset the sandbox in {}", dir.display()))?;
    crate::errln!(
        "sandbox: {} now holds a fresh `{world}` world",
        dir.display()
    );
    Ok(ExitStatus::Success)
}
