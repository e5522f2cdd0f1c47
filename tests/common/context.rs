//! The shared test context: one struct that owns a sandbox started for one test, a scratch
//! directory holding a copy of lines.toml and its own state/, and the `cwa` command run
//! there (as uv's `TestContext` does). Reached as `crate::common::Ctx` from every binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use cwa::sandbox::RequestLogEntry;
use cwa::state::{State, StateStore};

use super::sandbox::TestSandbox;

/// The protected main trunk of the runbooks: no test may ever see a write to it.
pub const PROTECTED_TRUNK: &str = "ST_Xa3Bp9aixRFP";

/// Every protected id of the repository's lines.toml (the trunk and its dispatch rule).
pub const PROTECTED_IDS: [&str; 2] = [PROTECTED_TRUNK, "SDR_cYzx7sAkUTvx"];

/// Two new churches whose numbers are bought by area code: an apply of them orders numbers,
/// creates trunks and dispatch rules next to the runbook world's updates.
pub const NEW_CHURCHES: &str = r#"
[church.grace]
id = "00000000-0000-4000-8000-0000000000a1"
name = "Grace Chapel"
number = "auto"
area_code = "734"

[church.hope]
id = "00000000-0000-4000-8000-0000000000a2"
name = "Hope Fellowship"
number = "auto"
area_code = "414"
"#;

/// A sandbox plus a working directory with lines.toml and state/.
pub struct Ctx {
    pub sb: TestSandbox,
    pub work: tempfile::TempDir,
}

impl Ctx {
    /// The runbook world and a copy of the repository's lines.toml, with empty state.
    pub async fn runbook() -> Self {
        Self::with_world("runbook", &repo_lines_toml()).await
    }

    pub async fn with_world(world: &str, lines_toml: &str) -> Self {
        let sb = TestSandbox::start(world).await;
        let work = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(work.path().join("lines.toml"), lines_toml).expect("lines.toml written");
        Self { sb, work }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    pub fn lines_toml(&self) -> String {
        std::fs::read_to_string(self.path("lines.toml")).expect("lines.toml")
    }

    pub fn set_lines_toml(&self, text: &str) {
        std::fs::write(self.path("lines.toml"), text).expect("lines.toml written");
    }

    /// Edits lines.toml by replacing `from` (which must be present) with `to`.
    pub fn edit_lines_toml(&self, from: &str, to: &str) {
        let text = self.lines_toml();
        assert!(text.contains(from), "lines.toml has no {from:?}");
        self.set_lines_toml(&text.replacen(from, to, 1));
    }

    /// Runs cwa with the sandbox's environment, in the working directory, without color.
    pub async fn cwa(&self, args: &[&str]) -> Output {
        self.cwa_env(args, &[]).await
    }

    pub async fn cwa_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"));
        cmd.current_dir(self.work.path())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("CWA_OPERATOR", "test@cwa")
            .env(cwa::sandbox::STRICT_ENV, "1");
        for (k, v) in self.sb.sandbox.env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("cwa runs"))
            .await
            .expect("the cwa process is waited for")
    }

    pub fn state(&self) -> State {
        StateStore::new(self.path("state"))
            .load()
            .expect("a readable state")
    }

    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.sb.log()
    }

    pub fn writes(&self) -> Vec<RequestLogEntry> {
        self.requests().into_iter().filter(|r| r.write).collect()
    }

    /// Asserts that no request in this test's sandbox wrote to a protected id.
    pub fn assert_protected_untouched(&self) {
        let touched: Vec<_> = self
            .writes()
            .into_iter()
            .filter(|r| {
                r.resource_id
                    .as_deref()
                    .is_some_and(|id| PROTECTED_IDS.contains(&id))
            })
            .collect();
        assert!(
            touched.is_empty(),
            "writes to the protected trunk: {touched:?}"
        );
    }
}

/// Every test that uses a Ctx proves, when it ends, that its sandbox never saw a write to
/// the protected trunk: across the whole suite, zero writes to protected ids.
impl Drop for Ctx {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_protected_untouched();
        }
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn repo_lines_toml() -> String {
    std::fs::read_to_string(repo_root().join("lines.toml")).expect("the repository's lines.toml")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, printing both streams when it differs.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}
