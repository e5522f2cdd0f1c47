//! `cwa add church KEY …`: the new block is validated and planned before lines.toml is written.

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
        reserve: args.reserve,
    }
}

async fn run(
    session: &Session,
    args: &AddChurchArgs,
    new: &NewChurch,
) -> miette::Result<ExitStatus> {
    let _lock = session.lock_for_edit("add")?;
    let path = &session.global.config;
    let text = std::fs::read_to_string(path)
        .map_err(|e| miette::miette!("cannot read {}: {e}", path.display()))?;
    let planning = PlanningArgs {
        refresh: args.refresh,
        targets: vec![format!("church.{}", new.key)],
        allow_mass_change: false,
        release_numbers: false,
    };
    let shown_path = path.display().to_string();
    let format = if args.json {
        OutputFormat::Json
    } else {
        OutputFormat::Human
    };
    let refused = |planned: &session::Planned| -> miette::Report {
        crate::out!(
            "{}",
            render::plan::view(&planned.plan, &planned.loaded, format, &session.global)
        );
        session::plan_errors(&planned.plan, &planned.loaded).into()
    };
    let (planned, written) = match provision::add(path, &text, new, None)? {
        Added::Unchanged => {
            crate::output::stderr(&render::provision::unchanged(&new.key, &shown_path));
            (session.plan_checked(&planning).await?, None)
        }
        Added::Written { text: auto, loaded } => {
            // The block is planned as it would be without a reservation (its number "auto" in
            // the area code) before anything is held at Telnyx: a refused plan reserves nothing.
            let planned = session.plan_checked_of(*loaded, &planning).await?;
            if planned.plan.is_error() {
                return Err(refused(&planned));
            }
            if args.reserve {
                let reservation = provision::reserve(session, &planned.loaded, new).await?;
                let Added::Written { text, loaded } =
                    provision::add(path, &text, new, Some(&reservation))?
                else {
                    return Err(miette::miette!(
                        "church.{} appeared in the text being edited; nothing was written",
                        new.key
                    ));
                };
                let planned = session.plan_checked_of(*loaded, &planning).await?;
                if planned.plan.is_error() {
                    // Planned clean as "auto" but refused with the reserved number: say what
                    // is held, so nobody wonders why the number is on hold for 30 minutes.
                    return Err(refused(&planned).wrap_err(format!(
                        "{} stays reserved ({}, until {}) but nothing was written",
                        reservation.number, reservation.id, reservation.expires_at
                    )));
                }
                (planned, Some(text))
            } else {
                (planned, Some(auto))
            }
        }
    };
    if planned.plan.is_error() {
        return Err(refused(&planned));
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
        render::plan::view(&planned.plan, &planned.loaded, format, &session.global)
    );
    Ok(ExitStatus::Success)
}
