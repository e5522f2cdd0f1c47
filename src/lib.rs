//! cwa: voice phone lines as code.
//!
//! Data flows one way: `lines.toml` is parsed by [`config`] into a [`model::Desired`] graph;
//! [`state`] says what cwa owns; [`providers`] read a live snapshot; [`plan`] diffs the three
//! into a [`plan::Plan`] value that [`render`] prints and [`apply`] carries out.
//! [`sandbox`] emulates the three services on loopback.

pub mod apply;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod drift;
pub mod error;
pub mod import;
pub mod model;
pub mod output;
pub mod plan;
pub mod protection;
pub mod providers;
pub mod provision;
pub mod registry;
pub mod render;
pub mod ring;
pub mod sandbox;
pub mod session;
pub mod state;
pub mod synthetic;

pub use error::ExitStatus;

/// Prints a command-line parsing error (or `--help`/`--version`, which clap reports the
/// same way) and says how to exit (see [`ExitStatus::of_usage_error`]).
pub fn usage_error(e: &clap::Error) -> ExitStatus {
    // clap prints help and version to stdout, errors to stderr, colored only on a terminal;
    // a closed pipe there is not an error worth reporting.
    let _ = e.print();
    ExitStatus::of_usage_error(e.kind())
}

/// Runs one command line to completion and says how the process should exit.
pub fn run(cli: cli::Cli) -> miette::Result<ExitStatus> {
    if let Some(dir) = &cli.global.chdir {
        std::env::set_current_dir(dir).map_err(|e| {
            miette::miette!(
                help = "-C DIR runs cwa as if started in DIR; give a directory that exists",
                "cannot change to {}: {e}",
                dir.display()
            )
        })?;
    }
    commands::init_logging(&cli.global);
    commands::install_miette_hook(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    runtime.block_on(commands::dispatch(cli))
}
