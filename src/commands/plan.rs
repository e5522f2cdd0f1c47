//! `cwa plan`.

use miette::{Diagnostic, LabeledSpan, NamedSource};

use super::session::{self, Session};
use crate::cli::{GlobalArgs, OutputFormat, PlanArgs, PlanningArgs};
use crate::config::Loaded;
use crate::plan::{self, Finding, Plan, PlanInput, PlanOptions, Severity};
use crate::render;
use crate::state::State;
use crate::ExitStatus;

/// Everything a plan was computed from, for apply to carry on with.
pub struct Planned {
    pub loaded: Loaded,
    pub state: State,
    pub plan: Plan,
    pub providers: Option<crate::providers::Providers>,
}

/// Loads, refreshes and plans.
pub async fn compute(session: &Session, args: &PlanningArgs) -> miette::Result<Planned> {
    let loaded = session.load_config()?;
    let state = session.load_state()?;
    let targets = plan::targets::resolve(&args.targets, &loaded.desired, &state)?;
    let (live, providers) = if args.refresh {
        let providers = session.connect(&loaded.desired, &state)?;
        (session::refresh(&providers).await?, Some(providers))
    } else {
        (state.as_live(), None)
    };
    let mut plan = plan::compute(&PlanInput {
        desired: &loaded.desired,
        state: &state,
        live: &live,
        refreshed: args.refresh,
        config_fingerprint: session::config_fingerprint(&loaded.text),
        options: PlanOptions {
            allow_mass_change: args.allow_mass_change,
            release_numbers: args.release_numbers,
            targets,
        },
        secrets: &session.secrets,
    });
    if args.refresh {
        plan.checks.extend(
            crate::checks::certify(
                &loaded.desired,
                &state,
                &live,
                &crate::checks::Request::plan(),
            )
            .checks
            .into_iter()
            .map(|c| c.into_finding()),
        );
    }
    Ok(Planned {
        loaded,
        state,
        plan,
        providers,
    })
}

/// Runs `cwa plan`.
pub async fn plan(global: &GlobalArgs, args: &PlanArgs) -> miette::Result<ExitStatus> {
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &PlanArgs) -> miette::Result<ExitStatus> {
    let planned = compute(session, &args.planning).await?;
    let plan = &planned.plan;
    crate::out!(
        "{}",
        render_plan(plan, &planned.loaded, args.format.format(), &session.global)
    );
    if plan.is_error() {
        return Err(plan_errors(plan, &planned.loaded).into());
    }
    if let Some(out) = &args.out {
        session::write_file(out, &render::json(plan))?;
        crate::errln!(
            "Saved the plan to {}. Review it with: {}\nApply exactly it with: {}",
            out.display(),
            same_world_command(&session.global, &format!("show {}", out.display())),
            same_world_command(&session.global, &format!("apply {}", out.display()))
        );
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// The plan in the format asked for.
pub fn render_plan(
    plan: &Plan,
    loaded: &Loaded,
    format: OutputFormat,
    global: &GlobalArgs,
) -> String {
    match format {
        OutputFormat::Human => render::human(plan, &human_options(loaded, global)),
        OutputFormat::Json => render::json(plan),
        OutputFormat::Markdown => {
            render::markdown_from(plan, render::source_of(plan, global.sandbox))
        }
        OutputFormat::Dot => render::dot(plan),
    }
}

pub fn human_options(loaded: &Loaded, global: &GlobalArgs) -> render::HumanOptions {
    render::HumanOptions {
        color: super::color_enabled(global),
        church_names: loaded
            .desired
            .churches
            .iter()
            .map(|c| (c.key.clone(), c.name.clone()))
            .collect(),
        show_unchanged: false,
        sandbox: global.sandbox,
    }
}

/// `cwa` + the global options that choose the world (`--sandbox`, `-C`, `--config`,
/// `--state`) + `rest`: a hint the user can paste and land on the same world and files.
pub fn same_world_command(global: &GlobalArgs, rest: &str) -> String {
    let mut words = vec!["cwa".to_string()];
    if let Some(dir) = &global.chdir {
        words.push(format!("-C {}", dir.display()));
    }
    if global.sandbox {
        words.push("--sandbox".into());
    }
    if global.config != std::path::Path::new("lines.toml") {
        words.push(format!("--config {}", global.config.display()));
    }
    if global.state_dir != std::path::Path::new("state") {
        words.push(format!("--state {}", global.state_dir.display()));
    }
    words.push(rest.to_string());
    words.join(" ")
}

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
