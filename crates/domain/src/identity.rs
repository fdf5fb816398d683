//! Who is who: groups identifiers into people and matches treatment records to them.
//!
//! A person is a connected group of identifiers: identifiers that appear together in one
//! record, identity links (NOMS-CRN) and merges join groups; an unmerge newer than the merge
//! of the same pair cancels it. A treatment record is matched **definitely** when it shares an
//! identifier with a person who has a release or referral, **probably** when its attributor
//! and local authority match exactly one such person, and is **ambiguous** (sent for review,
//! never guessed) when they match more than one. Everything is a function of the set of
//! events, so arrival order cannot change the result.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::events::{EventId, IdentityChange, SourceEvent};
use crate::{Attributor, Identifier, LocalAuthorityCode};

/// A person, named by the smallest identifier in their group (NOMS sorts first).
pub type PersonKey = Identifier;

/// How a record was matched to a person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    /// A shared, validated identifier.
    Definite(PersonKey),
    /// The only person with this attributor in this local authority.
    Probable(PersonKey),
    /// More than one person fits: a person must decide.
    Ambiguous(BTreeSet<PersonKey>),
    /// Nobody fits yet; kept and matched when the person appears.
    Unmatched,
}

/// The people among a set of events.
#[derive(Debug, Default)]
pub struct People {
    parent: Vec<usize>,
    index: BTreeMap<Identifier, usize>,
    /// Group root -> the person key (smallest identifier) of that group.
    keys: BTreeMap<usize, PersonKey>,
    /// Persons who have a release, referral or admission.
    justice_people: BTreeSet<PersonKey>,
    /// Every attributor seen on a justice person's records.
    attributors: BTreeMap<PersonKey, BTreeSet<Attributor>>,
    /// Justice persons by each (attributor, local authority they are going to) pair.
    by_attributor: BTreeMap<(Attributor, LocalAuthorityCode), BTreeSet<PersonKey>>,
}

