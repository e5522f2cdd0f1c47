//! The change graph: a petgraph DAG of changes with dependency edges, validated (a cycle is
//! an error naming its members) and ordered the way apply runs it: dependencies first, every
//! removal after every creation, removals in reverse dependency order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use petgraph::graph::{DiGraph, NodeIndex};

use super::{Action, Change};
pub use crate::model::CycleError;
use crate::model::{Address, NumberRef, Spec};

/// The change graph over a plan's changes (node weights are indices into `changes`).
pub type ChangeGraph = DiGraph<usize, ()>;

/// Orders changes for apply and returns the edges (from, to) between their new positions.
/// On a cycle, the changes come back unordered with the cycle's members.
#[allow(clippy::type_complexity)]
pub fn order(
    changes: Vec<Change>,
) -> Result<(Vec<Change>, Vec<(usize, usize)>), (Vec<Change>, CycleError)> {
    let graph = build(&changes);
    let sorted = match kahn(&graph, &changes) {
        Some(sorted) => sorted,
        None => {
            let cycle = find_cycle(&graph, &changes);
            return Err((changes, cycle));
        }
    };
    let mut position = vec![0; changes.len()];
    for (new, &old) in sorted.iter().enumerate() {
        position[old] = new;
    }
    let edges = graph
        .edge_indices()
        .filter_map(|e| graph.edge_endpoints(e))
        .map(|(a, b)| (position[graph[a]], position[graph[b]]))
        .collect();
    Ok((permute(changes, position), edges))
}

/// Moves every item to `position[its index]` in place, so that ordering a large plan never
/// holds a second copy of its changes.
fn permute<T>(mut items: Vec<T>, mut position: Vec<usize>) -> Vec<T> {
    for start in 0..items.len() {
        while position[start] != start {
            let to = position[start];
            items.swap(start, to);
            position.swap(start, to);
        }
    }
    items
}

fn is_removal(action: Action) -> bool {
    matches!(action, Action::Delete | Action::Forget | Action::Retain)
}

/// Edges: a dependency before its user; a removal after everything that used the object, and
/// a displaced object's removal after its replacement (create before destroy).
fn build(changes: &[Change]) -> ChangeGraph {
    let mut graph = ChangeGraph::new();
    let nodes: Vec<NodeIndex> = (0..changes.len()).map(|i| graph.add_node(i)).collect();
    let by_addr: BTreeMap<&Address, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.address, i))
        .collect();
    for (i, change) in changes.iter().enumerate() {
        if is_removal(change.action) {
            for (j, user) in changes.iter().enumerate() {
                if j != i && referenced_by(&change.address, user.before.as_ref()) {
                    graph.add_edge(nodes[j], nodes[i], ());
                }
            }
            let replacement = change.displaced_from.as_ref().and_then(|a| by_addr.get(a));
            if let Some(&j) = replacement.filter(|&&j| j != i) {
                graph.add_edge(nodes[j], nodes[i], ());
            }
            continue;
        }
        for dep in &change.depends_on {
            if let Some(&j) = by_addr.get(dep) {
                if !is_removal(changes[j].action) {
                    graph.add_edge(nodes[j], nodes[i], ());
                }
            }
        }
    }
    add_number_handoffs(&mut graph, &nodes, changes);
    graph
}

/// LiveKit refuses two inbound trunks holding one number, so a trunk that gives a number up
/// is changed before the trunk that takes it.
fn add_number_handoffs(graph: &mut ChangeGraph, nodes: &[NodeIndex], changes: &[Change]) {
    let numbers = |spec: &Option<Spec>| -> Vec<NumberRef> {
        match spec {
            Some(Spec::LivekitInboundTrunk(t)) => t.numbers.clone(),
            _ => Vec::new(),
        }
    };
    let mut giver: BTreeMap<NumberRef, usize> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        let after = numbers(&c.after);
        for n in numbers(&c.before)
            .into_iter()
            .filter(|n| !after.contains(n))
        {
            giver.insert(n, i);
        }
    }
    for (j, c) in changes.iter().enumerate() {
        let before = numbers(&c.before);
        for n in numbers(&c.after).iter().filter(|n| !before.contains(n)) {
            if let Some(&i) = giver.get(n).filter(|&&i| i != j) {
                graph.add_edge(nodes[i], nodes[j], ());
            }
        }
    }
}

fn referenced_by(addr: &Address, spec: Option<&Spec>) -> bool {
    let Some(spec) = spec else { return false };
    spec.refs().into_iter().any(|r| r.addr() == Some(addr))
        || spec
            .number_refs()
            .into_iter()
            .any(|n| matches!(n, NumberRef::Of(a) if a == addr))
}

/// Kahn's algorithm with a priority: creations and updates before removals, lower kinds
/// first, removals of higher kinds first, then by address for a stable order.
fn kahn(graph: &ChangeGraph, changes: &[Change]) -> Option<Vec<usize>> {
    let key = |i: usize| {
        let c = &changes[i];
        let rank = c.kind.rank();
        let removal = is_removal(c.action);
        let rank = if removal { u8::MAX - rank } else { rank };
        Reverse((removal, rank, c.address.clone(), i))
    };
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BinaryHeap<_> = (0..changes.len())
        .filter(|&i| indegree[i] == 0)
        .map(key)
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    while let Some(Reverse((_, _, _, i))) = ready.pop() {
        out.push(i);
        for next in graph.neighbors(NodeIndex::new(i)) {
            let n = next.index();
            indegree[n] -= 1;
            if indegree[n] == 0 {
                ready.push(key(n));
            }
        }
    }
    (out.len() == changes.len()).then_some(out)
}

fn find_cycle(graph: &ChangeGraph, changes: &[Change]) -> CycleError {
    CycleError::find(graph, |i| changes[*i].address.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_moves_each_item_to_its_position() {
        let items = vec!["a", "b", "c", "d", "e"];
        assert_eq!(
            permute(items, vec![3, 0, 4, 1, 2]),
            ["b", "d", "e", "a", "c"]
        );
        assert_eq!(permute(vec![1, 2], vec![0, 1]), [1, 2]);
        assert!(permute(Vec::<u8>::new(), Vec::new()).is_empty());
    }
}
