//! The lease on a workspace: a row saying who holds it, until when, and under which
//! generation. Unlike a session advisory lock it does not live in a connection (so it neither
//! leaks through a pool nor vanishes when the server restarts), and it is per workspace (no
//! global lock for everyone). Times are the server's clock, so machines whose clocks differ
//! agree on expiry.
//!
//! Liveness: the lease row is locked `FOR UPDATE` by every write (the fence), so a holder
//! stopped inside a transaction (SIGSTOP, a debugger, a VM paused) would keep it locked, and
//! every take-over would wait on it for as long as the holder stays stopped.
//! [`bound_waits`] sets each session's `idle_in_transaction_session_timeout` to half a lease:
//! the server then ends a session idle inside a transaction that long, which aborts its
//! transaction and releases its locks before its lease can expire, so the take-over proceeds
//! and the stopped holder, once resumed, finds its connection gone and its lease taken
//! (`Fenced`). `lock_timeout` (also half a lease) bounds every wait on a lock, so a waiter
//! answers "held by …" rather than hanging whatever the holder does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::lock::LockNotice;
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
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|ttl| *ttl <= MAX_TTL)
        .unwrap_or(DEFAULT_TTL)
}

/// The longest lease `CWA_LEASE_TTL` may ask for: half of it must fit the server's timeout
/// settings (milliseconds in an `int`, about 24.8 days), and `from_secs_f64` panics past
/// `u64` seconds. A larger value is ignored like one that is not a number.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

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

/// The lease row as read without taking its lock (by a taker that found it locked).
const SELECT_ROW_UNLOCKED: &str = "SELECT generation, holder, pid, operation, \
     to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
     to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
     coalesce(expires_at > now(), false) \
     FROM cwa_leases WHERE workspace = $1";

/// The lease row, locked for the rest of the transaction.
fn select_row() -> String {
    format!("{SELECT_ROW_UNLOCKED} FOR UPDATE")
}

/// Bounds how long this session can hold or wait for a lock, below the lease's TTL (see the
/// module's doc): `idle_in_transaction_session_timeout` and `lock_timeout` at half of it.
/// No `statement_timeout`: a statement that is merely slow (a large first save) holds the
/// lease row while it runs, which is what the fence is for; a stopped client is the case
/// that never ends, and it is idle, not running.
pub async fn bound_waits(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    let half = (lease_ttl() / 2)
        .max(Duration::from_millis(100))
        .as_millis();
    client
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = {half}; SET lock_timeout = {half}"
        ))
        .await
}

/// Whether a statement gave up waiting for a lock (`lock_timeout`, SQLSTATE 55P03).
fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// The workspace's current lease generation, read without locking (0 before any lease).
pub async fn current_generation(inner: &Arc<Inner>) -> Result<i64, StateError> {
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    Ok(client
        .query_opt(
            "SELECT generation FROM cwa_leases WHERE workspace = $1",
            &[&inner.target.workspace],
        )
        .await
        .map_err(inner.error("read the lease on"))?
        .map_or(0, |r| r.get(0)))
}

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
    let before = match tx
        .query_one(&select_row(), &[&inner.target.workspace])
        .await
    {
        Ok(r) => row(&r),
        Err(e) if is_lock_timeout(&e) => {
            drop(tx);
            return Ok(Err(locked_by(client, inner).await?));
        }
        Err(e) => return Err(fail(e)),
    };
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

/// Who holds the lease row's lock past `lock_timeout`, as the row says without its lock: the
/// holder it names, or (a lease being taken right now) another cwa.
async fn locked_by(
    client: &tokio_postgres::Client,
    inner: &Arc<Inner>,
) -> Result<(LockInfo, String), StateError> {
    let found = row(&client
        .query_one(SELECT_ROW_UNLOCKED, &[&inner.target.workspace])
        .await
        .map_err(inner.error("read the lease on"))?);
    let info = found.holder.unwrap_or_else(|| LockInfo {
        holder: "another cwa taking the lease".into(),
        pid: 0,
        operation: "take the lease".into(),
        time: String::new(),
        started: None,
    });
    Ok((info, found.expires))
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
                    super::super::lock::notify(LockNotice::LeaseLost {
                        target: inner.target.shown(),
                        generation,
                    });
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
    let current = current_generation(inner).await?;
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
        .query_opt(&select_row(), &[&inner.target.workspace])
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
