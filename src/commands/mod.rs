//! One module per verb: thin orchestration over the library, no business logic.

mod add;
mod apply;
mod check;
mod drift;
mod export;
mod fmt;
mod graph;
mod import;
mod plan;
mod remove;
mod sandbox;
mod show;
mod state;
mod validate;
mod version;

use crate::session;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::ExitStatus;

/// Sends log output (tracing) to stderr at the level -v asks for.
pub fn init_logging(global: &GlobalArgs) {
    let level = match global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CWA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("cwa={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // On a closed stderr its own error report is an `eprintln!`, which panics (exit 101).
        .log_internal_errors(false)
        .with_ansi(color_enabled(global))
        .try_init();
}

/// Whether this run colors its output (the views' rule, [`crate::render::plan::color_enabled`]).
pub use crate::render::plan::color_enabled;

/// Diagnostics render with colors and unicode only where the user wants them.
pub fn install_miette_hook(global: &GlobalArgs) {
    let color = color_enabled(global);
    let _ = miette::set_hook(Box::new(move |_| {
        let graphical = miette::MietteHandlerOpts::new()
            .color(color)
            .unicode(color)
            .terminal_links(false)
            .width(100)
            .build();
        Box::new(crate::output::SafeReports::new(Box::new(graphical), color))
    }));
}

/// Runs the chosen command.
pub async fn dispatch(cli: Cli) -> miette::Result<ExitStatus> {
    let Cli { global, command } = cli;
    // The lock and the lease decide what to warn about; the state view says it.
    crate::state::on_notice(|notice| {
        crate::errln!("{}", crate::render::state::lock_notice(notice))
    });
    // The session decides when lines.toml was first read; the lint view says its warnings.
    session::on_lint_warnings(|warnings| {
        crate::output::stderr(&crate::render::lint_warnings(warnings))
    });
    match command {
        Command::Validate => validate::validate(&global),
        Command::Graph(args) => graph::graph(&global, &args),
        Command::Sandbox(cmd) => sandbox::sandbox(&global, cmd).await,
        Command::Plan(args) => plan::plan(&global, &args).await,
        Command::Apply(args) => apply::apply(&global, &args).await,
        Command::State(cmd) => state::state(&global, &cmd),
        Command::Drift(args) => drift::drift(&global, &args).await,
        Command::Check(args) => check::check(&global, &args).await,
        Command::Export(cmd) => export::export(&global, &cmd),
        Command::Import(args) => import::import(&global, &args).await,
        Command::Show(args) => show::show(&global, &args),
        Command::Fmt(args) => fmt::fmt(&global, &args),
        Command::Completions(args) => Ok(version::completions(&args)),
        Command::Version => Ok(version::version()),
        Command::Add(cmd) => add::add(&global, &cmd).await,
        Command::Remove(cmd) => remove::remove(&global, &cmd).await,
    }
}
