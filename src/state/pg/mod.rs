//! State in PostgreSQL: rows per resource, the journal and the audit log as tables, and a
//! lease with a generation number in place of the lock file.
//!
//! The rest of cwa calls state synchronously (a save is a step of the executor, like the
//! fsync of state.json), so the driver's async client runs on a runtime of its own, on one
//! thread, and each operation is handed to it and waited for ([`block_on`]). One backend
//! (one connection, one lease) serves every `StateStore` of a process that names the same
//! workspace, so the lease an apply takes is the one its writes are fenced with.
//!
//! Fencing: every write to state, journal and audit runs in a transaction that first reads
//! the workspace's lease row `FOR UPDATE` and goes on only if the generation is still the one
//! this process holds ([`rows::begin_fenced`]). A holder that was paused or cut off past its
//! lease, and whose lease another cwa took over (the generation moved on), can never change
//! anything again.

mod lease;
pub mod registry;
mod rows;
mod schema;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_postgres::Client;

use super::location::PgTarget;
use super::{AuditEntry, JournalEntry, LockInfo, State, StateError};

pub use lease::lease_ttl;

/// The connection, migrations and lease of one workspace.
#[derive(Debug)]
pub struct PgBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: PgTarget,
    client: tokio::sync::Mutex<Option<Client>>,
    lease: Mutex<Option<lease::Held>>,
}

/// The backend for a workspace, shared by every store of this process that names it.
pub fn backend(target: &PgTarget) -> Arc<PgBackend> {
    static BACKENDS: OnceLock<Mutex<HashMap<PgTarget, Arc<PgBackend>>>> = OnceLock::new();
    let mut map = BACKENDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(target.clone())
        .or_insert_with(|| {
            Arc::new(PgBackend {
                inner: Arc::new(Inner {
                    target: target.clone(),
                    client: tokio::sync::Mutex::new(None),
                    lease: Mutex::new(None),
                }),
            })
        })
        .clone()
}

/// Runs a future on the PostgreSQL runtime and waits for its answer. Callable from any
/// thread, the main runtime's workers included: the waiting is on a channel, not a runtime.
fn block_on<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cwa-postgres")
            .enable_all()
            .build()
            .expect("a runtime for the PostgreSQL client")
    });
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .expect("the PostgreSQL task ended without an answer")
}

impl PgBackend {
    /// The URL (without password) and workspace, for messages.
    pub fn shown(&self) -> String {
        self.inner.target.shown()
    }

    pub fn load(&self) -> Result<State, StateError> {
        let inner = self.inner.clone();
        block_on(async move { rows::load(&inner).await })
    }

    /// Saves state (serial bumped by the caller's shared preparation), only if the stored
    /// lineage and serial are still `expected`'s, when given.
    pub fn save(&self, state: &State, expected: Option<&State>) -> Result<(), StateError> {
        let (state, expected) = (
            state.clone(),
            expected.map(|e| (e.lineage.clone(), e.serial)),
        );
        self.fenced("save state", move |inner, generation| {
            Box::pin(async move { rows::save(&inner, generation, &state, expected).await })
        })
    }

    pub fn record(&self, entry: &JournalEntry) -> Result<(), StateError> {
        let entry = entry.clone();
        self.fenced("write the journal", move |inner, generation| {
            Box::pin(async move { rows::record(&inner, generation, &entry).await })
        })
    }

    pub fn clear_journal(&self) -> Result<(), StateError> {
        self.fenced("clear the journal", move |inner, generation| {
            Box::pin(async move { rows::clear_journal(&inner, generation).await })
        })
    }

    /// Appends audit entries, in order, in one fenced transaction.
    pub fn audit(&self, entries: &[AuditEntry]) -> Result<(), StateError> {
        let entries = entries.to_vec();
        self.fenced("write the audit log", move |inner, generation| {
            Box::pin(async move { rows::audit(&inner, generation, &entries).await })
        })
    }

    pub fn journal_entries(&self) -> Result<Vec<JournalEntry>, StateError> {
        let inner = self.inner.clone();
        block_on(async move { rows::journal_entries(&inner).await })
    }

    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StateError> {
        let inner = self.inner.clone();
        block_on(async move { rows::audit_entries(&inner).await })
    }

    /// Takes the workspace's lease for `operation`, waiting up to `wait` for a holder whose
    /// lease is still current; an expired lease is taken over with a warning.
    pub fn acquire(&self, operation: &str, wait: Duration) -> Result<(), StateError> {
        let inner = self.inner.clone();
        let operation = operation.to_string();
        let taken = block_on(async move { lease::acquire(&inner, &operation, wait).await })?;
        if let Some(previous) = taken.took_over {
            super::lock::notify(super::lock::LockNotice::LeaseTakenOver {
                target: self.shown(),
                previous,
                expired_at: taken.expired_at,
                from: taken.generation - 1,
                to: taken.generation,
            });
        }
        *self.inner.lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(taken.held);
        Ok(())
    }

    /// Gives the lease back (its generation stays: the next holder gets the one after).
    pub fn release(&self) {
        let held = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(held) = held {
            let inner = self.inner.clone();
            if let Err(e) = block_on(async move { lease::release(&inner, held).await }) {
                tracing::warn!("cannot release the lease: {e}");
            }
        }
    }

