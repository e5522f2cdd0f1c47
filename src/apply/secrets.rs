//! Secrets on their way to a provider: a plan carries them as fingerprints; the executor
//! side gives back the names of the variables to resolve just before each write.

use crate::plan::Plan;

/// A plan carries secrets as fingerprints (it is printed and saved), but a new or changed
/// secret must be written as its value. Each such fingerprint that is the current value of the
/// variable lines.toml names goes back to that name, which the executor resolves just before
/// the write; a secret the live object already has stays a fingerprint and is not resent.
pub fn with_secret_names(
    mut plan: Plan,
    desired: &crate::model::Desired,
    secrets: &crate::model::SecretSource,
) -> Plan {
    use crate::model::{fingerprint, SecretRef};
    for change in &mut plan.changes {
        let (Some(after), Some(declared)) = (change.after.as_mut(), desired.get(&change.address))
        else {
            continue;
        };
        let mut declared = declared.spec.clone();
        let mut before = change.before.clone();
        let live: Vec<Option<String>> = before
            .iter_mut()
            .flat_map(|b| b.secrets_mut())
            .map(|s| s.known_fingerprint())
            .collect();
        for (secret, named) in after.secrets_mut().into_iter().zip(declared.secrets_mut()) {
            let (SecretRef::Fingerprint(f), SecretRef::Env(var)) = (&*secret, &*named) else {
                continue;
            };
            if !live.contains(&Some(f.clone()))
                && secrets
                    .get(var)
                    .is_some_and(|value| fingerprint(&value) == *f)
            {
                *secret = named.clone();
            }
        }
    }
    plan
}
