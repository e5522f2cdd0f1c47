//! The provider clients in-process over real HTTP to the sandbox (Telnyx, LiveKit, Twilio,
//! retries and resilience, verify-after-write), and the executor under every fault the sandbox
//! can inject (the fault matrix, the apply property test).
//!
//! One test binary per area (see tests/README.md); each file below is one module.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod apply_property;
mod fault_matrix;
mod livekit;
mod livekit_numbers;
mod pacing;
mod resilience;
mod telnyx;
mod twilio;
mod verify_after_write;
