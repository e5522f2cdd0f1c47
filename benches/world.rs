//! The synthetic world the benchmarks start from: read once through cwa's own clients from an
//! in-process sandbox seeded with `synthetic:N` (setup, never measured), and the state an
//! apply of its adopting plan records. Shared by `benches/cpu.rs` and
//! `examples/bench_state.rs` (`#[path]`), so both measure the same state.
#![allow(dead_code)]

use cwa::model::Live;
use cwa::plan::{Action, Plan};
use cwa::providers::{self, ClientOptions, Env};
use cwa::sandbox::{Sandbox, SandboxOptions};
use cwa::state::{State, StateResource};

/// The live world of `synthetic:n` and the sandbox's environment (its credentials, for the
/// secrets a plan compares).
pub fn read_world(n: usize) -> (Live, Vec<(String, String)>) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let opts = SandboxOptions::new(dir.path(), &format!("synthetic:{n}"));
        let sandbox = Sandbox::start(opts).await.expect("the sandbox starts");
        let env = sandbox.env();
        let clients = ClientOptions {
            rate_limit_rps: providers::PerProvider {
                telnyx: 0.0,
                livekit: 0.0,
                twilio: 0.0,
            },
            ..ClientOptions::default()
        };
        let needed = [
            cwa::model::ProviderName::Telnyx,
            cwa::model::ProviderName::Livekit,
        ];
        let connected = providers::connect(&Env::from_pairs(env.clone()), &clients, &needed)
            .expect("clients for the sandbox");
        let live = cwa::session::refresh(&connected)
            .await
            .expect("the synthetic world reads");
        sandbox.shutdown().await.expect("the sandbox stops");
        (live, env)
    })
}

/// The state an apply of an adopting plan records: every adopted address mapped to its live
/// object.
pub fn owned_state(adopting: &Plan, live: &Live) -> State {
    let mut state = State::new();
    for change in adopting
        .changes
        .iter()
        .filter(|c| c.action == Action::Adopt)
    {
        let id = change.id.as_deref().expect("an adopted object has an id");
        let object = live.get(change.kind, id).expect("adopted objects are live");
        state.upsert(
            &change.address,
            StateResource {
                id: id.to_string(),
                spec: object.spec.clone(),
                church: change.church.clone(),
                protected: false,
            },
        );
    }
    state
}
