//! Each provider call of a change: resolve references and secrets, check the lock, write,
//! read back and verify.

use std::sync::atomic::Ordering;

use crate::model::{Address, Kind, LiveObject, NumberRef, NumberSpec, Ref, SecretRef, Spec};
use crate::plan::{Action, Change, FieldChange, Plan};
use crate::protection::Write;
use crate::providers::{ProviderError, WriteRequest};
use crate::state::{StateError, StateResource};

use super::executor::outcome;
use super::{ApplyError, Executor, Outcome};

impl Executor {
    pub(super) async fn record_verified(
        &self,
        change: &Change,
    ) -> Result<Option<String>, ApplyError> {
        let Some(id) = change.id.clone() else {
            return Ok(None);
        };
        let known = self.shared.lock().await.ids.get(&change.address) == Some(&id);
        if !known {
            let live = self.read(&change.address, &id).await?;
            self.remember(&change.address, change, live, change.protected)
                .await?;
        }
        Ok(Some(id))
    }

    pub(super) async fn forget(&self, change: &Change) -> Result<Option<String>, ApplyError> {
        let mut shared = self.shared.lock().await;
        shared.state.remove(&change.address);
        shared.ids.remove(&change.address);
        shared.steps_since_save += 1;
        Ok(change.id.clone())
    }

    pub(super) async fn adopt(&self, change: &Change) -> Result<Option<String>, ApplyError> {
        let id = change.id.clone().unwrap_or_default();
        let live = self.read(&change.address, &id).await?;
        self.remember(&change.address, change, live, false).await?;
        self.audit(
            &change.address,
            Some(&id),
            "adopt",
            &format!("ok ({})", change.reason),
        );
        if change.fields.is_empty() {
            return Ok(Some(id));
        }
        self.update(change).await.map(Some)
    }

    pub(super) async fn read(&self, addr: &Address, id: &str) -> Result<LiveObject, ApplyError> {
        let provider = self.provider(addr)?;
        provider.read(addr.kind, id).await?.ok_or_else(|| {
            ApplyError::from(ProviderError::Api {
                provider: addr.kind.provider(),
                operation: "read".into(),
                object: format!("{addr} ({id})"),
                status: 404,
                code: "not_found".into(),
                detail: "the object disappeared during apply".into(),
            })
        })
    }

    pub(super) async fn create(
        &self,
        change: &Change,
        addr: &Address,
    ) -> Result<String, ApplyError> {
        let provider = self.provider(addr)?.clone();
        let spec = self.for_write(change).await?;
        self.check_lock(addr, &Write::Create(&spec))?;
        let lineage = self.shared.lock().await.state.lineage.clone();
        let replacing = (change.action == Action::Replace)
            .then_some(change.id.as_deref())
            .flatten();
        let reference = crate::providers::create_reference(&lineage, &addr.to_string(), replacing);
        let req = WriteRequest {
            object: addr.to_string(),
            spec: spec.clone(),
            reference: reference.clone(),
        };
        self.intent(addr, "create", &reference, None, Some(&spec))?;
        test_crash_point("before");
        self.store.before_order(addr.kind)?;
        let created = match provider.create(&req).await {
            Ok(obj) => obj,
            Err(e) => return Err(self.failed(addr, "create", &reference, None, e)),
        };
        test_crash_point("after");
        self.result(addr, "create", &reference, &created)?;
        self.audit(addr, Some(&created.id), "create", "ok");
        self.shared
            .lock()
            .await
            .created
            .push((addr.clone(), addr.kind, created.id.clone()));
        let live = self.read(addr, &created.id).await.unwrap_or(created);
        self.remember(addr, change, live.clone(), false).await?;
        verify(addr, &spec, &live.spec)?;
        Ok(live.id)
    }

    pub(super) async fn update(&self, change: &Change) -> Result<String, ApplyError> {
        let addr = &change.address;
        let id = change.id.clone().unwrap_or_default();
        let provider = self.provider(addr)?.clone();
        let spec = self.for_write(change).await?;
        self.check_lock(
            addr,
            &Write::Update {
                id: &id,
                spec: &spec,
            },
        )?;
        let before = match &change.before {
            Some(b) => self.to_ids(b).await,
            None => self.read(addr, &id).await?.spec,
        };
        let reference = format!("cwa-{}-{}", self.run, short_hash(&addr.to_string()));
        let req = WriteRequest {
            object: addr.to_string(),
            spec: spec.clone(),
            reference: reference.clone(),
        };
        self.intent(addr, "update", &reference, Some(&id), Some(&spec))?;
        test_crash_point("before");
        let updated = match provider.update(&id, &before, &req).await {
            Ok(obj) => obj,
            Err(e) => return Err(self.failed(addr, "update", &reference, Some(&id), e)),
        };
        test_crash_point("after");
        self.result(addr, "update", &reference, &updated)?;
        self.audit(addr, Some(&id), "update", "ok");
        let live = self.read(addr, &id).await?;
        self.remember(addr, change, live.clone(), false).await?;
        verify(addr, &spec, &live.spec)?;
        Ok(id)
    }

