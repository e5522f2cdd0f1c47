//! The lease on a workspace: a row saying who holds it, until when, and under which
//! generation. Unlike a session advisory lock it does not live in a connection (so it neither
//! leaks through a pool nor vanishes when the server restarts), and it is per workspace (no
//! global lock for everyone). Times are the server's clock, so machines whose clocks differ
//! agree on expiry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::{LeaseHolder, LockInfo, StateError};
use super::Inner;

/// The lease's time to live when `CWA_LEASE_TTL` does not say.
const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// `CWA_LEASE_TTL` (seconds): how long a lease lasts without renewal. A running apply renews
/// it every third of that; a holder silent for longer (killed, paused, cut off) loses it to
/// the next cwa that asks.
pub fn lease_ttl() -> Duration {
    std::env::var("CWA_LEASE_TTL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TTL)
}

/// A lease this process holds.
#[derive(Debug)]
pub struct Held {
    pub generation: i64,
    /// Set once a renewal or a write found the generation moved on.
    pub lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

/// What taking the lease found.
pub struct Taken {
    pub held: Held,
    pub generation: i64,
    /// The expired lease this one replaced, if any.
    pub took_over: Option<LockInfo>,
    pub expired_at: String,
}

/// The lease row as it stands.
struct Row {
    generation: i64,
    holder: Option<LockInfo>,
    expires: String,
    live: bool,
}

const SELECT_ROW: &str = "SELECT generation, holder, pid, operation, \
     to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
     to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
     coalesce(expires_at > now(), false) \
     FROM cwa_leases WHERE workspace = $1 FOR UPDATE";

fn row(r: &tokio_postgres::Row) -> Row {
    let holder = r.get::<_, Option<String>>(1).map(|holder| LockInfo {
        holder,
        pid: r.get::<_, Option<i32>>(2).unwrap_or_default() as u32,
        operation: r.get::<_, Option<String>>(3).unwrap_or_default(),
        time: r.get::<_, Option<String>>(4).unwrap_or_default(),
        started: None,
    });
    Row {
        generation: r.get(0),
        holder,
        expires: r.get::<_, Option<String>>(5).unwrap_or_default(),
        live: r.get(6),
    }
}

/// Takes the lease, waiting up to `wait` while another holder's lease is current.
pub async fn acquire(
    inner: &Arc<Inner>,
    operation: &str,
    wait: Duration,
) -> Result<Taken, StateError> {
    let deadline = Instant::now() + wait;
    loop {
        match try_acquire(inner, operation).await? {
            Ok(taken) => return Ok(taken),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err((info, expires)) => return Err(held_error(inner, info, expires)),
        }
    }
}

/// One attempt: the lease row is read and changed in one transaction, under `FOR UPDATE`, so
/// of two takers one waits for the other and then sees its lease.
async fn try_acquire(
    inner: &Arc<Inner>,
    operation: &str,
) -> Result<Result<Taken, (LockInfo, String)>, StateError> {
    let ttl = lease_ttl();
    let mut guard = inner.client().await?;
    let client = guard.as_mut().expect("connected");
    let fail = inner.error("take the lease on");
    client
        .execute(
            "INSERT INTO cwa_leases (workspace) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&inner.target.workspace],
        )
        .await
        .map_err(&fail)?;
    let tx = client.transaction().await.map_err(&fail)?;
    let before = row(&tx
        .query_one(SELECT_ROW, &[&inner.target.workspace])
        .await
        .map_err(&fail)?);
    if let (Some(info), true) = (&before.holder, before.live) {
        return Ok(Err((info.clone(), before.expires)));
    }
    let me = super::super::operator();
    let generation: i64 = tx
        .query_one(
            "UPDATE cwa_leases SET generation = generation + 1, holder = $2, pid = $3, \
             operation = $4, acquired_at = now(), expires_at = now() + make_interval(secs => $5) \
             WHERE workspace = $1 RETURNING generation",
            &[
                &inner.target.workspace,
                &me,
                &(std::process::id() as i32),
                &operation,
                &ttl.as_secs_f64(),
            ],
        )
        .await
        .map_err(&fail)?
        .get(0);
    tx.commit().await.map_err(&fail)?;
    drop(guard);
    debug_assert!(generation > before.generation);
    let lost = Arc::new(AtomicBool::new(false));
    let renewal = spawn_renewal(inner.clone(), generation, lost.clone(), ttl);
    Ok(Ok(Taken {
        held: Held {
            generation,
            lost,
            renewal,
        },
        generation,
        took_over: before.holder,
        expired_at: before.expires,
    }))
}

/// Renews the lease every third of its TTL while it is held. A renewal that finds the
/// generation moved on (the lease was taken over while this process was paused or cut off)
/// stops and marks it lost; the next write is refused anyway, by the fence.
fn spawn_renewal(
    inner: Arc<Inner>,
    generation: i64,
    lost: Arc<AtomicBool>,
    ttl: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = (ttl / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match renew(&inner, generation, ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    lost.store(true, Ordering::SeqCst);
                    crate::errln!(
                        "warning: the lease on {} was taken over by another cwa (this process held generation {generation}); nothing more this run does is written",
                        inner.target.shown()
                    );
                    return;
                }
                Err(e) => tracing::warn!("cannot renew the lease: {e}"),
            }
        }
    })
}

