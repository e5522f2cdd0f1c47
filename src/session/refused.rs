//! A refused plan as one miette diagnostic: each error labelled at the line of lines.toml
//! responsible.

use miette::{Diagnostic, LabeledSpan, NamedSource};

use crate::config::Loaded;
use crate::plan::{Finding, Plan, Severity};

/// The plan's errors as one diagnostic, each labelled at the line of lines.toml responsible.
#[derive(Debug, thiserror::Error)]
#[error("the plan has {} error(s); nothing was applied", .errors.len())]
pub struct PlanErrors {
    errors: Vec<FindingDiagnostic>,
}

impl Diagnostic for PlanErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("cwa::plan::refused"))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// One finding as a diagnostic.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FindingDiagnostic {
    message: String,
    code: String,
    help: Option<String>,
    file: NamedSource<String>,
    span: Option<LabeledSpan>,
}

impl Diagnostic for FindingDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("cwa::plan::{}", self.code)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.span
            .as_ref()
            .map(|_| &self.file as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.span
            .clone()
            .map(|s| Box::new(std::iter::once(s)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Error)
    }
}

/// Builds the diagnostic for a refused plan.
pub fn plan_errors(plan: &Plan, loaded: &Loaded) -> PlanErrors {
    let source = loaded.named_source();
    PlanErrors {
        errors: plan
            .errors
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| finding_diagnostic(f, &source))
            .collect(),
    }
}

fn finding_diagnostic(f: &Finding, source: &NamedSource<String>) -> FindingDiagnostic {
    FindingDiagnostic {
        message: f.message.clone(),
        code: f.code.clone(),
        help: f.help.clone(),
        file: source.clone(),
        span: f
            .span
            .map(|s| LabeledSpan::new_with_span(Some("declared here".into()), s)),
    }
}
