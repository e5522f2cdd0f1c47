//! The checks that need no network: the runbooks' rules ([`crate::checks::validate`], each
//! written once for `validate` and `check` alike) and the providers' limits.

use super::error::Problem;
use super::expand::Expanded;

/// Runs every check, appending errors and warnings.
pub fn run(x: &Expanded, problems: &mut Vec<Problem>) {
    crate::checks::validate(x, problems);
    super::provider_limits::run(x, problems);
}
