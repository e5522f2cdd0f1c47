use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cwa::cli::Cli::parse();
    match cwa::run(cli) {
        Ok(status) => status.into(),
        Err(report) => {
            eprintln!("{report:?}");
            cwa::ExitStatus::Failure.into()
        }
    }
}
