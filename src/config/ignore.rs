//! `[ignore]` and `[kept]` of lines.toml: what drift does not report, and which numbers cwa
//! keeps on purpose after their line was removed.
//!
//! ```toml
//! [ignore]
//! "2925216093662349036" = "LiveKit Inbound v2: left out on purpose (see the DISAGREE note)"
//!
//! [kept]
//! "+13135550100" = "Grace closed in 2026; the number stays ours for a year"
//! ```
//!
//! A key is a live id, an address (`kind.name`) or, for numbers, the number in E.164. Every
//! entry must say why: an empty reason is an error at the entry.

use toml::Spanned;

use super::error::{Problem, ProblemKind};
use super::raw::RawFile;
use crate::model::{Ignored, Policy, SourceSpan};

/// Copies `[ignore]` and `[kept]` into `policy`, recording an error for each entry with an
/// empty key or reason.
pub fn apply(raw: &RawFile, policy: &mut Policy, problems: &mut Vec<Problem>) {
    policy.ignore = entries("ignore", &raw.ignore, problems);
    policy.kept = entries("kept", &raw.kept, problems);
}

fn entries(
    section: &str,
    raw: &[(Spanned<String>, Spanned<String>)],
    problems: &mut Vec<Problem>,
) -> Vec<Ignored> {
    let mut out = Vec::new();
    for (key, reason) in raw {
        let span: SourceSpan = key.span().into();
        if key.get_ref().trim().is_empty() || reason.get_ref().trim().is_empty() {
            problems.push(
                Problem::error(
                    ProblemKind::Policy,
                    span,
                    "here",
                    format!(
                        "an entry of [{section}] needs a live id, address or number and a reason"
                    ),
                )
                .with_help(format!(
                    "write `\"<id, address or number>\" = \"why\"` under [{section}]"
                )),
            );
            continue;
        }
        out.push(Ignored {
            key: key.get_ref().trim().to_string(),
            reason: reason.get_ref().clone(),
            span: Some(span),
        });
    }
    out
}
