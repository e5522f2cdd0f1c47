//! The walk of the change graph as a pipeline: each change starts as soon as the changes it
//! depends on are done, so a church's chain (number, trunk, rule) never waits for another
//! church's. At most `parallelism` changes of one provider run at once, so a slow provider
//! holds up only its own queue. A failure stops only what depends on it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use tokio::sync::Semaphore;

use crate::model::{Address, ProviderName};
use crate::plan::{Change, Plan};

use super::executor::{needs_recording, outcome, skipped};
use super::hooks::Applied;
use super::{ApplyError, ApplyReport, Executor, Skipped};
use crate::state::StateError;

/// How often, at most, a large state is saved while changes keep finishing (a small one is
/// saved after every step; the journal holds every result in between either way).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// What running one change gave: `None` when the stop flag kept it from starting.
type Ran = Option<Result<Option<String>, ApplyError>>;

/// A change that came back from its run, with everything the coordinator needs to record it
/// without awaiting anything (see [`Executor::pipeline`]).
struct Finished {
    i: usize,
    ran: Ran,
    /// For a number, the number it is now (for the progress view).
    number: Option<String>,
    /// The forced save this change made, when one was due.
    saved: Option<Result<(), StateError>>,
}

impl Executor {
    /// Runs every change of `plan` once the changes it depends on are done (or skips it when
    /// one of them failed or was skipped), fills `report` in plan order, and returns the walk
    /// (what failed, for the rollback).
    ///
    /// The loop that admits and records changes awaits nothing but the next finished change:
    /// the changes in flight are polled only while it waits there, and one of them may hold
    /// (or be queued first for) the state lock, so any other await here could wait forever.
    /// Whatever needs the lock (a number for the progress view, a periodic save) is done by
    /// the change's own future.
    pub(super) async fn pipeline(&self, plan: &Plan, report: &mut ApplyReport) -> Walk {
        let mut walk = Walk::new(plan);
        let turns = Turns::new(self.options.parallelism);
        let mut tally = Tally::default();
        let mut running = FuturesUnordered::new();
        self.hook.run_started(walk.runnable);
        loop {
            while let Some(i) = walk.ready.pop_front() {
                match self.admit(plan, i, &mut walk, &mut tally) {
                    Admit::Run => running.push(self.run_one(&turns, i, &plan.changes[i])),
                    Admit::Settled => walk.settle(i),
                }
            }
            let Some(finished) = running.next().await else {
                break;
            };
            let i = finished.i;
            self.record(plan, finished, &mut walk, &mut tally, report);
            walk.settle(i);
        }
        self.hook.run_finished();
        tally.into_report(plan, report);
        walk
    }

    /// Whether change `i` runs now, or is settled without running: it writes nothing, a
    /// change it depends on failed (skipped), or the run was interrupted (not started).
    fn admit(&self, plan: &Plan, i: usize, walk: &mut Walk, tally: &mut Tally) -> Admit {
        let change = &plan.changes[i];
        if !(change.action.changes_anything() || needs_recording(change)) {
            return Admit::Settled;
        }
        if let Some(b) = walk.blocker(i) {
            let root = walk.failed[&b].clone();
            let s = skipped(change, &plan.changes[b], &root);
            self.hook.skipped(&s);
            tally.skipped.push((i, s));
            walk.failed.insert(i, root);
            return Admit::Settled;
        }
        if self.stop.load(Ordering::SeqCst) {
            tally.not_started.push(i);
            return Admit::Settled;
        }
        Admit::Run
    }

    /// Runs one change in its provider's turn (`None` when the stop flag was set while it
    /// waited), then reads what the coordinator will record and saves state when a save is
    /// due.
    async fn run_one(&self, turns: &Turns, i: usize, change: &Change) -> Finished {
        let turn = turns.of(change.kind.provider()).acquire().await;
        if self.stop.load(Ordering::SeqCst) {
            return Finished {
                i,
                ran: None,
                number: None,
                saved: None,
            };
        }
        self.hook.pre_apply(change);
        let result = self.run_change(change).await;
        self.hook.post_apply(change);
        drop(turn);
        let number = match result {
            Ok(_) => self.number_of(&change.address).await,
            Err(_) => None,
        };
        let saved = if turns.save_due() {
            Some(self.save(true).await)
        } else {
            None
        };
        Finished {
            i,
            ran: Some(result),
            number,
            saved,
        }
    }

    /// Records what running a change gave and tells the hook at once.
    fn record(
        &self,
        plan: &Plan,
        finished: Finished,
        walk: &mut Walk,
        tally: &mut Tally,
        report: &mut ApplyReport,
    ) {
        let Finished {
            i,
            ran,
            number,
            saved,
        } = finished;
        let change = &plan.changes[i];
        match ran {
            None => tally.not_started.push(i),
            Some(Ok(id)) => {
                if change.action.changes_anything() {
                    walk.finished += 1;
                    self.hook.applied(&Applied {
                        change,
                        id: id.as_deref(),
                        number,
                        finished: walk.finished,
                        total: walk.total,
                    });
                }
                tally.done.push((i, outcome(change, id, None)));
            }
            Some(Err(e)) => {
                self.hook.failed(change, &e);
                walk.failed.insert(i, change.address.clone());
                let failed = outcome(change, change.id.clone(), Some(&e));
                tally.failed.push((i, failed));
            }
        }
        self.saved(report, "during the run", saved);
    }

    /// A forced save once no change is in flight; a failure is reported (the journal holds
    /// what was done).
    pub(super) async fn save_at_end(&self, report: &mut ApplyReport) {
        let saved = self.save(true).await;
        self.saved(report, "at the end of the run", Some(saved));
    }

