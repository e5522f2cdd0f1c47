//! Which environment variables a `*_env` key of lines.toml may name.
//!
//! A `*_env` key tells cwa to read a SIP password from the environment and send it to a
//! provider. Whoever can edit lines.toml (a pull request) chooses the name, so a name is refused
//! when the value behind it is not meant for that: one of the provider credentials cwa itself
//! runs with (`password_env = "LIVEKIT_API_SECRET"` would hand cwa's LiveKit secret to Telnyx
//! as a SIP password), one of cwa's own settings, or an ordinary variable of the shell or of a
//! CI runner. Names are UPPER_SNAKE only, so a lookalike (`livekit_api_secret`) cannot slip by
//! on a platform whose environment is case-insensitive. The same list is documented in
//! docs/lines-toml.md ("Environment variable names").

/// The credentials refused besides those cwa's clients read (`providers::ENV_VARS`, the one
/// list of those): their siblings at the same providers, which cwa does not read but which
/// are as secret, and `PGPASSWORD`, the state backend's password, which cwa itself reads
/// (`state::pg`).
pub const OTHER_CREDENTIALS: &[&str] = &[
    "TELNYX_PUBLIC_KEY",
    "TWILIO_API_KEY",
    "TWILIO_API_SECRET",
    "PGPASSWORD",
];

/// Every provider credential and endpoint a `*_env` key may not name: what cwa's clients
/// read, then [`OTHER_CREDENTIALS`].
pub fn provider_credentials() -> impl Iterator<Item = &'static str> {
    crate::providers::ENV_VARS
        .iter()
        .chain(OTHER_CREDENTIALS)
        .copied()
}

/// The variables whose values cwa holds as its own secrets: every provider credential it
/// reads or refuses by name, the state backend's password and the fingerprint key. A SIP
/// secret whose value equals one of these (whatever its variable is called) is never sent
/// (`cwa::apply::credential_as_secret`): it would hand that secret to a provider.
pub fn secrets_cwa_holds() -> impl Iterator<Item = &'static str> {
    let mut names: Vec<&'static str> = provider_credentials().collect();
    names.extend(crate::state::fingerprint::KEY_SOURCES);
    names.sort_unstable();
    names.dedup();
    names.into_iter()
}

/// Ordinary variables of a shell, the system or a CI runner, refused by exact name.
pub const ORDINARY_NAMES: &[&str] = &[
    "PATH", "HOME", "USER", "USERNAME", "LOGNAME", "SHELL", "PWD", "OLDPWD", "HOSTNAME", "TERM",
    "LANG", "TMPDIR", "CI",
];

/// Variables refused by prefix: cwa's own settings (`CWA_FINGERPRINT_KEY`, `CWA_OPERATOR`, …),
/// the CI runner's (`GITHUB_TOKEN` among them), the dynamic loader's and locale settings.
pub const REFUSED_PREFIXES: &[&str] = &["CWA_", "GITHUB_", "RUNNER_", "ACTIONS_", "LD_", "LC_"];

/// Why a name cannot be used as a `*_env` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvNameRefusal {
    /// Not `[A-Z_][A-Z0-9_]*`: perhaps a value written where its name belongs.
    NotUpperSnake,
    /// A credential or endpoint cwa's own provider clients use.
    ProviderCredential,
    /// One of cwa's own settings.
    CwaSetting,
    /// A variable of the shell, the system or the CI runner.
    Ordinary,
}

impl EnvNameRefusal {
    /// One sentence for the diagnostic.
    pub fn reason(self, name: &str) -> String {
        match self {
            Self::NotUpperSnake => {
                "an `_env` key must hold the NAME of an environment variable in UPPER_SNAKE case (A-Z, 0-9, _), not a value".into()
            }
            Self::ProviderCredential => format!(
                "{name} is a credential cwa itself uses; naming it here would send it to a provider as a SIP password"
            ),
            Self::CwaSetting => format!("{name} is one of cwa's own settings, not a SIP secret"),
            Self::Ordinary => format!(
                "{name} is an ordinary variable of the shell or the CI runner, not a SIP secret"
            ),
        }
    }
}

/// Checks a name a `*_env` key holds; `Ok` when cwa may read a SIP secret from it.
pub fn check_env_name(name: &str) -> Result<(), EnvNameRefusal> {
    let mut chars = name.chars();
    let upper_snake = chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !upper_snake {
        return Err(EnvNameRefusal::NotUpperSnake);
    }
    if provider_credentials().any(|c| c == name) {
        return Err(EnvNameRefusal::ProviderCredential);
    }
    if name.starts_with("CWA_") {
        return Err(EnvNameRefusal::CwaSetting);
    }
    if ORDINARY_NAMES.contains(&name) || REFUSED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(EnvNameRefusal::Ordinary);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_password_names_pass() {
        for ok in [
            "TELNYX_FQDN_PASSWORD",
            "TELNYX_OUTBOUND_SIP_PASSWORD",
            "_X",
            "SIP_PW_2",
        ] {
            assert_eq!(check_env_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn every_provider_credential_cwa_reads_is_refused() {
        for name in crate::providers::ENV_VARS {
            assert_eq!(
                check_env_name(name),
                Err(EnvNameRefusal::ProviderCredential),
                "{name}"
            );
        }
        for name in [
            "TWILIO_API_SECRET",
            "TELNYX_PUBLIC_KEY",
            "PGPASSWORD",
            "TELNYX_API_KEY",
        ] {
            assert_eq!(
                check_env_name(name),
                Err(EnvNameRefusal::ProviderCredential),
                "{name}"
            );
        }
    }

    #[test]
    fn ordinary_and_runner_variables_and_cwa_settings_are_refused() {
        for name in [
            "PATH",
            "HOME",
            "USER",
            "SHELL",
            "CI",
            "GITHUB_TOKEN",
            "RUNNER_TEMP",
            "ACTIONS_RUNTIME_TOKEN",
        ] {
            assert_eq!(
                check_env_name(name),
                Err(EnvNameRefusal::Ordinary),
                "{name}"
            );
        }
        assert_eq!(
            check_env_name("CWA_FINGERPRINT_KEY"),
            Err(EnvNameRefusal::CwaSetting)
        );
    }

    #[test]
    fn the_values_never_sent_include_the_state_password_and_the_fingerprint_key() {
        let held: Vec<&str> = secrets_cwa_holds().collect();
        for name in provider_credentials().chain(["PGPASSWORD", "CWA_FINGERPRINT_KEY"]) {
            assert!(held.contains(&name), "{name}");
        }
    }

    #[test]
    fn only_upper_snake() {
        for bad in [
            "livekit_api_secret",
            "Path",
            "1ABC",
            "",
            "A-B",
            "hunter2 !",
            "ÄB",
        ] {
            assert_eq!(
                check_env_name(bad),
                Err(EnvNameRefusal::NotUpperSnake),
                "{bad}"
            );
        }
    }
}
