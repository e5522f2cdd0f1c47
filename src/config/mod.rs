//! Parses lines.toml into the desired resource graph, with diagnostics that point into the file.
//!
//! Stages, each with one job: [`raw`] reads TOML into spanned blocks (syntax, unknown keys,
//! types); [`expand`] resolves references and expands churches by convention into
//! [`model::Desired`](crate::model::Desired); [`checks`] runs the runbooks' network-free
//! checks; [`graph`] builds the dependency graph and rejects cycles. Every stage records
//! problems instead of stopping, so one run reports all of them.

pub mod checks;
pub mod convention;
pub mod edit;
pub mod error;
pub mod expand;
pub mod fmt;
pub mod graph;
pub mod ignore;
pub mod limits;
pub mod provider_limits;
pub mod raw;
pub mod secrets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

pub use error::{ConfigError, Problem, ProblemKind};

use crate::model::Desired;

/// A parsed, expanded and checked lines.toml, and what is needed to point at it later.
#[derive(Debug)]
pub struct Loaded {
    pub desired: Desired,
    pub path: PathBuf,
    pub text: String,
    /// Findings that do not make the file invalid; print them.
    pub warnings: Vec<miette::Report>,
}

impl Loaded {
    /// The file as a miette source, so later stages (the planner) can label a span of it.
    pub fn named_source(&self) -> NamedSource<String> {
        NamedSource::new(
            self.path.display().to_string(),
            error::masked(&self.text, &[]),
        )
    }

    /// Where `addr` is declared, as `lines.toml:LINE` (for a convention resource, the
    /// `[church.<key>]` block that produced it).
    pub fn location(&self, addr: &crate::model::Address) -> Option<String> {
        let span = self.desired.get(addr)?.span;
        let before = self.text.get(..span.offset)?;
        Some(format!(
            "{}:{}",
            self.path.display(),
            before.matches('\n').count() + 1
        ))
    }
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses `text`, naming it `path_for_messages` in diagnostics. Fails with every error found;
/// warnings ride along in [`Loaded::warnings`] (or in the error, when there are errors too).
pub fn parse(path_for_messages: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let mut problems = Vec::new();
    let desired = raw::parse(text, &mut problems)
        .filter(|_| !problems.iter().any(blocks_expansion))
        .filter(|raw| limits::run(raw, &mut problems))
        .map(|raw| {
            let mut expanded = expand::expand(&raw, text, &mut problems);
            expanded.desired.settings.outbound_countries =
                outbound_countries(&raw.defaults, &mut problems);
            ignore::apply(&raw, &mut expanded.desired.policy, &mut problems);
            checks::run(&expanded, &mut problems);
            cycle_problems(&expanded, &mut problems);
            expanded.desired
        });
    problems.sort_by_key(Problem::primary_offset);
    let shown = Arc::new(error::masked(text, &problems));
    let source = NamedSource::new(path_for_messages.display().to_string(), shown);
    let problems: Vec<Problem> = problems
        .into_iter()
        .map(|p| p.with_source(source.clone()))
        .collect();
    match desired {
        Some(desired) if !problems.iter().any(Problem::is_error) => Ok(Loaded {
            desired,
            path: path_for_messages.to_path_buf(),
            text: text.to_string(),
            warnings: problems.into_iter().map(miette::Report::new).collect(),
        }),
        _ => Err(ConfigError::Invalid {
            path: path_for_messages.to_path_buf(),
            summary: error::count_summary(&problems),
            problems,
        }),
    }
}

/// `[defaults] outbound_countries`, upper-cased; an entry that is not a two-letter country
/// code is an error at that entry.
fn outbound_countries(
    defaults: &raw::RawDefaults,
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let list = defaults.outbound_countries.as_ref()?;
    let mut out = Vec::new();
    for c in list.get_ref() {
        let code = c.get_ref().trim().to_ascii_uppercase();
        if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            out.push(code);
        } else {
            problems.push(
                Problem::error(
                    ProblemKind::InvalidValue,
                    c.span().into(),
                    "not a country code",
                    format!(
                        "outbound_countries entry `{}` is not a two-letter country code",
                        c.get_ref()
                    ),
                )
                .with_help(
                    "list ISO 3166 alpha-2 codes, e.g. outbound_countries = [\"US\", \"CA\"]",
                ),
            );
        }
    }
    Some(out)
}

/// A block that failed to deserialize is missing from the file as far as later stages know,
/// so expanding would only add echoes of it. Unknown keys are dropped from intact blocks and
/// do not stop expansion.
fn blocks_expansion(p: &Problem) -> bool {
    p.is_error() && !matches!(p.kind, ProblemKind::UnknownKey | ProblemKind::InlineSecret)
}

fn cycle_problems(x: &expand::Expanded, problems: &mut Vec<Problem>) {
    let Err(cycle) = graph::build(&x.desired) else {
        return;
    };
    let spans: Vec<_> = cycle
        .members
        .iter()
        .filter_map(|a| {
            let r = x.desired.get(a)?;
            Some((x.spans.get(a, "depends_on").unwrap_or(r.span), a))
        })
        .collect();
    let Some(((first_span, first), rest)) = spans.split_first() else {
        return;
    };
    let mut p = Problem::error(
        ProblemKind::Cycle,
        *first_span,
        format!("{first} is on the cycle"),
        cycle.to_string(),
    )
    .with_help("nothing on a cycle can be created first; remove one of the depends_on (or references) that close it");
    for (span, addr) in rest {
        p = p.with_label(*span, format!("{addr} is on the cycle"));
    }
    problems.push(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = include_str!("../../lines.toml");

    /// Parses `text` and checks that it did not panic and that every label lies in the text.
    fn labels_in_bounds(text: &str) {
        if let Err(e) = parse(Path::new("t.toml"), text) {
            for p in e.problems() {
                for (span, _) in &p.labels {
                    assert!(span.offset + span.len <= text.len().max(1), "{p:?}");
                    assert!(text.is_char_boundary(span.offset.min(text.len())), "{p:?}");
                }
            }
        }
    }

    #[test]
    fn the_repository_declaration_loads() {
        let loaded = parse(Path::new("lines.toml"), REPO).unwrap();
        // Only the E911 warning, once per church line: the churches' street addresses are
        // not known, and a placeholder would send help to the wrong building (issue 21).
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded
            .warnings
            .iter()
            .all(|w| w.code().map(|c| c.to_string()).as_deref()
                == Some(ProblemKind::EmergencyAddress.code())));
        assert_eq!(loaded.desired.churches.len(), 2);
    }

    #[test]
    fn dropping_any_line_never_panics() {
        let lines: Vec<&str> = REPO.lines().collect();
        for skip in 0..lines.len() {
            let text: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            labels_in_bounds(&text.join("\n"));
        }
    }

    #[test]
    fn truncating_anywhere_never_panics() {
        let cuts = REPO.char_indices().map(|(i, _)| i).step_by(11);
        for cut in cuts {
            labels_in_bounds(&REPO[..cut]);
        }
        labels_in_bounds("é = 1");
        labels_in_bounds("");
    }
}