/// Right before a provider write that cannot be undone: the lease must still be at
/// `generation`, and is renewed for a whole TTL in the same statement (a take-over waits for
/// the row, then finds a live lease), so it cannot lapse while the write is in flight. A lease
/// taken over meanwhile (this process was paused or cut off past its TTL) is `Fenced`.
pub async fn confirm(inner: &Arc<Inner>, generation: i64) -> Result<(), StateError> {
    if renew(inner, generation, lease_ttl()).await? {
        return Ok(());
    }
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    let current: i64 = client
        .query_opt(
            "SELECT generation FROM cwa_leases WHERE workspace = $1",
            &[&inner.target.workspace],
        )
        .await
        .map_err(inner.error("read the lease on"))?
        .map_or(0, |r| r.get(0));
    Err(StateError::Fenced {
        target: inner.target.shown(),
        generation,
        current,
    })
}

async fn renew(inner: &Arc<Inner>, generation: i64, ttl: Duration) -> Result<bool, StateError> {
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    let n = client
        .execute(
            "UPDATE cwa_leases SET expires_at = now() + make_interval(secs => $3) \
             WHERE workspace = $1 AND generation = $2 AND holder IS NOT NULL",
            &[&inner.target.workspace, &generation, &ttl.as_secs_f64()],
        )
        .await
        .map_err(inner.error("renew the lease on"))?;
    Ok(n == 1)
}

/// Gives the lease back under its own generation: one taken over meanwhile is not touched.
pub async fn release(inner: &Arc<Inner>, held: Held) -> Result<(), StateError> {
    held.renewal.abort();
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    client
        .execute(
            "UPDATE cwa_leases SET holder = NULL, pid = NULL, operation = NULL, expires_at = now() \
             WHERE workspace = $1 AND generation = $2",
            &[&inner.target.workspace, &held.generation],
        )
        .await
        .map_err(inner.error("release the lease on"))?;
    Ok(())
}

/// Clears the lease, refusing an unexpired one unless `force`; the generation is bumped, so
/// the holder it belonged to is fenced out of every later write.
pub async fn unlock(inner: &Arc<Inner>, force: bool) -> Result<LockInfo, StateError> {
    let mut guard = inner.client().await?;
    let client = guard.as_mut().expect("connected");
    let fail = inner.error("unlock");
    let tx = client.transaction().await.map_err(&fail)?;
    let found = tx
        .query_opt(SELECT_ROW, &[&inner.target.workspace])
        .await
        .map_err(&fail)?
        .map(|r| row(&r));
    let Some(Row {
        holder: Some(info),
        live,
        expires,
        ..
    }) = found
    else {
        return Err(StateError::NotLocked);
    };
    if live && !force {
        return Err(held_error(inner, info, expires));
    }
    tx.execute(
        "UPDATE cwa_leases SET generation = generation + 1, holder = NULL, pid = NULL, \
         operation = NULL, expires_at = now() WHERE workspace = $1",
        &[&inner.target.workspace],
    )
    .await
    .map_err(&fail)?;
    tx.commit().await.map_err(&fail)?;
    Ok(info)
}

fn held_error(inner: &Inner, info: LockInfo, expires: String) -> StateError {
    StateError::LeaseHeld(Box::new(LeaseHolder {
        target: inner.target.shown(),
        holder: info.holder,
        pid: info.pid,
        operation: info.operation,
        time: info.time,
        expires,
    }))
}
