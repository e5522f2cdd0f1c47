//! End to end through the real `cwa` binary: every command (plan, apply, drift, check, import,
//! export, validate, graph, fmt, show), config diagnostics, bad input, secrets, red-team cases,
//! the CI workflows. Most tests run against a sandbox on 127.0.0.1 through `common::Ctx`.
//!
//! One test binary per area (see tests/README.md); each file below is one module.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod add;
mod apply;
mod audit_review;
mod audit_trust;
mod audit_wire;
mod bad_input;
mod certified;
mod check;
mod config_errors;
mod drift;
mod drift_preserved;
mod emergency;
mod export;
mod import;
mod json_versions;
mod plan;
mod plan_twilio_domains;
mod provider_limits;
mod redteam;
mod redteam_add;
mod redteam_input;
mod redteam_pipes;
mod redteam_plans;
mod redteam_s6;
mod redteam_wire;
mod review;
mod secrets;
mod telnyx_fidelity;
mod trust_files;
mod validate_graph;
mod workflows;
