//! Red team (this session) against the PostgreSQL lease's new timeouts: `CWA_LEASE_TTL`
//! values an operator can set. Each must be used or refused with a diagnostic, never a panic
//! and never a session whose waits are unbounded.

use crate::common::postgres::PgCluster;
use crate::common::{stderr, Ctx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_ttls_out_of_range_are_never_a_panic() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let ctx = Ctx::runbook().await;
    let url = pg.url("workspace=redteam");
    for ttl in ["1e20", "1e300", "3e9", "0.000001"] {
        for args in [&["plan"][..], &["apply", "--auto-approve"]] {
            let out = ctx
                .cwa_env(
                    args,
                    &[("CWA_STATE_URL", url.as_str()), ("CWA_LEASE_TTL", ttl)],
                )
                .await;
            let err = stderr(&out);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "CWA_LEASE_TTL={ttl} cwa {args:?}: exit {:?}\n{err}",
                out.status.code()
            );
            assert!(
                !err.contains("panicked"),
                "CWA_LEASE_TTL={ttl} cwa {args:?}: {err}"
            );
        }
    }
}