    fn saved(&self, report: &mut ApplyReport, when: &str, saved: Option<Result<(), StateError>>) {
        match saved {
            Some(Ok(())) => self.hook.state_saved(),
            Some(Err(e)) => self.state_not_saved(report, when, e),
            None => {}
        }
    }
}

/// What [`Executor::admit`] decided.
enum Admit {
    Run,
    Settled,
}

/// Whose turn it is: at most `parallelism` changes of each provider at once, and when a
/// forced save of a large state is due.
struct Turns {
    limits: BTreeMap<ProviderName, Semaphore>,
    last_save: std::sync::Mutex<Instant>,
}

impl Turns {
    fn new(parallelism: usize) -> Self {
        Self {
            limits: ProviderName::ALL
                .into_iter()
                .map(|p| (p, Semaphore::new(parallelism.max(1))))
                .collect(),
            last_save: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn of(&self, provider: ProviderName) -> &Semaphore {
        &self.limits[&provider]
    }

    /// True once every [`SAVE_EVERY`], for the one change that asks first.
    fn save_due(&self) -> bool {
        let Ok(mut last) = self.last_save.lock() else {
            return false;
        };
        if last.elapsed() < SAVE_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }
}

/// Outcomes as they arrive, each with its change's position, put in plan order at the end so
/// a report reads the same however the run interleaved.
#[derive(Default)]
struct Tally {
    done: Vec<(usize, super::Outcome)>,
    failed: Vec<(usize, super::Outcome)>,
    skipped: Vec<(usize, Skipped)>,
    not_started: Vec<usize>,
}

impl Tally {
    fn into_report(mut self, plan: &Plan, report: &mut ApplyReport) {
        self.done.sort_by_key(|(i, _)| *i);
        self.failed.sort_by_key(|(i, _)| *i);
        self.skipped.sort_by_key(|(i, _)| *i);
        self.not_started.sort_unstable();
        report.done.extend(self.done.into_iter().map(|(_, o)| o));
        report
            .failed
            .extend(self.failed.into_iter().map(|(_, o)| o));
        report
            .skipped
            .extend(self.skipped.into_iter().map(|(_, s)| s));
        report.not_started.extend(
            self.not_started
                .into_iter()
                .map(|i| plan.changes[i].address.clone()),
        );
    }
}

/// The state of a walk: the change graph, what each change still waits for, what is ready,
/// and what failed.
pub(super) struct Walk {
    graph: DiGraph<(), ()>,
    /// For each change, how many of the changes it depends on are not settled yet.
    waiting: Vec<usize>,
    /// Changes whose dependencies are all settled, not yet admitted, in the order they became
    /// ready (plan order at the start).
    ready: VecDeque<usize>,
    /// Changes that failed or were skipped, each with the failure at the root.
    pub(super) failed: BTreeMap<usize, Address>,
    finished: usize,
    /// Writing changes of the plan (the progress view's denominator).
    total: usize,
    /// Changes that will be admitted if nothing fails (the progress bar's length).
    runnable: usize,
}

impl Walk {
    fn new(plan: &Plan) -> Self {
        let count = plan.changes.len();
        let mut graph = DiGraph::with_capacity(count, plan.edges.len());
        for _ in 0..count {
            graph.add_node(());
        }
        for &(from, to) in &plan.edges {
            if from < count && to < count {
                graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
            }
        }
        let waiting: Vec<usize> = (0..count)
            .map(|i| {
                graph
                    .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                    .count()
            })
            .collect();
        let ready = (0..count).filter(|&i| waiting[i] == 0).collect();
        Self {
            graph,
            waiting,
            ready,
            failed: BTreeMap::new(),
            finished: 0,
            total: plan.actionable().count(),
            runnable: plan
                .changes
                .iter()
                .filter(|c| c.action.changes_anything() || needs_recording(c))
                .count(),
        }
    }

    /// The changes `i` depends on.
    fn preds(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(NodeIndex::index)
    }

    /// A dependency of `i` that failed or was skipped, if any (the first in plan order).
    fn blocker(&self, i: usize) -> Option<usize> {
        self.preds(i).filter(|p| self.failed.contains_key(p)).min()
    }

    /// Change `i` is over (done, failed, skipped, not started or nothing to do): the changes
    /// that waited only for it become ready.
    fn settle(&mut self, i: usize) {
        let mut next: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(NodeIndex::index)
            .collect();
        next.sort_unstable();
        next.dedup();
        for n in next {
            let parallel_edges = self
                .graph
                .edges_connecting(NodeIndex::new(i), NodeIndex::new(n))
                .count();
            self.waiting[n] -= parallel_edges;
            if self.waiting[n] == 0 {
                self.ready.push_back(n);
            }
        }
    }

    /// Every change the given ones wait for, transitively, and themselves.
    fn ancestors(&self, start: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = start.into_iter().collect();
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(self.preds(i));
            }
        }
        seen
    }

    /// The addresses of the failed chains (the only creates `--rollback-on-failure` undoes):
    /// what the failed changes waited for, minus what a change that succeeded (outside those
    /// chains) also waits for.
    pub(super) fn failed_chain(&self, plan: &Plan, report: &ApplyReport) -> BTreeSet<Address> {
        let chain = self.ancestors(self.failed.keys().copied());
        let done: BTreeSet<&Address> = report.done.iter().map(|o| &o.address).collect();
        let outside = plan
            .changes
            .iter()
            .enumerate()
            .filter(|(i, c)| !chain.contains(i) && done.contains(&c.address))
            .map(|(i, _)| i);
        let needed = self.ancestors(outside);
        chain
            .difference(&needed)
            .map(|&i| plan.changes[i].address.clone())
            .collect()
    }
}
