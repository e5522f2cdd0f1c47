//! Arbitrary text must never make the plan-file reader panic (a plan file is edited by hand,
//! truncated, or comes from another version). What it accepts must be schedulable (its
//! change graph indices lie inside the plan) and survive a render/read round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = cwa::plan::Plan::from_json(text) else {
        return;
    };
    let waves = cwa::plan::graph_waves(plan.changes.len(), &plan.edges);
    assert_eq!(
        waves.iter().map(Vec::len).sum::<usize>(),
        plan.changes.len(),
        "every change is scheduled exactly once"
    );
    let written = cwa::render::json(&plan);
    let back = cwa::plan::Plan::from_json(&written).expect("what cwa writes, cwa reads");
    assert_eq!(back, plan, "a render/read round trip changed the plan");
});