impl People {
    fn node(&mut self, id: &Identifier) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.parent.len();
        self.parent.push(i);
        self.index.insert(id.clone(), i);
        i
    }

    fn find(&self, mut i: usize) -> usize {
        while self.parent[i] != i {
            i = self.parent[i];
        }
        i
    }

    /// Find with path halving, so chains stay short while groups are being joined.
    fn find_mut(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: &Identifier, b: &Identifier) {
        let (a, b) = (self.node(a), self.node(b));
        let (ra, rb) = (self.find_mut(a), self.find_mut(b));
        if ra != rb {
            // Attach the larger root under the smaller so the structure is order-independent.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }

    /// Group the identifiers in `events` into people.
    pub fn resolve<'a>(events: impl IntoIterator<Item = &'a SourceEvent> + Clone) -> Self {
        let mut people = People::default();
        // Latest merge/unmerge per unordered pair decides whether the merge stands.
        let mut merges: BTreeMap<(Identifier, Identifier), (DateTime<Utc>, EventId, bool)> =
            BTreeMap::new();
        for event in events.clone() {
            if let Some(person) = event.person() {
                for id in &person.identifiers {
                    people.node(id);
                }
                for pair in person.identifiers.windows(2) {
                    people.union(&pair[0], &pair[1]);
                }
            }
            let mut note_merge = |change: &IdentityChange, merged: bool| {
                let pair = if change.kept <= change.other {
                    (change.kept.clone(), change.other.clone())
                } else {
                    (change.other.clone(), change.kept.clone())
                };
                let stamp = (change.meta.occurred_at, change.meta.event_id, merged);
                let entry = merges.entry(pair).or_insert(stamp);
                if (stamp.0, stamp.1) > (entry.0, entry.1) {
                    *entry = stamp;
                }
            };
            match event {
                SourceEvent::IdentityLinked(link) => {
                    people.union(&link.kept, &link.other);
                }
                SourceEvent::IdentityMerged(change) => note_merge(change, true),
                SourceEvent::IdentityUnmerged(change) => note_merge(change, false),
                _ => {}
            }
        }
        for ((a, b), (_, _, merged)) in &merges {
            people.node(a);
            people.node(b);
            if *merged {
                people.union(a, b);
            }
        }
        // Name each group by its smallest identifier.
        let ids: Vec<(Identifier, usize)> =
            people.index.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (id, i) in ids {
            let root = people.find_mut(i);
            // Point every node straight at its root: later look-ups are one step.
            people.parent[i] = root;
            people.keys.entry(root).or_insert(id);
        }
        // People with a release, referral or admission, and how they can be matched by
        // attributor: every attributor on their records with every local authority they are
        // going to.
        let mut las: BTreeMap<PersonKey, BTreeSet<LocalAuthorityCode>> = BTreeMap::new();
        for event in events {
            let (person, la) = match event {
                SourceEvent::Release(r) => (&r.person, r.need.as_ref().map(|n| &n.local_authority)),
                SourceEvent::Referral(r) => (&r.person, Some(&r.need.local_authority)),
                SourceEvent::CustodyAdmission(a) => (&a.person, None),
                _ => continue,
            };
            let Some(key) = people.key_of(&person.identifiers) else {
                continue;
            };
            if let Some(la) = la {
                las.entry(key.clone()).or_default().insert(la.clone());
            }
            if let Some(a) = &person.attributor {
                people
                    .attributors
                    .entry(key.clone())
                    .or_default()
                    .insert(a.clone());
            }
            people.justice_people.insert(key);
        }
        for (key, attributors) in &people.attributors {
            for a in attributors {
                for la in las.get(key).into_iter().flatten() {
                    people
                        .by_attributor
                        .entry((a.clone(), la.clone()))
                        .or_default()
                        .insert(key.clone());
                }
            }
        }
        people
    }

    /// The person a set of identifiers belongs to (any of them will do: they are one group).
    pub fn key_of(&self, identifiers: &[Identifier]) -> Option<PersonKey> {
        let first = identifiers.first()?;
        let i = *self.index.get(first)?;
        self.keys.get(&self.find(i)).cloned()
    }

    /// Whether `key` is a person with a release, referral or admission.
    pub fn is_justice_person(&self, key: &PersonKey) -> bool {
        self.justice_people.contains(key)
    }

    /// Every identifier in `key`'s group, in order (NOMS numbers first).
    pub fn identifiers_of<'s>(&'s self, key: &PersonKey) -> impl Iterator<Item = &'s Identifier> {
        let root = self.index.get(key).map(|&i| self.find(i));
        self.index
            .iter()
            .filter(move |(_, &i)| root.is_some_and(|r| self.find(i) == r))
            .map(|(id, _)| id)
    }

    /// The attributors seen on a person's records.
    pub fn attributors_of(&self, key: &PersonKey) -> impl Iterator<Item = &Attributor> {
        self.attributors.get(key).into_iter().flatten()
    }

    /// Match a record (a treatment start, a death) to a person.
    pub fn match_record(
        &self,
        identifiers: &[Identifier],
        attributor: Option<&Attributor>,
        local_authority: Option<&LocalAuthorityCode>,
    ) -> Match {
        if let Some(key) = self.key_of(identifiers) {
            if self.is_justice_person(&key) {
                return Match::Definite(key);
            }
        }
        let (Some(attributor), Some(la)) = (attributor, local_authority) else {
            return Match::Unmatched;
        };
        let Some(candidates) = self.by_attributor.get(&(attributor.clone(), la.clone())) else {
            return Match::Unmatched;
        };
        let mut iter = candidates.iter();
        match (iter.next(), iter.next()) {
            (None, _) => Match::Unmatched,
            (Some(only), None) => Match::Probable(only.clone()),
            _ => Match::Ambiguous(candidates.clone()),
        }
    }
}