    /// Checks, right before a provider write that cannot be undone, that the lease this
    /// process holds is still current (renewing it); refused (`Fenced`) once another cwa took
    /// it over. With no lease held there is nothing to have lost.
    pub fn confirm_lease(&self) -> Result<(), StateError> {
        let Some((generation, lost)) = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|h| (h.generation, h.lost.clone()))
        else {
            return Ok(());
        };
        let inner = self.inner.clone();
        let result = block_on(async move {
            let result = lease::confirm(&inner, generation).await;
            inner.settle(generation, result).await
        });
        if matches!(result, Err(StateError::Fenced { .. })) {
            lost.store(true, Ordering::SeqCst);
        }
        result
    }

    /// `cwa state unlock`: refused while the lease is unexpired unless `force`; either way
    /// the generation is bumped, so whoever held it can write nothing more.
    pub fn unlock(&self, force: bool) -> Result<LockInfo, StateError> {
        let inner = self.inner.clone();
        block_on(async move { lease::unlock(&inner, force).await })
    }

    /// Runs a write under the held lease's generation; with no lease held (a command that
    /// writes once, such as import), under a lease taken for this write alone.
    fn fenced<F>(&self, what: &'static str, op: F) -> Result<(), StateError>
    where
        F: FnOnce(Arc<Inner>, i64) -> rows::BoxFut<'static> + Send + 'static,
    {
        let held = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|h| (h.generation, h.lost.clone()));
        let inner = self.inner.clone();
        match held {
            Some((generation, lost)) => {
                let result = block_on(async move {
                    let result = op(inner.clone(), generation).await;
                    inner.settle(generation, result).await
                });
                if matches!(result, Err(StateError::Fenced { .. })) {
                    lost.store(true, Ordering::SeqCst);
                }
                result
            }
            None => {
                self.acquire(what, Duration::ZERO)?;
                let generation = self.held_generation().ok_or(StateError::NotLocked)?;
                let result = block_on(op(inner, generation));
                self.release();
                result
            }
        }
    }

    fn held_generation(&self) -> Option<i64> {
        self.inner
            .lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|h| h.generation)
    }
}

impl Inner {
    /// The connection, opened (and the schema migrated) on first use, and opened again when
    /// the server dropped it (a restart): the lease is a row, not the session, so a new
    /// connection carries on under the same generation.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StateError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            let mut client = connect(&self.target).await?;
            lease::bound_waits(&client)
                .await
                .map_err(self.error("configure the session with"))?;
            schema::migrate(&mut client, &self.target).await?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// A write that failed on a lost connection (the server ended this session: a restart,
    /// or this process stopped inside a transaction for longer than the server allows, see
    /// [`lease::bound_waits`]) is `Fenced` when the lease moved on meanwhile: the new holder
    /// reconciles, and this process must say that rather than "the server went away". Any
    /// other failure is returned as it was.
    async fn settle(
        self: Arc<Self>,
        generation: i64,
        result: Result<(), StateError>,
    ) -> Result<(), StateError> {
        let Err(StateError::Postgres { .. }) = &result else {
            return result;
        };
        match lease::current_generation(&self).await {
            Ok(current) if current != generation => Err(StateError::Fenced {
                target: self.target.shown(),
                generation,
                current,
            }),
            _ => result,
        }
    }

    fn error(&self, action: &'static str) -> impl Fn(tokio_postgres::Error) -> StateError + '_ {
        move |e| StateError::Postgres {
            target: self.target.shown(),
            action,
            detail: describe(&e),
        }
    }
}

/// Connects with TLS when the server offers it (`sslmode=prefer`, the driver's default) or
/// requires it (`sslmode=require`), verifying the server against the system's roots; over a
/// Unix socket (a local server) or with `sslmode=disable`, without. A password may come from
/// the URL or from `PGPASSWORD`.
async fn connect(target: &PgTarget) -> Result<Client, StateError> {
    let fail = |detail: String| StateError::Postgres {
        target: target.shown(),
        action: "connect to",
        detail,
    };
    let mut config: tokio_postgres::Config =
        target.url.parse().map_err(|e| fail(format!("{e}")))?;
    if config.get_password().is_none() {
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            config.password(pw);
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    use tokio_postgres::config::{Host, SslMode};
    let local_only = config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, Host::Unix(_)));
    let client = if local_only || config.get_ssl_mode() == SslMode::Disable {
        spawn_connection(config.connect(tokio_postgres::NoTls).await)
    } else {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config());
        spawn_connection(config.connect(tls).await)
    };
    client.map_err(|e| fail(describe(&e)))
}

/// Drives a new connection on this runtime; the client is what the caller keeps.
fn spawn_connection<S, T>(
    connected: Result<(Client, tokio_postgres::Connection<S, T>), tokio_postgres::Error>,
) -> Result<Client, tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = connected?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("the PostgreSQL connection ended: {}", describe(&e));
        }
    });
    Ok(client)
}

fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The driver's error with the server's message and every cause ("db error" alone says
/// nothing).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
