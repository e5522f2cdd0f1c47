//! `cwa add church KEY …`: the new block is validated and planned before lines.toml is written.

use super::plan as plan_cmd;
use crate::cli::{
    AddChurchArgs, AddCommand, GlobalArgs, NumberProviderArg, OutputFormat, PlanningArgs,
};
use crate::provision::{self, Added, NewChurch, NumberChoice, NumberProvider};
use crate::render;
use crate::session::{self, Session};
use crate::ExitStatus;

/// Runs `cwa add …`.
pub async fn add(global: &GlobalArgs, cmd: &AddCommand) -> miette::Result<ExitStatus> {
    let AddCommand::Church(args) = cmd;
    let new = new_church(args);
    provision::check_request(&new)?;
    let session = Session::open(global).await?;
    let result = run(&session, args, &new).await;
    session.close().await?;
    result
}

fn new_church(args: &AddChurchArgs) -> NewChurch {
    NewChurch {
        key: args.key.clone(),
        id: args.id.clone(),
        name: args.name.clone(),
        number: match (&args.number, &args.area_code) {
            (Some(n), _) => NumberChoice::Fixed(n.clone()),
            (None, ac) => NumberChoice::AreaCode(ac.clone().unwrap_or_default()),
        },
        agent: args.agent.clone(),
        trunk: args.trunk.clone(),
        provider: match args.provider {
            NumberProviderArg::Telnyx => NumberProvider::Telnyx,
            NumberProviderArg::Livekit => NumberProvider::Livekit,
        },
        emergency_address: args.emergency_address.clone(),
    }
}

async fn run(
    session: &Session,
    args: &AddChurchArgs,
    new: &NewChurch,
) -> miette::Result<ExitStatus> {
    let path = &session.global.config;
    let text = std::fs::read_to_string(path)
        .map_err(|e| miette::miette!("cannot read {}: {e}", path.display()))?;
    let mut added = provision::add(path, &text, new, None)?;
    if args.reserve {
        if let Added::Written { loaded, .. } = &added {
            let reservation = provision::reserve(session, loaded, new).await?;
            added = provision::add(path, &text, new, Some(&reservation))?;
        }
    }
    let planning = PlanningArgs {
        refresh: args.refresh,
        targets: vec![format!("church.{}", new.key)],
        allow_mass_change: false,
        release_numbers: false,
    };
    let shown_path = path.display().to_string();
    let (planned, written) = match added {
        Added::Unchanged => {
            crate::output::stderr(&render::provision::unchanged(&new.key, &shown_path));
            (session.plan_checked(&planning).await?, None)
        }
        Added::Written { text, loaded } => (
            session.plan_checked_of(*loaded, &planning).await?,
            Some(text),
        ),
    };
    let format = if args.json {
        OutputFormat::Json
    } else {
        OutputFormat::Human
    };
    if planned.plan.is_error() {
        crate::out!(
            "{}",
            plan_cmd::render_plan(&planned.plan, &planned.loaded, format, &session.global)
        );
        return Err(session::plan_errors(&planned.plan, &planned.loaded).into());
    }
    if let Some(text) = written {
        session::write_file(path, &text)?;
        let block = provision::block_in(&text, &new.key).unwrap_or_default();
        crate::output::stderr(&render::provision::added(
            &new.key,
            &shown_path,
            block.0,
            &block.1,
        ));
    }
    crate::out!(
        "{}",
        plan_cmd::render_plan(&planned.plan, &planned.loaded, format, &session.global)
    );
    Ok(ExitStatus::Success)
}
