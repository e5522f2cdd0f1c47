//! Diagnostics for lines.toml: every problem has a stable code, a help text and a label at the
//! exact place in the file, and one run reports all of them at once.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode};

use crate::model::SourceSpan;

/// What kind of mistake a [`Problem`] is. The code is stable: tests, docs and CI greps use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    Syntax,
    UnknownKey,
    InvalidValue,
    MissingField,
    InlineSecret,
    SecretEnvName,
    Version,
    E164,
    FictionNumber,
    DuplicateNumber,
    DuplicateChurch,
    ChurchKey,
    Reference,
    Transport,
    SipHost,
    DefaultPrimary,
    NumberFormat,
    TrunkAuth,
    Routing,
    NumberOnTwoTrunks,
    DispatchRule,
    NoAgent,
    AgentName,
    OutboundProfile,
    OutboundNumber,
    OutboundTrunk,
    Cycle,
    Policy,
    ProviderLimit,
    /// A church line without an E911 address (issue 21).
    EmergencyAddress,
}

impl ProblemKind {
    /// The diagnostic code shown as `cwa::config::<code>`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Syntax => "cwa::config::syntax",
            Self::UnknownKey => "cwa::config::unknown_key",
            Self::InvalidValue => "cwa::config::invalid_value",
            Self::MissingField => "cwa::config::missing_field",
            Self::InlineSecret => "cwa::config::inline_secret",
            Self::SecretEnvName => "cwa::config::secret_env_name",
            Self::Version => "cwa::config::version",
            Self::E164 => "cwa::config::e164",
            Self::FictionNumber => "cwa::config::fiction_number",
            Self::DuplicateNumber => "cwa::config::duplicate_number",
            Self::DuplicateChurch => "cwa::config::duplicate_church",
            Self::ChurchKey => "cwa::config::church_key",
            Self::Reference => "cwa::config::reference",
            Self::Transport => "cwa::config::transport",
            Self::SipHost => "cwa::config::sip_host",
            Self::DefaultPrimary => "cwa::config::default_primary_fqdn",
            Self::NumberFormat => "cwa::config::number_format",
            Self::TrunkAuth => "cwa::config::trunk_auth",
            Self::Routing => "cwa::config::routing",
            Self::NumberOnTwoTrunks => "cwa::config::number_on_two_trunks",
            Self::DispatchRule => "cwa::config::dispatch_rule",
            Self::NoAgent => "cwa::config::no_agent",
            Self::AgentName => "cwa::config::agent_name",
            Self::OutboundProfile => "cwa::config::outbound_voice_profile",
            Self::OutboundNumber => "cwa::config::outbound_number",
            Self::OutboundTrunk => "cwa::config::outbound_trunk",
            Self::Cycle => "cwa::config::cycle",
            Self::Policy => "cwa::config::policy",
            Self::ProviderLimit => "cwa::config::provider_limit",
            Self::EmergencyAddress => "cwa::config::emergency_address",
        }
    }
}

/// One thing wrong (or suspicious, for warnings) in lines.toml, with where it is.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemKind,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    /// The first label is the primary one: its line:column is what the report leads with.
    pub labels: Vec<(SourceSpan, String)>,
    /// A secret value written into the file: rendered as `*`s in every snippet.
    pub(crate) mask: Option<SourceSpan>,
    source: Option<NamedSource<Arc<String>>>,
}

impl Problem {
    /// An error at `span`, labelled with `label`.
    pub fn error(
        kind: ProblemKind,
        span: SourceSpan,
        label: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            severity: Severity::Error,
            message: message.into(),
            help: None,
            labels: vec![(span, label.into())],
            mask: None,
            source: None,
        }
    }

    /// The same problem as a warning: printed, but the file is still valid.
    pub fn as_warning(self) -> Self {
        Self {
            severity: Severity::Warning,
            ..self
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// A secondary place that explains the first (the other trunk, the other number).
    pub fn with_label(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.labels.push((span, label.into()));
        self
    }

    /// Marks `span` as holding a secret value, so no snippet ever shows it.
    pub(crate) fn masking(mut self, span: SourceSpan) -> Self {
        self.mask = Some(span);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn with_source(mut self, source: NamedSource<Arc<String>>) -> Self {
        self.source = Some(source);
        self
    }

    /// The primary span, for ordering problems by their place in the file.
    pub fn primary_offset(&self) -> usize {
        self.labels.first().map_or(0, |(s, _)| s.offset)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shown(&self.message))
    }
}

/// A message, label or help as a diagnostic shows it: a key, name or value quoted from
/// lines.toml may hold a control or bidi character (U+202E reorders the line a reader sees),
/// so each is made visible (`\u{202e}`) as the terminal view does; the line breaks a help text
/// is laid out with are kept.
fn shown(text: &str) -> String {
    if !text.chars().any(crate::render::escape::is_hidden_control) {
        return text.to_string();
    }
    text.split('\n')
        .map(crate::render::escape::terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(shown(h)) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let labels = self.labels.iter().enumerate().map(|(i, (span, text))| {
            let text = (!text.is_empty()).then(|| shown(text));
            if i == 0 {
                LabeledSpan::new_primary_with_span(text, *span)
            } else {
                LabeledSpan::new_with_span(text, *span)
            }
        });
        Some(Box::new(labels))
    }
}

/// Why lines.toml could not be loaded. `Invalid` carries every problem found in the run.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    #[diagnostic(
        code(cwa::config::read),
        help("cwa reads lines.toml from the current directory; pass --config <PATH> to use another file (docs/lines-toml.md describes the format)")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not valid: {}", path.display(), summary)]
    #[diagnostic(code(cwa::config::invalid))]
    Invalid {
        path: PathBuf,
        summary: String,
        #[related]
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem of an `Invalid` error (empty for `Read`).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { problems, .. } => problems,
        }
    }
}

/// `text` as a diagnostic quotes it: the bytes of every masked span replaced by `*` and those
/// of hidden controls by `?`, offsets unchanged.
pub(crate) fn masked(text: &str, problems: &[Problem]) -> String {
    let spans: Vec<SourceSpan> = problems.iter().filter_map(|p| p.mask).collect();
    text.char_indices()
        .map(|(i, c)| {
            if spans.iter().any(|s| i >= s.offset && i < s.offset + s.len) {
                "*".repeat(c.len_utf8())
            } else if shown_hidden(c) && !(c == '\r' && text[i + 1..].starts_with('\n')) {
                // A diagnostic quotes lines of lines.toml to the terminal: a control or bidi
                // character there (ESC, BEL, a lone CR, U+202E) is shown as `?`, one per byte
                // so every span still points at the same place.
                "?".repeat(c.len_utf8())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A character of lines.toml a quoted line must not send to the terminal: the renderers' hidden
/// controls, except the newline and tab that lay the file out.
fn shown_hidden(c: char) -> bool {
    c != '\n' && c != '\t' && crate::render::escape::is_hidden_control(c)
}

/// "1 error" / "3 errors, 1 warning".
pub(crate) fn count_summary(problems: &[Problem]) -> String {
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if warnings == 0 {
        plural(errors, "error")
    } else {
        format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}
