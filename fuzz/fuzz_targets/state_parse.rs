//! Arbitrary text must never make the state reader panic. What it accepts must survive the
//! uses every command makes of a loaded state (addresses, the live view, the fingerprint) and
//! a save/load round trip unchanged.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(state) = cwa::state::parse_state(Path::new("state.json"), text) else {
        return;
    };
    let _ = state.owned().count();
    let _ = state.as_live();
    let _ = state.fingerprint();
    let written = serde_json::to_string_pretty(&state).expect("a loaded state serializes");
    let back = cwa::state::parse_state(Path::new("state.json"), &written)
        .expect("what cwa writes, cwa reads");
    assert_eq!(back, state, "a save/load round trip changed the state");
});
