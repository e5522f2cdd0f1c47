//! Writing to stdout and stderr when the reader may have gone away.
//!
//! `cwa plan --json | head -1` closes the pipe after one line. Rust's `print!` panics on the
//! next write (exit 101, a backtrace on stderr); cwa instead stops writing to that stream and
//! carries on, so the command still finishes what it does besides printing (a `--out` file,
//! state, the lock) and exits with the status it would have had (0, or 2 for changes). Every
//! line cwa prints goes through [`out!`](crate::out), [`outln!`](crate::outln) or
//! [`errln!`](crate::errln).

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
static HUMAN_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Writes `text` (what [`out!`](crate::out) and [`outln!`](crate::outln) print: text for
/// people) to stdout, or to stderr once [`human_to_stderr`] was called; once the reader has
/// gone, writes nothing more.
pub fn stdout(text: &str) {
    if HUMAN_TO_STDERR.load(Ordering::SeqCst) {
        return stderr(text);
    }
    data(text);
}

/// Writes machine output (`--json`) to stdout, whatever [`human_to_stderr`] says.
pub fn data(text: &str) {
    let mut handle = std::io::stdout().lock();
    write_or_close(&mut handle, text, &STDOUT_CLOSED);
}

/// From now on, text for people goes to stderr: a command printing a JSON document keeps
/// stdout for it alone (`cwa apply --json | jq`), while the plan and progress stay visible.
pub fn human_to_stderr() {
    HUMAN_TO_STDERR.store(true, Ordering::SeqCst);
}

/// Writes `text` to stderr; once stderr is closed, writes nothing more.
pub fn stderr(text: &str) {
    let mut handle = std::io::stderr().lock();
    write_or_close(&mut handle, text, &STDERR_CLOSED);
}

/// Whether stdout's reader went away during this run.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

fn write_or_close(w: &mut impl Write, text: &str, closed: &AtomicBool) {
    if closed.load(Ordering::SeqCst) {
        return;
    }
    if let Err(e) = w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        // A closed pipe is the reader's choice; any other failure (a full disk under a
        // redirection) also makes further output pointless, but is worth a log line.
        if e.kind() != ErrorKind::BrokenPipe {
            tracing::warn!("cannot write output: {e}");
        }
        closed.store(true, Ordering::SeqCst);
    }
}

/// `print!` that never panics on a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(&format!($($arg)*))
    };
}

/// `println!` that never panics on a closed pipe.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics on a closed stderr (`cwa plan 2>&1 | head -1`).
#[macro_export]
macro_rules! errln {
    () => {
        $crate::output::stderr("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stops_output_without_panicking() {
        let closed = AtomicBool::new(false);
        write_or_close(&mut Closed, "x", &closed);
        assert!(closed.load(Ordering::SeqCst));
        write_or_close(&mut Closed, "y", &closed);
    }
}
