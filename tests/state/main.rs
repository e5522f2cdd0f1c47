//! State, locks and trust: durable writes, the state lock and its bypasses, concurrent
//! runs, and the PostgreSQL backend.
//!
//! One test binary per area (see tests/README.md); each file below is one module.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod audit_state;
mod concurrency;
mod redteam_lock;
mod redteam_pg;
mod redteam_signals;
mod state_postgres;
mod trust_durable;
mod trust_lock;
