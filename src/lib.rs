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
pub mod plan;
pub mod providers;
pub mod render;
pub mod sandbox;
pub mod state;
pub mod synthetic;

pub use error::ExitStatus;

/// Runs one command line to completion and says how the process should exit.
pub fn run(cli: cli::Cli) -> miette::Result<ExitStatus> {
    commands::init_logging(&cli.global);
    commands::install_miette_hook(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    runtime.block_on(commands::dispatch(cli))
}
