//! State at scale (issues 17 and 19; see BENCHMARKS.md): for a `synthetic:N` world, the size of
//! the state directory (bytes per line, the largest file, against the single state.json of
//! before), the `git diff` of a one-line change to lines.toml, and the time to load the state
//! from the directory and from PostgreSQL.
//!
//! `cargo run --release --example bench_state -- --sizes 1000,100000`
//!
//! The state is the one an apply of the adopting plan records (as in `benches/cpu.rs`): the
//! world is read once through cwa's own clients from an in-process sandbox, then every adopted
//! address is owned. The one-line change is a church's `name = "…"`: by the convention
//! (`config::convention`) it renames that church's inbound trunk and dispatch rule, which are
//! the two state entries edited. PostgreSQL: a throwaway cluster (`tests/common/postgres.rs`)
//! when initdb is installed; skipped with a notice otherwise.

#[path = "../tests/common/postgres.rs"]
mod postgres;
#[path = "../benches/world.rs"]
mod world;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cwa::config;
use cwa::model::{SecretSource, Spec};
use cwa::plan::PlanOptions;
use cwa::state::{State, StateStore};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let sizes: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--sizes")
        .nth(1)
        .unwrap_or_else(|| "100000".into())
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()?;
    let pg = postgres::PgCluster::start();
    println!("| lines | resources | single state.json MB | state/ MB | bytes per line | files | largest file MB | one-line change: git diff (renames) | without rename detection | save ms | dir load ms | PostgreSQL load ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|");
    for n in sizes {
        measure(n, pg.as_ref())?;
    }
    Ok(())
}

fn measure(n: usize, pg: Option<&postgres::PgCluster>) -> Result<(), Error> {
    let mut state = owned_state(n)?;
    let single = serde_json::to_vec_pretty(&state)?.len();
    let work = tempfile::tempdir()?;
    let dir = work.path().join("state");
    let store = StateStore::new(&dir);
    store.save(&mut state)?;
    git(work.path(), &["init", "-q"])?;
    git(work.path(), &["add", "state/state.json", "state/shards"])?;
    git(
        work.path(),
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-qm",
            "state",
        ],
    )?;
    let (total, files, largest) = sizes(&dir)?;

    let dir_load = best_of(3, || store.load().map(drop))?;
    let pg_load = match pg {
        Some(cluster) => {
            let url = cluster.url(&format!("workspace=bench{n}"));
            let remote = StateStore::open(Path::new(&url), None)?;
            remote.save_copy(&mut state.clone())?;
            Some(best_of(3, || remote.load().map(drop))?)
        }
        None => None,
    };

    rename_one_church(&mut state)?;
    let started = Instant::now();
    store.save(&mut state)?;
    let save = started.elapsed();
    git(
        work.path(),
        &["add", "-A", "state/state.json", "state/shards"],
    )?;
    let diff = git(work.path(), &["diff", "--cached", "-M"])?;
    let plain = git(work.path(), &["diff", "--cached", "--no-renames"])?;
    let show = |d: &str| format!("{} lines, {} bytes", d.lines().count(), d.len());
    println!(
        "| {n} | {} | {:.1} | {:.1} | {} | {files} | {:.2} | {} | {} | {} | {} | {} |",
        state.resources.len(),
        mb(single),
        mb(total),
        total / n.max(1),
        mb(largest),
        show(&diff),
        show(&plain),
        save.as_millis(),
        dir_load.as_millis(),
        pg_load.map_or("skipped (no PostgreSQL)".into(), |d| d
            .as_millis()
            .to_string()),
    );
    if n <= 1_000 {
        eprintln!("{diff}");
    }
    Ok(())
}

/// The state an apply of the adopting plan of `synthetic:n` records.
fn owned_state(n: usize) -> Result<State, Error> {
    let loaded = config::parse(Path::new("lines.toml"), &cwa::synthetic::lines_toml(n))?;
    let (live, env) = world::read_world(n);
    let secrets = SecretSource::with_overrides(env);
    let plan = cwa::session::plan_against(
        &loaded,
        &State::new(),
        &live,
        true,
        PlanOptions::default(),
        &secrets,
    );
    Ok(world::owned_state(&plan, &live))
}

/// What an apply of one changed `name = "…"` line writes to state: the church's inbound
/// trunk and dispatch rule renamed.
fn rename_one_church(state: &mut State) -> Result<(), Error> {
    let church = state
        .resources
        .iter()
        .find(|(a, _)| a.starts_with("livekit_dispatch_rule."))
        .and_then(|(_, r)| r.church.clone())
        .ok_or("a church with a dispatch rule")?;
    for r in state
        .resources
        .values_mut()
        .filter(|r| r.church.as_deref() == Some(&church))
    {
        let mut spec = serde_json::to_value(&r.spec)?;
        if let Some(name) = spec.get_mut("name").filter(|_| {
            matches!(
                r.spec,
                Spec::LivekitInboundTrunk(_) | Spec::LivekitDispatchRule(_)
            )
        }) {
            *name = format!("{} (renamed)", name.as_str().unwrap_or_default()).into();
            r.spec = serde_json::from_value(spec)?;
        }
    }
    Ok(())
}

/// Total bytes, number of files and the largest file under `dir` (committed files only: the
/// backup and its shards are per machine).
fn sizes(dir: &Path) -> Result<(usize, usize, usize), Error> {
    let mut files = vec![dir.join("state.json")];
    for entry in std::fs::read_dir(dir.join("shards"))? {
        files.push(entry?.path());
    }
    let lens: Vec<usize> = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len() as usize))
        .collect::<Result<_, _>>()?;
    Ok((
        lens.iter().sum(),
        lens.len(),
        lens.iter().copied().max().unwrap_or(0),
    ))
}

fn best_of(
    runs: usize,
    mut f: impl FnMut() -> Result<(), cwa::state::StateError>,
) -> Result<Duration, Error> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        best = best.min(started.elapsed());
    }
    Ok(best)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git").current_dir(dir).args(args).output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}
