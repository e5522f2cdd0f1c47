//! State at scale (issues 17 and 19; see BENCHMARKS.md): for a `synthetic:N` world, the size of
//! the state directory (bytes per line, the largest file, against the single state.json of
//! before), the `git diff` of a one-line change to lines.toml, and for the directory and for
//! PostgreSQL the time of the first save, of the save of that one-line change, and of a load
//! (the median of three; what every command pays before it plans).
//!
//! `cargo run --release --example bench_state -- --sizes 1000,100000` (BENCHMARKS.md reports
//! the median of three such runs, with the load average this prints).
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
    println!("load average at the start: {}", load_average());
    println!("| lines | resources | single state.json MB | state/ MB | bytes per line | files | largest file MB | one-line change: git diff (renames) | without rename detection | dir first save ms | dir one-line save ms | dir load ms (CPU ms) | PostgreSQL first save ms | PostgreSQL one-line save ms | PostgreSQL load ms (client CPU ms) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        measure(n, pg.as_ref())?;
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// The times of one backend: the first save (every row or shard written), the save of a
/// one-line change, and the load (the median of three).
struct Times {
    first_save: Duration,
    one_line_save: Duration,
    load: Duration,
    /// This process's CPU time (user + system, every thread) over the three loads, divided by
    /// three: on a shared machine, what the load costs apart from waiting for a core.
    load_cpu: Duration,
}

impl Times {
    fn cells(&self) -> String {
        format!(
            "{} | {} | {} (CPU {})",
            self.first_save.as_millis(),
            self.one_line_save.as_millis(),
            self.load.as_millis(),
            self.load_cpu.as_millis()
        )
    }
}

/// Saves `state` into an empty `store`, loads it back three times, then saves the one-line
/// change (`rename_one_church`): what each backend costs an apply and every command.
fn time_backend(store: &StateStore, state: &State) -> Result<(Times, State), Error> {
    let mut state = state.clone();
    let first_save = timed(|| store.save_copy(&mut state))?;
    let loaded = store.load()?;
    assert_eq!(
        loaded.resources, state.resources,
        "the state read back differs"
    );
    let cpu_before = cpu_time();
    let load = median_of(3, || store.load().map(drop))?;
    let load_cpu = cpu_time().saturating_sub(cpu_before) / 3;
    rename_one_church(&mut state)?;
    let one_line_save = timed(|| store.save_copy(&mut state))?;
    Ok((
        Times {
            first_save,
            one_line_save,
            load,
            load_cpu,
        },
        state,
    ))
}

fn measure(n: usize, pg: Option<&postgres::PgCluster>) -> Result<(), Error> {
    let mut state = owned_state(n)?;
    // Fingerprints bound once, as an apply's save does, so both backends store the same bytes.
    state.bind_fingerprints(cwa::state::fingerprint::key());
    let single = serde_json::to_vec_pretty(&state)?.len();
    let work = tempfile::tempdir()?;
    let dir = work.path().join("state");
    let store = StateStore::new(&dir);
    store.save_copy(&mut state.clone())?;
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
    let mut changed = state.clone();
    rename_one_church(&mut changed)?;
    store.save_copy(&mut changed)?;
    git(
        work.path(),
        &["add", "-A", "state/state.json", "state/shards"],
    )?;
    let diff = git(work.path(), &["diff", "--cached", "-M"])?;
    let plain = git(work.path(), &["diff", "--cached", "--no-renames"])?;

    let fresh = work.path().join("timed");
    let (dir_times, _) = time_backend(&StateStore::new(&fresh), &state)?;
    let pg_times = match pg {
        Some(cluster) => {
            let url = cluster.url(&format!("workspace=bench{n}"));
            let remote = StateStore::open(Path::new(&url), None)?;
            Some(time_backend(&remote, &state)?.0)
        }
        None => None,
    };
    let show = |d: &str| format!("{} lines, {} bytes", d.lines().count(), d.len());
    println!(
        "| {n} | {} | {:.1} | {:.1} | {} | {files} | {:.2} | {} | {} | {} | {} |",
        state.resources.len(),
        mb(single),
        mb(total),
        total / n.max(1),
        mb(largest),
        show(&diff),
        show(&plain),
        dir_times.cells(),
        pg_times.map_or("skipped (no PostgreSQL) | - | -".into(), |t| t.cells()),
    );
    if n <= 1_000 {
        eprintln!("{diff}");
    }
    Ok(())
}

/// This process's CPU time so far (utime + stime of /proc/self/stat, in clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// /proc/loadavg's first three fields (1, 5 and 15 minutes): the machine may be shared.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The state an apply of the adopting plan of `synthetic:n` records. The plan is computed by
/// `plan::compute` alone: `session::plan_against` also runs the certification checks, which
/// this state does not depend on and which take tens of minutes at 100,000 lines (quadratic;
/// see BENCHMARKS.md).
fn owned_state(n: usize) -> Result<State, Error> {
    let text = cwa::synthetic::lines_toml(n);
    let loaded = config::parse(Path::new("lines.toml"), &text)?;
    let (live, env) = world::read_world(n);
    let secrets = SecretSource::with_overrides(env);
    let plan = cwa::plan::compute(&cwa::plan::PlanInput {
        desired: &loaded.desired,
        state: &State::new(),
        live: &live,
        refreshed: true,
        config_fingerprint: cwa::session::config_fingerprint(&text),
        options: PlanOptions::default(),
        secrets: &secrets,
    });
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

fn timed(f: impl FnOnce() -> Result<(), cwa::state::StateError>) -> Result<Duration, Error> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

fn median_of(
    runs: usize,
    mut f: impl FnMut() -> Result<(), cwa::state::StateError>,
) -> Result<Duration, Error> {
    let mut times = (0..runs)
        .map(|_| timed(&mut f))
        .collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(times[runs / 2])
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
