//! The provisioning benchmark of issue 23: `cwa add church` then `cwa apply --target
//! church.KEY --auto-approve` of one new church on an account of N lines, against the sandbox
//! in a process of its own at a fixed latency. See BENCHMARKS.md ("Issue 23").
//!
//! ```sh
//! cargo build --release            # the cwa binary that is measured
//! cargo run --release --example bench_add -- [--sizes 100,1000] [--latency-ms 25]
//!     [--runs 3] [--cwa target/release/cwa] [--keep]
//! ```
//!
//! For each N: `cwa sandbox serve --world synthetic:N --latency-ms L` as a child; in a scratch
//! directory holding `lines_toml(N)` and an empty `state/`, `cwa import` fills state and a
//! no-change plan is checked (exit 0). Then `--runs` times, each with a church of its own
//! (`bench_add_<i>`, area code 734): the add, then the targeted apply, each timed by the parent's
//! clock around the child, with the requests the sandbox logged between its start and end, by
//! kind: reads of a list (the refresh, which grows with the account) and every other request
//! (which must not). The median of the runs is printed, with the load average before and after.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cwa::sandbox::{read_request_log, RequestLogEntry};
use cwa::synthetic::lines_toml;

type Failure = Box<dyn std::error::Error>;

struct Args {
    sizes: Vec<usize>,
    latency_ms: u64,
    runs: usize,
    cwa: PathBuf,
    keep: bool,
}

impl Args {
    fn parse() -> Result<Args, Failure> {
        let mut args = Args {
            sizes: vec![100, 1_000],
            latency_ms: 25,
            runs: 3,
            cwa: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/cwa")),
            keep: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--sizes" => {
                    args.sizes = value()?
                        .split(',')
                        .map(|s| s.trim().replace('_', "").parse())
                        .collect::<Result<_, _>>()?
                }
                "--latency-ms" => args.latency_ms = value()?.parse()?,
                "--runs" => args.runs = value()?.parse()?,
                "--cwa" => args.cwa = PathBuf::from(value()?),
                "--keep" => args.keep = true,
                other => return Err(format!("unknown option {other}").into()),
            }
        }
        if !args.cwa.exists() {
            return Err(format!(
                "{} does not exist: run `cargo build --release` first",
                args.cwa.display()
            )
            .into());
        }
        Ok(args)
    }
}

/// A `cwa sandbox serve` child and the environment it printed (`export K=V` lines, until the
/// first line that is not one).
struct Sandbox {
    child: Child,
    env: Vec<(String, String)>,
}

