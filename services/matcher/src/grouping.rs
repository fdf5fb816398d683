//! Grouping a batch's new events into components, with no I/O: events that share a match key,
//! or whose keys are already stored under a component, belong together (union-find over the
//! events and the stored components they reach). Each group then goes to its smallest stored
//! component, with the others merged into it, or to a new component when it reaches none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::keys::Key;

/// Events that belong together, and the stored components they reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Positions of the events in the batch, ascending.
    pub events: Vec<usize>,
    /// Stored root components reached through the events' keys, ascending. Empty: the group
    /// needs a new component.
    pub components: BTreeSet<i64>,
}

impl Group {
    /// The component the group goes to when it reaches stored ones, and the others to merge
    /// into it.
    pub fn target(&self) -> Option<(i64, Vec<i64>)> {
        let mut components = self.components.iter().copied();
        let first = components.next()?;
        Some((first, components.collect()))
    }
}

/// Group events, given each event's keys and the root component of every key already stored.
/// Groups come in order of their first event.
pub fn group(keys: &[&[Key]], known: &BTreeMap<Key, i64>) -> Vec<Group> {
    // Nodes: the events, then one per distinct stored component.
    let mut component_node: BTreeMap<i64, usize> = BTreeMap::new();
    for c in known.values() {
        let n = keys.len() + component_node.len();
        component_node.entry(*c).or_insert(n);
    }
    let mut sets = UnionFind::new(keys.len() + component_node.len());
    let mut first_with_key: HashMap<&Key, usize> = HashMap::new();
    for (i, event_keys) in keys.iter().enumerate() {
        for k in *event_keys {
            match first_with_key.get(k) {
                Some(&j) => sets.union(i, j),
                None => {
                    first_with_key.insert(k, i);
                }
            }
            if let Some(c) = known.get(k) {
                sets.union(i, component_node[c]);
            }
        }
    }
    // Every component node was reached from some event's key, so every set holds an event,
    // and the smallest member of a set (its root) is an event.
    let mut groups: BTreeMap<usize, Group> = BTreeMap::new();
    for i in 0..keys.len() {
        groups
            .entry(sets.find(i))
            .or_insert_with(|| Group {
                events: Vec::new(),
                components: BTreeSet::new(),
            })
            .events
            .push(i);
    }
    for (&c, &node) in &component_node {
        if let Some(g) = groups.get_mut(&sets.find(node)) {
            g.components.insert(c);
        }
    }
    groups.into_values().collect()
}

/// Union-find over small integer nodes; the root of a set is its smallest member.
struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        Self((0..n).collect())
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u128) -> Key {
        Key::from_u128(n)
    }

    #[test]
    fn events_sharing_a_key_are_one_group_and_a_lone_event_its_own() {
        let keys: Vec<Vec<Key>> = vec![vec![k(1), k(2)], vec![k(3)], vec![k(2), k(4)]];
        let refs: Vec<&[Key]> = keys.iter().map(Vec::as_slice).collect();
        let groups = group(&refs, &BTreeMap::new());
        assert_eq!(
            groups,
            vec![
                Group {
                    events: vec![0, 2],
                    components: BTreeSet::new()
                },
                Group {
                    events: vec![1],
                    components: BTreeSet::new()
                },
            ]
        );
        assert_eq!(groups[0].target(), None, "a new component");
    }

    #[test]
    fn an_event_joining_two_stored_components_merges_them_into_the_smaller() {
        // Event 0 carries a key of component 9 and one of component 4; event 1 reaches 9 too.
        let keys: Vec<Vec<Key>> = vec![vec![k(1), k(2)], vec![k(1)], vec![k(7)]];
        let refs: Vec<&[Key]> = keys.iter().map(Vec::as_slice).collect();
        let known = BTreeMap::from([(k(1), 9), (k(2), 4), (k(7), 5)]);
        let groups = group(&refs, &known);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].events, vec![0, 1]);
        assert_eq!(groups[0].target(), Some((4, vec![9])));
        assert_eq!(groups[1].events, vec![2]);
        assert_eq!(groups[1].target(), Some((5, vec![])));
    }

    #[test]
    fn chains_through_keys_and_components_are_one_group() {
        // 0 and 1 share key 1; 1 reaches component 3 by key 2; 2 reaches component 3 by key 5.
        let keys: Vec<Vec<Key>> = vec![vec![k(1)], vec![k(1), k(2)], vec![k(5)]];
        let refs: Vec<&[Key]> = keys.iter().map(Vec::as_slice).collect();
        let known = BTreeMap::from([(k(2), 3), (k(5), 3)]);
        let groups = group(&refs, &known);
        assert_eq!(
            groups,
            vec![Group {
                events: vec![0, 1, 2],
                components: BTreeSet::from([3])
            }]
        );
    }
}
