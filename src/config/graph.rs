//! The desired resource graph: an edge runs from what a resource needs to the resource, so a
//! topological order is a creation order. Built in named steps (nodes, reference edges,
//! number edges, explicit `depends_on`), then checked for cycles; [`crate::render::graph`] prints it.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::model::{Address, Desired, NumberRef};

/// Why one resource waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// The spec refers to it (a trunk of a rule, the connection of a number).
    Reference,
    /// A trunk holds the number that resource owns.
    Holds,
    /// An explicit `depends_on`.
    DependsOn,
}

/// The desired resources and what each waits for, in a fixed creation order.
#[derive(Debug, Clone)]
pub struct DesiredGraph {
    pub graph: DiGraph<Address, EdgeKind>,
    index: BTreeMap<Address, NodeIndex>,
    order: Vec<NodeIndex>,
}

pub use crate::model::CycleError;

/// Builds the graph of `desired` and rejects cycles. Dependencies on addresses that are not
/// declared are skipped here: validation reports them where they are written.
pub fn build(desired: &Desired) -> Result<DesiredGraph, CycleError> {
    let mut g = DesiredGraph {
        graph: DiGraph::new(),
        index: BTreeMap::new(),
        order: Vec::new(),
    };
    g.add_nodes(desired);
    let mut edges = BTreeSet::new();
    reference_edges(desired, &mut edges);
    number_edges(desired, &mut edges);
    depends_on_edges(desired, &mut edges);
    g.add_edges(edges);
    g.order = g.creation_order()?;
    Ok(g)
}

type EdgeSet = BTreeSet<(Address, Address, EdgeKind)>;

fn reference_edges(desired: &Desired, edges: &mut EdgeSet) {
    for r in desired.resources.values() {
        for dep in r.spec.refs().into_iter().filter_map(|r| r.addr()) {
            edges.insert((dep.clone(), r.addr.clone(), EdgeKind::Reference));
        }
    }
}

/// A trunk waits for the numbers it holds: `(number of …)` entries by address, literal
/// numbers by the declared resource that owns that number.
fn number_edges(desired: &Desired, edges: &mut EdgeSet) {
    let owners = desired.number_owners();
    for r in desired.resources.values() {
        for n in r.spec.number_refs() {
            let owner = match n {
                NumberRef::Of(a) => Some(a),
                NumberRef::Number(n) => owners.get(n).copied(),
            };
            if let Some(owner) = owner {
                edges.insert((owner.clone(), r.addr.clone(), EdgeKind::Holds));
            }
        }
    }
}

fn depends_on_edges(desired: &Desired, edges: &mut EdgeSet) {
    for r in desired.resources.values() {
        for dep in &r.depends_on {
            edges.insert((dep.clone(), r.addr.clone(), EdgeKind::DependsOn));
        }
    }
}

impl DesiredGraph {
    fn add_nodes(&mut self, desired: &Desired) {
        for addr in desired.resources.keys() {
            let ix = self.graph.add_node(addr.clone());
            self.index.insert(addr.clone(), ix);
        }
    }

    fn add_edges(&mut self, edges: EdgeSet) {
        let mut seen = BTreeSet::new();
        for (from, to, kind) in edges {
            let (Some(&a), Some(&b)) = (self.index.get(&from), self.index.get(&to)) else {
                continue;
            };
            if seen.insert((a, b)) {
                self.graph.add_edge(a, b, kind);
            }
        }
    }

    /// Kahn's algorithm with a sorted ready set, so the order is the same on every run.
    fn creation_order(&self) -> Result<Vec<NodeIndex>, CycleError> {
        let key = |ix: NodeIndex| {
            let a = &self.graph[ix];
            (a.kind.rank(), a.clone(), ix)
        };
        let mut waiting: BTreeMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|ix| {
                (
                    ix,
                    self.graph
                        .neighbors_directed(ix, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut ready: BTreeSet<_> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(ix, _)| key(*ix))
            .collect();
        let mut order = Vec::new();
        while let Some(next) = ready.pop_first() {
            let ix = next.2;
            order.push(ix);
            for succ in self.graph.neighbors_directed(ix, Direction::Outgoing) {
                let n = waiting.get_mut(&succ).expect("every node is counted");
                *n -= 1;
                if *n == 0 {
                    ready.insert(key(succ));
                }
            }
        }
        if order.len() == self.graph.node_count() {
            Ok(order)
        } else {
            Err(self.first_cycle())
        }
    }

    fn first_cycle(&self) -> CycleError {
        CycleError::find(&self.graph, Address::clone)
    }

    /// Addresses in creation order: each after everything it needs.
    pub fn order(&self) -> Vec<&Address> {
        self.order.iter().map(|ix| &self.graph[*ix]).collect()
    }

    /// What `addr` waits for, with why.
    pub fn needs(&self, addr: &Address) -> Vec<(&Address, EdgeKind)> {
        let Some(&ix) = self.index.get(addr) else {
            return Vec::new();
        };
        let mut out: Vec<(&Address, EdgeKind)> = self
            .graph
            .edges_directed(ix, Direction::Incoming)
            .map(|e| {
                (
                    &self.graph[petgraph::visit::EdgeRef::source(&e)],
                    *e.weight(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Every edge (from, to, why), grouped by target in creation order.
    pub fn edges_in_order(&self) -> Vec<(&Address, &Address, EdgeKind)> {
        self.order()
            .into_iter()
            .flat_map(|to| {
                self.needs(to)
                    .into_iter()
                    .map(move |(from, k)| (from, to, k))
            })
            .collect()
    }

    /// Resources per church (in creation order), then the shared ones.
    pub fn grouped<'a>(
        &'a self,
        desired: &Desired,
    ) -> (BTreeMap<String, Vec<&'a Address>>, Vec<&'a Address>) {
        let mut by_church: BTreeMap<String, Vec<&Address>> = BTreeMap::new();
        let mut shared = Vec::new();
        for a in self.order() {
            match desired.get(a).and_then(|r| r.church.clone()) {
                Some(c) => by_church.entry(c).or_default().push(a),
                None => shared.push(a),
            }
        }
        (by_church, shared)
    }
}