    /// Create the new object first; then remove the old one, except a number, which is kept
    /// under a `_retired_` address and never released.
    pub(super) async fn replace(&self, change: &Change) -> Result<String, ApplyError> {
        let old = change.id.clone().unwrap_or_default();
        let new = self.create(change, &change.address).await?;
        if matches!(change.kind, Kind::TelnyxNumber | Kind::TwilioNumber) {
            let live = self.read(&change.address, &old).await?;
            let digits = live
                .spec
                .label()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>();
            let retired = Address::new(
                change.kind,
                format!("{}_retired_{digits}", change.address.name),
            );
            self.remember(&retired, change, live, false).await?;
        } else {
            let provider = self.provider(&change.address)?.clone();
            let reference = format!(
                "cwa-{}-{}-old",
                self.run,
                short_hash(&change.address.to_string())
            );
            self.check_lock(
                &change.address,
                &Write::Delete {
                    kind: change.kind,
                    id: &old,
                },
            )?;
            self.intent(&change.address, "delete", &reference, Some(&old), None)?;
            if let Err(e) = provider.delete(change.kind, &old).await {
                return Err(self.failed(&change.address, "delete", &reference, Some(&old), e));
            }
            self.done(&change.address, "delete", &reference, &old)?;
            self.audit(&change.address, Some(&old), "delete (replaced)", "ok");
        }
        Ok(new)
    }

