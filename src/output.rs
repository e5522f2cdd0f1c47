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

/// The report handler every diagnostic goes through: it renders with `inner` (miette's
/// graphical handler), then shows every control character the text carries as a visible
/// escape, so a value quoted in a message (a number, an id, a provider's error body) cannot
/// send a window title, a line erase or a bidi override to the terminal. Newlines and tabs
/// lay the report out; with colors on, the renderer's own SGR sequences (`ESC [ … m`) are kept.
pub struct SafeReports {
    inner: Box<dyn miette::ReportHandler>,
    color: bool,
}

impl SafeReports {
    pub fn new(inner: Box<dyn miette::ReportHandler>, color: bool) -> Self {
        Self { inner, color }
    }
}

impl std::fmt::Debug for SafeReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeReports")
            .field("color", &self.color)
            .finish()
    }
}

impl miette::ReportHandler for SafeReports {
    fn debug(
        &self,
        error: &dyn miette::Diagnostic,
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        struct Rendered<'a>(&'a dyn miette::ReportHandler, &'a dyn miette::Diagnostic);
        impl std::fmt::Display for Rendered<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.debug(self.1, f)
            }
        }
        let text = Rendered(self.inner.as_ref(), error).to_string();
        f.write_str(&shown_controls(&text, self.color))
    }
}

/// `text` with every hidden control but newline and tab escaped (`render::escape::terminal`);
/// with `color`, SGR sequences (`ESC [ digits ; … m`) are left as they are.
fn shown_controls(text: &str, color: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let sgr = color.then(|| sgr_len(rest)).flatten();
        let len = sgr.unwrap_or(c.len_utf8());
        let (head, tail) = rest.split_at(len);
        if sgr.is_some() || c == '\n' || c == '\t' {
            out.push_str(head);
        } else {
            out.push_str(&crate::render::escape::terminal(head));
        }
        rest = tail;
    }
    out
}

/// The length of the SGR sequence `text` starts with, if it starts with one.
fn sgr_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix("\u{1b}[")?;
    let params = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
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
    fn reports_show_controls_but_keep_layout_and_their_own_colors() {
        let text = "\u{1b}[31mx\u{1b}[0m \u{1b}]0;t\u{7} \u{202e}\n\ty";
        assert_eq!(
            shown_controls(text, true),
            "\u{1b}[31mx\u{1b}[0m \\u{1b}]0;t\\u{7} \\u{202e}\n\ty"
        );
        assert_eq!(
            shown_controls(text, false),
            "\\u{1b}[31mx\\u{1b}[0m \\u{1b}]0;t\\u{7} \\u{202e}\n\ty"
        );
    }

    #[test]
    fn a_closed_pipe_stops_output_without_panicking() {
        let closed = AtomicBool::new(false);
        write_or_close(&mut Closed, "x", &closed);
        assert!(closed.load(Ordering::SeqCst));
        write_or_close(&mut Closed, "y", &closed);
    }
}
