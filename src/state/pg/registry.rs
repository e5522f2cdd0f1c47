//! `cwa export registry --to postgres://…`: sets each church's number in the customer's own
//! routing table (such as the runbook's `church_voice_agents.twilio_phone_number`), keyed by
//! church id, in one transaction, showing the diff first. Rows are never deleted and no other
//! column is touched; a number cwa no longer routes is cleared only on a row whose value cwa
//! itself wrote (remembered in `cwa_registry_writes`).

use std::collections::BTreeMap;

use super::super::location::PgTarget;
use super::super::StateError;
use super::{backend, block_on};

/// The table and its two columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTable {
    pub table: String,
    pub church_column: String,
    pub number_column: String,
}

/// One change to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChange {
    /// No row for the church yet: one is inserted with the church id and the number.
    Insert { church: String, number: String },
    Set {
        church: String,
        from: Option<String>,
        to: String,
    },
    /// The church is no longer routed and the value is the one cwa wrote.
    Clear { church: String, number: String },
}

/// What to change, from what should be routed (church id -> number), the table's rows
/// (church id -> number) and what cwa wrote before.
pub fn diff(
    wanted: &BTreeMap<String, String>,
    rows: &BTreeMap<String, Option<String>>,
    written: &BTreeMap<String, String>,
) -> Vec<RegistryChange> {
    let mut out = Vec::new();
    for (church, number) in wanted {
        match rows.get(church) {
            None => out.push(RegistryChange::Insert {
                church: church.clone(),
                number: number.clone(),
            }),
            Some(current) if current.as_ref() != Some(number) => out.push(RegistryChange::Set {
                church: church.clone(),
                from: current.clone(),
                to: number.clone(),
            }),
            Some(_) => {}
        }
    }
    for (church, current) in rows {
        let ours = current.is_some() && written.get(church) == current.as_ref();
        if !wanted.contains_key(church) && ours {
            out.push(RegistryChange::Clear {
                church: church.clone(),
                number: current.clone().unwrap_or_default(),
            });
        }
    }
    out
}

/// A table or column name, refused unless a plain identifier (`schema.table` allowed for
/// the table), so it can be quoted into SQL safely.
fn ident(name: &str, dotted: bool) -> Result<String, String> {
    let parts: Vec<&str> = if dotted {
        name.split('.').collect()
    } else {
        vec![name]
    };
    let plain = |p: &&str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if parts.len() > 2 || !parts.iter().all(plain) {
        return Err(format!("{name:?} is not a plain SQL identifier"));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

/// What `export` calls with the changes before it writes any (the command prints them).
pub type ShowChanges = Box<dyn FnOnce(&[RegistryChange]) + Send>;

/// Computes the changes, hands them to `show` before anything is written (so the operator
/// sees the diff even when the write then fails), and, unless `dry_run`, carries them out, all
/// in one transaction: a failed write or commit rolls every change back.
pub fn export(
    target: &PgTarget,
    spec: &RegistryTable,
    wanted: BTreeMap<String, String>,
    dry_run: bool,
    show: ShowChanges,
) -> Result<Vec<RegistryChange>, StateError> {
    let bad = |detail: String| StateError::BadLocation {
        given: spec.table.clone(),
        detail,
    };
    let table = ident(&spec.table, true).map_err(bad)?;
    let church = ident(&spec.church_column, false).map_err(bad)?;
    let number = ident(&spec.number_column, false).map_err(bad)?;
    let pg = backend(target);
    let inner = pg.inner.clone();
    let key = (spec.table.clone(), spec.number_column.clone());
    block_on(async move {
        let mut guard = inner.client().await?;
        let client = guard.as_mut().expect("connected");
        let fail = inner.error("export the registry to");
        let unwritten =
            inner.error("write the registry changes above (none of them was written) to");
        let tx = client.transaction().await.map_err(&fail)?;
        let rows: BTreeMap<String, Option<String>> = tx
            .query(
                &format!("SELECT {church}::text, {number}::text FROM {table} FOR UPDATE"),
                &[],
            )
            .await
            .map_err(&fail)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let written: BTreeMap<String, String> = tx
            .query(
                "SELECT church_id, number FROM cwa_registry_writes WHERE target_table = $1 AND number_column = $2",
                &[&key.0, &key.1],
            )
            .await
            .map_err(&fail)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let changes = diff(&wanted, &rows, &written);
        show(&changes);
        if dry_run {
            return Ok(changes);
        }
        for change in &changes {
            let (sql, church_id, param, kept) = match change {
                RegistryChange::Insert { church: c, number: n } => (
                    format!("INSERT INTO {table} ({church}, {number}) VALUES ($1::text::uuid, $2)"),
                    c,
                    n,
                    Some(n),
                ),
                RegistryChange::Set { church: c, to, .. } => (
                    format!("UPDATE {table} SET {number} = $2 WHERE {church}::text = $1"),
                    c,
                    to,
                    Some(to),
                ),
                RegistryChange::Clear { church: c, number: old } => (
                    format!("UPDATE {table} SET {number} = NULL WHERE {church}::text = $1 AND {number}::text = $2"),
                    c,
                    old,
                    None,
                ),
            };
            tx.execute(&sql, &[church_id, param])
                .await
                .map_err(&unwritten)?;
            remember(&tx, &key, church_id, kept)
                .await
                .map_err(&unwritten)?;
        }
        tx.commit().await.map_err(&unwritten)?;
        Ok(changes)
    })
}

/// Records what cwa wrote to a row (or that it cleared it).
async fn remember(
    tx: &tokio_postgres::Transaction<'_>,
    key: &(String, String),
    church: &str,
    number: Option<&String>,
) -> Result<(), tokio_postgres::Error> {
    match number {
        Some(n) => tx
            .execute(
                "INSERT INTO cwa_registry_writes (target_table, number_column, church_id, number) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (target_table, number_column, church_id) DO UPDATE SET number = EXCLUDED.number, written_at = now()",
                &[&key.0, &key.1, &church, n],
            )
            .await,
        None => tx
            .execute(
                "DELETE FROM cwa_registry_writes WHERE target_table = $1 AND number_column = $2 AND church_id = $3",
                &[&key.0, &key.1, &church],
            )
            .await,
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn sets_inserts_and_clears_only_what_cwa_wrote() {
        let wanted = map(&[
            ("a", "+1".to_string()),
            ("b", "+2".to_string()),
            ("n", "+9".to_string()),
        ]);
        let rows = map(&[
            ("a", Some("+1".to_string())),
            ("b", None),
            ("gone-ours", Some("+5".to_string())),
            ("gone-theirs", Some("+6".to_string())),
        ]);
        let written = map(&[
            ("gone-ours", "+5".to_string()),
            ("gone-theirs", "+7".to_string()),
        ]);
        let changes = diff(&wanted, &rows, &written);
        assert_eq!(
            changes,
            [
                RegistryChange::Set {
                    church: "b".into(),
                    from: None,
                    to: "+2".into()
                },
                RegistryChange::Insert {
                    church: "n".into(),
                    number: "+9".into()
                },
                RegistryChange::Clear {
                    church: "gone-ours".into(),
                    number: "+5".into()
                },
            ]
        );
    }

    #[test]
    fn names_are_plain_identifiers() {
        assert_eq!(
            ident("public.church_voice_agents", true).unwrap(),
            "\"public\".\"church_voice_agents\""
        );
        assert!(ident("x; DROP TABLE y", true).is_err());
        assert!(ident("a.b", false).is_err());
    }
}
