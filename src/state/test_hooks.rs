//! Test-only points where a process stops as a kill or a pause would stop it, so the crash
//! and fencing tests can hit exact instants (like the executor's `CWA_TEST_CRASH_AT`). Unset
//! variables cost one environment lookup.

use std::collections::HashMap;
use std::sync::Mutex;

/// With `CWA_TEST_CRASH_AT=MOMENT:N` the process aborts the N-th time it reaches `moment`.
pub fn crash_point(moment: &str) {
    if reached("CWA_TEST_CRASH_AT", moment) {
        crate::errln!("CWA_TEST_CRASH_AT={moment}: aborting");
        std::process::abort();
    }
}

/// With `CWA_TEST_STOP_AT=MOMENT:N` the process stops itself (SIGSTOP, as `kill -STOP` would)
/// the N-th time it reaches `moment`, and goes on when it is continued (SIGCONT).
pub fn stop_point(moment: &str) {
    if reached("CWA_TEST_STOP_AT", moment) {
        crate::errln!("CWA_TEST_STOP_AT={moment}: stopping");
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &std::process::id().to_string()])
            .status();
    }
}

/// Whether `var` names `moment` and this is the N-th time it is reached. The variable may
/// name several moments, comma-separated (`lock-stale-seen:1,lock-taking-over:1`).
fn reached(var: &str, moment: &str) -> bool {
    static SEEN: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
    let Some(n) = std::env::var(var).ok().and_then(|spec| {
        spec.split(',').find_map(|one| {
            let (at, n) = one.trim().split_once(':')?;
            (at == moment).then(|| n.parse::<usize>().ok())?
        })
    }) else {
        return false;
    };
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let count = seen
        .get_or_insert_with(HashMap::new)
        .entry(format!("{var}:{moment}"))
        .or_default();
    *count += 1;
    *count == n
}