impl Sandbox {
    fn start(cwa: &Path, dir: &Path, n: usize, latency_ms: u64) -> Result<Self, Failure> {
        let mut child = Command::new(cwa)
            .args(["sandbox", "serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .args(["--world", &format!("synthetic:{n}")])
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut env = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        // Every `export` line comes first; the sandbox then serves until it is stopped.
        while env.len() < SANDBOX_EXPORTS {
            let Some(line) = lines.next() else { break };
            if let Some((k, v)) = line?
                .strip_prefix("export ")
                .and_then(|kv| kv.split_once('='))
            {
                env.push((k.to_string(), v.to_string()));
            }
        }
        if env.len() < SANDBOX_EXPORTS {
            let _ = child.kill();
            return Err("the sandbox exited before printing its environment".into());
        }
        Ok(Self { child, env })
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many `export` lines `cwa sandbox serve` prints.
const SANDBOX_EXPORTS: usize = 11;

/// One run of cwa: its exit code, wall time and the requests the sandbox logged meanwhile.
struct Measured {
    exit: i32,
    wall: Duration,
    requests: Vec<RequestLogEntry>,
}

impl Measured {
    /// Reads of a list: Telnyx collection GETs and LiveKit `List*` calls (the refresh).
    fn list_reads(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| is_list(&r.method, &r.path))
            .count()
    }

    fn other(&self) -> usize {
        self.requests.len() - self.list_reads()
    }
}

fn is_list(method: &str, path: &str) -> bool {
    let telnyx_collection = method == "GET"
        && path.starts_with("/v2/")
        && path.trim_start_matches("/v2/").split('/').count() == 1
        && path != "/v2/available_phone_numbers"
        && path != "/v2/number_orders";
    telnyx_collection || path.starts_with("/twirp/livekit.SIP/List")
}

fn run_cwa(
    args: &Args,
    work: &Path,
    sandbox_dir: &Path,
    env: &[(String, String)],
    name: &str,
    argv: &[&str],
) -> Result<Measured, Failure> {
    let before = read_request_log(sandbox_dir)?.len();
    let mut cmd = Command::new(&args.cwa);
    cmd.current_dir(work)
        .arg("--no-color")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(fs::File::create(work.join(format!("{name}.out")))?)
        .stderr(fs::File::create(work.join(format!("{name}.err")))?);
    for var in cwa::providers::ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_COLOR", "1");
    let started = Instant::now();
    let status = cmd.status()?;
    let wall = started.elapsed();
    let requests = read_request_log(sandbox_dir)?.split_off(before);
    Ok(Measured {
        exit: status.code().unwrap_or(-1),
        wall,
        requests,
    })
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// The runs of one account size.
struct Size {
    n: usize,
    load_before: String,
    load_after: String,
    runs: Vec<(Measured, Measured)>,
}

fn bench_size(args: &Args, n: usize) -> Result<Size, Failure> {
    let scratch = tempfile::Builder::new()
        .prefix("cwa-bench-add-")
        .tempdir()?;
    let root = scratch.path().to_path_buf();
    let sandbox_dir = root.join("sandbox");
    let work = root.join("work");
    fs::create_dir_all(work.join("state"))?;
    fs::write(work.join("lines.toml"), lines_toml(n))?;
    eprintln!("N = {n}: starting the sandbox in {}", root.display());
    let sandbox = Sandbox::start(&args.cwa, &sandbox_dir, n, args.latency_ms)?;
    let env = sandbox.env.clone();
    let run = |name: &str, argv: &[&str]| run_cwa(args, &work, &sandbox_dir, &env, name, argv);
    let import = run("import", &["import", "--out", "lines.toml"])?;
    let clean = run("plan", &["plan", "--detailed-exitcode"])?;
    if import.exit != 0 || clean.exit != 0 {
        sandbox.stop();
        return Err(format!("import/plan failed: see {}", work.display()).into());
    }
    let load_before = load_average();
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let key = format!("bench_add_{i}");
        let id = format!("00000000-0000-4000-8000-00000000b{i:03}");
        let name = format!("Bench Add {i}");
        let add = run(
            &format!("add-{i}"),
            &[
                "add",
                "church",
                &key,
                "--id",
                &id,
                "--name",
                &name,
                "--area-code",
                "734",
            ],
        )?;
        let target = format!("church.{key}");
        let apply = run(
            &format!("apply-{i}"),
            &["apply", "--target", &target, "--auto-approve"],
        )?;
        if add.exit != 0 || apply.exit != 0 {
            sandbox.stop();
            return Err(format!(
                "run {i}: add exit {}, apply exit {}: see {}",
                add.exit,
                apply.exit,
                work.display()
            )
            .into());
        }
        eprintln!(
            "  run {i}: add {} ms ({} requests), apply {} ms ({} requests)",
            ms(add.wall),
            add.requests.len(),
            ms(apply.wall),
            apply.requests.len()
        );
        runs.push((add, apply));
    }
    let load_after = load_average();
    sandbox.stop();
    if args.keep {
        eprintln!("kept {}", scratch.keep().display());
    }
    Ok(Size {
        n,
        load_before,
        load_after,
        runs,
    })
}

fn print(sizes: &[Size], args: &Args) {
    println!(
        "\nlatency {} ms per request, median of {} runs (each a church of its own)\n",
        args.latency_ms, args.runs
    );
    println!("| N | add ms | apply ms | add + apply ms | requests add (list reads + other) | requests apply (list reads + other) | target < 3 s | load average before / after |");
    println!("|---:|---:|---:|---:|---|---|---|---|");
    for s in sizes {
        let add = median(s.runs.iter().map(|(a, _)| a.wall).collect());
        let apply = median(s.runs.iter().map(|(_, p)| p.wall).collect());
        let total = median(s.runs.iter().map(|(a, p)| a.wall + p.wall).collect());
        let count =
            |m: &Measured| format!("{} ({} + {})", m.requests.len(), m.list_reads(), m.other());
        let (a, p) = &s.runs[s.runs.len() / 2];
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            s.n,
            ms(add),
            ms(apply),
            ms(total),
            count(a),
            count(p),
            if total < Duration::from_secs(3) {
                "met"
            } else {
                "missed"
            },
            s.load_before,
            s.load_after
        );
    }
    println!("\nrequests of the middle run, by endpoint (other than list reads):\n");
    for s in sizes {
        let (a, p) = &s.runs[s.runs.len() / 2];
        let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in a.requests.iter().chain(&p.requests) {
            if !is_list(&r.method, &r.path) {
                *by.entry((r.method.clone(), r.path.clone())).or_default() += 1;
            }
        }
        let list: Vec<String> = by
            .iter()
            .map(|((m, path), k)| format!("{k}x {m} {path}"))
            .collect();
        println!("- N = {}: {}", s.n, list.join(", "));
    }
}

fn main() -> Result<(), Failure> {
    let args = Args::parse()?;
    let mut sizes = Vec::new();
    for &n in &args.sizes {
        sizes.push(bench_size(&args, n)?);
    }
    print(&sizes, &args);
    Ok(())
}
