//! A throwaway PostgreSQL cluster for one test: `initdb` and `pg_ctl` under a temporary
//! directory, listening on a Unix socket only (`listen_addresses=''`), stopped when dropped.
//! Reached as `crate::common::postgres`.
//!
//! The binaries are found through `pg_config --bindir`, then `/usr/lib/postgresql/*/bin`,
//! then PATH. Where they are absent, [`PgCluster::start`] prints a loud notice and returns
//! None (the test skips), except when `CI` is set: there absence fails the test. initdb
//! refuses to run as root, so as root (CI) the cluster runs as the `postgres` user (the
//! distribution's package creates it) through `runuser`, in a directory handed to that user.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    user: String,
}

impl PgCluster {
    /// A new cluster, started; None (after a loud notice) where PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = find_bindir() else {
            let notice = "\n\n==== PostgreSQL binaries (initdb, pg_ctl) not found: SKIPPING the PostgreSQL state tests. \
                 Install them (Debian: apt-get install postgresql) to run them. ====\n";
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set and PostgreSQL is not installed: {notice}"
            );
            eprintln!("{notice}");
            return None;
        };
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = tempfile::Builder::new()
            .prefix("cwa-pg-")
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        if let Some(user) = &run_as {
            run(Command::new("chown").args(["-R", user]).arg(dir.path()));
        }
        let user = run_as
            .clone()
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
        let cluster = Self {
            dir,
            bin,
            run_as,
            user,
        };
        cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "--auth=trust",
                "--no-sync",
                "-U",
                &cluster.user,
                "-E",
                "UTF8",
            ],
        );
        cluster.start_server();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory the server's socket is in.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A URL for the `postgres` database over the socket, with `query` (e.g. `workspace=a`).
    pub fn url(&self, query: &str) -> String {
        let host = self.socket_dir().display().to_string().replace('/', "%2F");
        let sep = if query.is_empty() { "" } else { "?" };
        format!("postgresql://{}@{host}/postgres{sep}{query}", self.user)
    }

    /// Starts the server (again, after [`stop`](Self::stop)).
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.socket_dir().display()
        );
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("server.log").display().to_string(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the server at once (connections are cut, as in a crash or a failover).
    pub fn stop(&self) {
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Runs SQL through psql and returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Like [`psql`](Self::psql), with the error as a value (a table not created yet).
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self.pg_output(
            "psql",
            &[
                "-h",
                &self.socket_dir().display().to_string(),
                "-U",
                &self.user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        );
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let out = self.pg_output(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn pg_output(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_output(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

/// The directory holding initdb and pg_ctl, if PostgreSQL is installed.
fn find_bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    versions.sort();
    versions.reverse();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    from_pg_config
        .into_iter()
        .chain(versions)
        .chain(on_path)
        .find(|d| has(d))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) {
    let status = cmd.status().expect("the command runs");
    assert!(status.success(), "{cmd:?} failed");
}
