use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cwa::cli::Cli::from_process() {
        Ok(cli) => cli,
        Err(e) => return cwa::usage_error(&e).into(),
    };
    match cwa::run(cli) {
        Ok(status) => status.into(),
        Err(report) => {
            cwa::errln!("{report:?}");
            cwa::ExitStatus::Failure.into()
        }
    }
}
