//! cwa's own CPU for 10,000 lines, no network in what is measured: parse + validate
//! (`config::parse`), plan (`session::plan_against`, the step every command runs after its
//! refresh: the diff and the certification of the live lines) and render (human and JSON),
//! for a plan with no changes and for the first plan that adopts everything. See
//! BENCHMARKS.md.
//!
//! `cargo bench --bench cpu` (set `CWA_BENCH_LINES` for another size). The live world is read
//! once, before anything is measured, from an in-process sandbox seeded with `synthetic:N`.
//! Times are CPU time of the measuring thread (the target is CPU, and the machine it runs on
//! may be shared), not wall time.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

#[path = "world.rs"]
mod world;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cwa::config::{self, Loaded};
use cwa::model::{Live, SecretSource};
use cwa::plan::{Plan, PlanOptions};
use cwa::render::{self, HumanOptions};
use cwa::state::State;

/// Everything the measured steps start from.
struct Inputs {
    text: String,
    loaded: Loaded,
    live: Live,
    /// State that owns every declared object, as after `cwa import`.
    owned: State,
    secrets: SecretSource,
}

fn lines() -> usize {
    std::env::var("CWA_BENCH_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Reads the synthetic world through cwa's own clients once, then owns it in state.
fn inputs(n: usize) -> Inputs {
    let text = cwa::synthetic::lines_toml(n);
    let loaded = config::parse(Path::new("lines.toml"), &text).expect("synthetic lines parse");
    let (live, env) = world::read_world(n);
    let secrets = SecretSource::with_overrides(env);
    let adopting = diff(&loaded, &State::new(), &live, &secrets);
    let owned = world::owned_state(&adopting, &live);
    Inputs {
        text,
        loaded,
        live,
        owned,
        secrets,
    }
}

/// The plan `cwa plan` computes after its refresh, by the same library call.
fn diff(loaded: &Loaded, state: &State, live: &Live, secrets: &SecretSource) -> Plan {
    cwa::session::plan_against(loaded, state, live, true, PlanOptions::default(), secrets)
}

fn human_options(loaded: &Loaded) -> HumanOptions {
    HumanOptions {
        color: false,
        church_names: loaded
            .desired
            .churches
            .iter()
            .map(|c| (c.key.clone(), c.name.clone()))
            .collect(),
        show_unchanged: false,
        sandbox: false,
    }
}

/// parse + validate + diff + render, as `cwa plan` runs them after its refresh.
fn pipeline(inputs: &Inputs, state: &State) -> (String, String) {
    let loaded = config::parse(Path::new("lines.toml"), &inputs.text).expect("parses");
    let plan = diff(&loaded, state, &inputs.live, &inputs.secrets);
    (
        render::human(&plan, &human_options(&loaded)),
        render::json(&plan),
    )
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
struct ThreadCpu;

#[repr(C)]
struct Timespec {
    sec: std::ffi::c_long,
    nsec: std::ffi::c_long,
}

extern "C" {
    fn clock_gettime(clock: i32, now: *mut Timespec) -> i32;
}

const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn thread_cpu_nanos() -> u64 {
    let mut now = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a plain syscall writing into a live, properly laid out value.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.sec.max(0) as u64 * 1_000_000_000 + now.nsec.max(0) as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }

    fn end(&self, started: u64) -> u64 {
        thread_cpu_nanos().saturating_sub(started)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Shows CPU nanoseconds as ns, µs, ms or s of CPU.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns CPU"),
            t if t < 1e6 => (1e-3, "µs CPU"),
            t if t < 1e9 => (1e-6, "ms CPU"),
            _ => (1e-9, "s CPU"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        values.iter_mut().for_each(|v| *v = 1e9 / *v);
        "per CPU second"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns CPU"
    }
}

fn benches(c: &mut Criterion<ThreadCpu>) {
    let n = lines();
    let inputs = inputs(n);
    let no_change = diff(&inputs.loaded, &inputs.owned, &inputs.live, &inputs.secrets);
    assert!(
        !no_change.has_changes(),
        "a plan against the owned synthetic world has no changes"
    );
    let adopting = diff(&inputs.loaded, &State::new(), &inputs.live, &inputs.secrets);
    let mut group = c.benchmark_group(format!("{n} lines"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("parse + validate", |b| {
        b.iter(|| config::parse(Path::new("lines.toml"), black_box(&inputs.text)).unwrap())
    });
    group.bench_function("diff, no changes", |b| {
        b.iter(|| diff(&inputs.loaded, &inputs.owned, &inputs.live, &inputs.secrets))
    });
    group.bench_function("diff, adopting everything", |b| {
        b.iter(|| diff(&inputs.loaded, &State::new(), &inputs.live, &inputs.secrets))
    });
    let human = human_options(&inputs.loaded);
    group.bench_function("render human, no changes", |b| {
        b.iter(|| render::human(black_box(&no_change), &human))
    });
    group.bench_function("render json, no changes", |b| {
        b.iter(|| render::json(black_box(&no_change)))
    });
    group.bench_function("render human, adopting everything", |b| {
        b.iter(|| render::human(black_box(&adopting), &human))
    });
    group.bench_function("render json, adopting everything", |b| {
        b.iter(|| render::json(black_box(&adopting)))
    });
    group.bench_function("parse + validate + diff + render, no changes", |b| {
        b.iter(|| pipeline(&inputs, &inputs.owned))
    });
    group.bench_function(
        "parse + validate + diff + render, adopting everything",
        |b| b.iter(|| pipeline(&inputs, &State::new())),
    );
    group.finish();
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = benches
}
criterion_main!(cpu);
