//! Secret fields: the `*_env` variable to declare, found by the fingerprint live reports or
//! guessed (and the user told to set it).

use super::*;

/// Variables this project's runbooks keep SIP passwords in, tried (with the whole
/// environment) when naming the variable of an imported secret.
const WELL_KNOWN_SECRETS: [&str; 2] = ["TELNYX_FQDN_PASSWORD", "TELNYX_OUTBOUND_SIP_PASSWORD"];

impl<'a> Importer<'a> {
    pub(super) fn password_env(&mut self, b: &mut Block, addr: &Address, live: Option<&SecretRef>) {
        let var = env_name("TELNYX", &addr.name, "PASSWORD");
        self.secret_env(b, addr, "password_env", live, var);
    }

    /// Names the variable that holds a secret: one whose value has the fingerprint live
    /// reports, when the environment has one; otherwise `guess`, marked and reported.
    pub(super) fn secret_env(
        &mut self,
        b: &mut Block,
        addr: &Address,
        key: &str,
        live: Option<&SecretRef>,
        guess: String,
    ) {
        let found = live
            .and_then(SecretRef::known_fingerprint)
            .and_then(|fp| self.variable_holding(&fp));
        match found {
            Some(var) => b.set_noted(key, var, "found: this variable holds the password live has"),
            None => {
                b.set_noted(
                    key,
                    guess.clone(),
                    "guessed variable name: export the password in it",
                );
                self.notes.push(format!(
                    "{addr}: set {guess} to its password before applying"
                ));
            }
        }
    }

    /// An environment variable (or sandbox secret) whose value has this fingerprint.
    pub(super) fn variable_holding(&self, fingerprint: &str) -> Option<String> {
        let mut names: BTreeSet<String> =
            WELL_KNOWN_SECRETS.iter().map(|s| s.to_string()).collect();
        names.extend(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        names.into_iter().find(|name| {
            self.input
                .secrets
                .get(name)
                .is_some_and(|v| crate::model::fingerprint(&v) == fingerprint)
        })
    }
}