    pub(super) async fn delete(&self, change: &Change) -> Result<(), ApplyError> {
        let addr = &change.address;
        let id = change.id.clone().unwrap_or_default();
        let provider = self.provider(addr)?.clone();
        self.check_lock(
            addr,
            &Write::Delete {
                kind: addr.kind,
                id: &id,
            },
        )?;
        let reference = format!("cwa-{}-{}", self.run, short_hash(&addr.to_string()));
        self.intent(addr, "delete", &reference, Some(&id), None)?;
        test_crash_point("before");
        self.store.before_release(change.irreversible)?;
        match provider.delete(addr.kind, &id).await {
            Ok(()) => test_crash_point("after"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(self.failed(addr, "delete", &reference, Some(&id), e)),
        }
        self.done(addr, "delete", &reference, &id)?;
        self.audit(
            addr,
            Some(&id),
            if change.irreversible {
                "release"
            } else {
                "delete"
            },
            "ok",
        );
        let mut shared = self.shared.lock().await;
        shared.state.remove(addr);
        shared.ids.remove(addr);
        shared.steps_since_save += 1;
        drop(shared);
        self.save(false).await?;
        Ok(())
    }

    /// The declared spec, ready to send: references as live ids, numbers of bought `auto`
    /// numbers filled in, secrets read from the environment.
    pub(super) async fn for_write(&self, change: &Change) -> Result<Spec, ApplyError> {
        let addr = change.address.to_string();
        let after = change.after.clone().ok_or_else(|| ApplyError::Unresolved {
            address: addr.clone(),
            missing: "its declaration".into(),
        })?;
        let shared = self.shared.lock().await;
        let mut spec = after;
        for r in spec.refs_mut() {
            if let Ref::Addr(target) = r {
                let id = shared
                    .ids
                    .get(target)
                    .ok_or_else(|| ApplyError::Unresolved {
                        address: addr.clone(),
                        missing: target.to_string(),
                    })?;
                *r = Ref::Id(id.clone());
            }
        }
        for n in spec.number_refs_mut() {
            if let NumberRef::Of(target) = n {
                let number = match shared.state.get(target).map(|r| &r.spec) {
                    Some(Spec::TelnyxNumber(t)) => t.number.fixed().cloned(),
                    _ => None,
                };
                *n = NumberRef::Number(number.ok_or_else(|| ApplyError::Unresolved {
                    address: addr.clone(),
                    missing: target.to_string(),
                })?);
            }
        }
        drop(shared);
        for secret in spec.secrets_mut() {
            if let SecretRef::Env(name) = secret {
                let variable = name.clone();
                let resolved = self.secrets.resolve(secret);
                *secret = resolved.map_err(|_| ApplyError::MissingSecret {
                    address: addr.clone(),
                    variable: variable.clone(),
                })?;
                self.refuse_credential_value(&addr, &variable, secret)?;
            }
        }
        Ok(spec)
    }

    /// Before the first write: every secret the plan will send is checked against the
    /// provider credentials, so a refused one stops the run with nothing written.
    pub(super) fn preflight_secrets(&self, plan: &Plan) -> Option<Outcome> {
        for change in plan.actionable() {
            let Some(after) = &change.after else {
                continue;
            };
            let mut after = after.clone();
            for secret in after.secrets_mut() {
                let SecretRef::Env(variable) = &*secret else {
                    continue;
                };
                let Ok(resolved) = self.secrets.resolve(secret) else {
                    continue;
                };
                let addr = change.address.to_string();
                if let Err(e) = self.refuse_credential_value(&addr, variable, &resolved) {
                    self.hook.refused(change, &e);
                    return Some(outcome(change, change.id.clone(), Some(&e)));
                }
            }
        }
        None
    }

    /// A SIP secret whose value is one of the secrets cwa runs with (whatever the variable is
    /// called; `config::secrets::secrets_cwa_holds`) is never sent: it would hand that secret
    /// to a provider.
    pub(super) fn refuse_credential_value(
        &self,
        address: &str,
        variable: &str,
        secret: &SecretRef,
    ) -> Result<(), ApplyError> {
        let Some(value) = secret.value() else {
            return Ok(());
        };
        let same = crate::config::secrets::secrets_cwa_holds().find(|credential| {
            self.secrets
                .get(credential)
                .is_some_and(|v| v == value.expose())
        });
        match same {
            Some(credential) => Err(ApplyError::CredentialAsSecret {
                address: address.to_string(),
                variable: variable.to_string(),
                credential: credential.to_string(),
            }),
            None => Ok(()),
        }
    }

    pub(super) async fn to_ids(&self, spec: &Spec) -> Spec {
        let shared = self.shared.lock().await;
        let mut spec = spec.clone();
        for r in spec.refs_mut() {
            if let Ref::Addr(target) = r {
                if let Some(id) = shared.ids.get(target) {
                    *r = Ref::Id(id.clone());
                }
            }
        }
        spec
    }

    /// Records a live object as owned by `addr`.
    pub(super) async fn remember(
        &self,
        addr: &Address,
        change: &Change,
        live: LiveObject,
        protected: bool,
    ) -> Result<(), StateError> {
        let mut shared = self.shared.lock().await;
        shared.ids.insert(addr.clone(), live.id.clone());
        shared.state.upsert(
            addr,
            StateResource {
                id: live.id,
                spec: live.spec,
                church: change.church.clone(),
                protected,
            },
        );
        let mut newly_protected = None;
        if protected {
            if let Some(id) = &change.id {
                if !shared.state.protected.contains_key(id) {
                    newly_protected = Some(id.clone());
                }
                shared
                    .state
                    .protected
                    .entry(id.clone())
                    .or_insert_with(|| "declared protected in lines.toml".into());
            }
        }
        shared.steps_since_save += 1;
        drop(shared);
        if let Some(id) = newly_protected {
            self.audit(addr, Some(&id), "protect", "ok");
        }
        self.save(false).await
    }
}

/// Compares what was asked with what was read back. Secrets a provider does not return, and
/// an `auto` number (which becomes whatever was bought), are not compared.
pub(super) fn verify(addr: &Address, asked: &Spec, actual: &Spec) -> Result<(), ApplyError> {
    let asked = match (asked, actual) {
        (Spec::TelnyxNumber(a), Spec::TelnyxNumber(b))
            if matches!(a.number, NumberSpec::Auto { .. }) =>
        {
            let mut a = a.clone();
            a.number = b.number.clone();
            Spec::TelnyxNumber(a)
        }
        _ => asked.clone(),
    };
    let mismatch: Option<FieldChange> = crate::plan::diff_fields(actual, &asked)
        .into_iter()
        .find(|f| !(f.sensitive && f.before.is_null()));
    match mismatch {
        None => Ok(()),
        Some(f) => Err(ApplyError::IgnoredWrite {
            address: addr.to_string(),
            field: f.path,
            expected: crate::render::value_text(&f.after),
            actual: crate::render::value_text(&f.before),
        }),
    }
}

/// Test-only crash injection: with `CWA_TEST_CRASH_AT=before:N` (or `after:N`) the process
/// aborts just before (or just after) its N-th mutating provider call, as a kill at that
/// instant would. The crash tests use it to prove that a rerun converges from any point.
pub(super) fn test_crash_point(moment: &str) {
    use std::sync::atomic::AtomicUsize;
    static CALLS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let Ok(spec) = std::env::var("CWA_TEST_CRASH_AT") else {
        return;
    };
    let Some((at, n)) = spec.split_once(':') else {
        return;
    };
    if at != moment {
        return;
    }
    let slot = usize::from(moment == "after");
    let count = CALLS[slot].fetch_add(1, Ordering::SeqCst) + 1;
    if n.parse::<usize>().ok() == Some(count) {
        crate::errln!("CWA_TEST_CRASH_AT={spec}: aborting");
        std::process::abort();
    }
}

pub(super) fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}
