//! The sandbox itself: each provider's emulated API, strict contract mode, faults, the
//! server and its request log, and the calls plane.
//!
//! One test binary per area (see tests/README.md); each file below is one module.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod calls;
mod faults;
mod livekit;
mod livekit_numbers;
mod server;
mod strict;
mod telnyx;
mod telnyx_reservations;
mod twilio;
