//! Arbitrary text must never make `cwa::config::parse` panic: it either loads or returns a
//! diagnostic whose labels all lie inside the text.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = cwa::config::parse(Path::new("fuzz.toml"), text) {
        for problem in err.problems() {
            for (span, _) in &problem.labels {
                assert!(
                    span.offset + span.len <= text.len().max(1),
                    "label outside the text"
                );
            }
        }
    }
});
