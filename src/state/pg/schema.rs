//! The schema, created and migrated by cwa: numbered migrations, each applied once, in a
//! transaction, recorded in `cwa_schema`. Several cwa processes starting at once serialize
//! on a transaction-scoped advisory lock (released at commit, so it never outlives the
//! migration nor leaks through a connection pool). A database migrated by a newer cwa is
//! refused, as a newer state file is.

use tokio_postgres::Client;

use super::super::location::PgTarget;
use super::super::StateError;

/// Any constant both sides agree on; it only serializes migrations.
const MIGRATION_LOCK: i64 = 0x6377_615f_7363_6800;

/// Migration `n` is `MIGRATIONS[n - 1]`. Only ever append.
const MIGRATIONS: &[&str] = &[
    // 1: workspaces, resources as rows, the lease, the journal and the audit log.
    r#"
CREATE TABLE cwa_states (
    workspace          text PRIMARY KEY,
    format_version     integer NOT NULL,
    lineage            text NOT NULL,
    serial             bigint NOT NULL,
    fingerprint_key_id text,
    protected          jsonb NOT NULL DEFAULT '{}',
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL DEFAULT ''
);
CREATE TABLE cwa_resources (
    workspace text NOT NULL REFERENCES cwa_states (workspace) ON DELETE CASCADE,
    address   text NOT NULL,
    kind      text NOT NULL,
    id        text NOT NULL,
    church    text,
    protected boolean NOT NULL DEFAULT false,
    spec      jsonb NOT NULL,
    digest    text NOT NULL,
    PRIMARY KEY (workspace, address)
);
CREATE INDEX cwa_resources_by_church ON cwa_resources (workspace, church);
CREATE TABLE cwa_leases (
    workspace   text PRIMARY KEY,
    generation  bigint NOT NULL DEFAULT 0,
    holder      text,
    pid         integer,
    operation   text,
    acquired_at timestamptz,
    expires_at  timestamptz
);
CREATE TABLE cwa_journal (
    seq        bigserial PRIMARY KEY,
    workspace  text NOT NULL,
    generation bigint NOT NULL,
    address    text NOT NULL,
    phase      text NOT NULL,
    reference  text NOT NULL,
    entry      jsonb NOT NULL
);
CREATE INDEX cwa_journal_by_workspace ON cwa_journal (workspace, seq);
CREATE TABLE cwa_audit (
    seq        bigserial PRIMARY KEY,
    workspace  text NOT NULL,
    generation bigint NOT NULL,
    time       text NOT NULL,
    operator   text NOT NULL,
    address    text NOT NULL,
    id         text,
    action     text NOT NULL,
    outcome    text NOT NULL
);
CREATE INDEX cwa_audit_by_workspace ON cwa_audit (workspace, seq);
"#,
    // 2: what `cwa export registry` wrote into the customer's routing table, so that a
    // number cwa no longer routes is cleared only where cwa itself wrote it.
    r#"
CREATE TABLE cwa_registry_writes (
    target_table  text NOT NULL,
    number_column text NOT NULL,
    church_id     text NOT NULL,
    number        text NOT NULL,
    written_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_table, number_column, church_id)
);
"#,
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the schema up to [`SCHEMA_VERSION`].
pub async fn migrate(client: &mut Client, target: &PgTarget) -> Result<(), StateError> {
    let fail = |e: tokio_postgres::Error| StateError::Postgres {
        target: target.shown(),
        action: "migrate the schema of",
        detail: super::describe(&e),
    };
    // A schema already current needs no DDL, and so no CREATE privilege: a role granted only
    // reads and writes on the tables (README, "What to grant") works once an owner created them.
    match installed_version(client).await.map_err(fail)? {
        v if v == SCHEMA_VERSION => return Ok(()),
        v if v > SCHEMA_VERSION => return Err(newer(target, v)),
        _ => {}
    }
    let tx = client.transaction().await.map_err(fail)?;
    // A migration waits for another's however long it takes (the session's lock_timeout is
    // for the lease row); one stopped midway is ended by its idle-in-transaction timeout.
    tx.batch_execute("SET LOCAL lock_timeout = 0")
        .await
        .map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS cwa_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(fail)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM cwa_schema", &[])
        .await
        .map_err(fail)?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(newer(target, current));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(fail)?;
        tx.execute("INSERT INTO cwa_schema (version) VALUES ($1)", &[&version])
            .await
            .map_err(fail)?;
        tracing::info!(version, "migrated the PostgreSQL state schema");
    }
    tx.commit().await.map_err(fail)
}

/// The version recorded in `cwa_schema` (on the search path), 0 where there is none yet.
async fn installed_version(client: &Client) -> Result<i32, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('cwa_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one("SELECT coalesce(max(version), 0) FROM cwa_schema", &[])
        .await?
        .get(0))
}

fn newer(target: &PgTarget, found: i32) -> StateError {
    StateError::NewerSchema {
        target: target.shown(),
        found,
        supported: SCHEMA_VERSION,
    }
}
