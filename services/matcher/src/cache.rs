//! Recently assessed components, kept in memory so the next batch that touches one need not
//! load and decode its events and cases again.
//!
//! An entry is tagged with the component's `version` as this instance committed it. It is
//! used only when the locked row still holds that version; any other writer (another
//! instance, a merge, the deadline clock) moves the version on and the entry is ignored. The
//! cache is bounded by a number of components, so memory does not grow with the store.
//! Nothing in it is needed for correctness: losing it costs a reload.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use continuity_domain::events::SourceEvent;
use continuity_domain::{Case, CaseId};

/// A stored case as the matcher last wrote it: its component, its next due time and the case
/// without the person.
pub type StoredCase = (i64, Option<DateTime<Utc>>, Case);

/// Everything stored for one root component.
#[derive(Debug, Default)]
pub struct Assessed {
    /// Every event of the component and the components merged into it.
    pub events: Vec<SourceEvent>,
    /// Its cases, by id.
    pub cases: BTreeMap<CaseId, StoredCase>,
}

/// The bounded, shared cache.
#[derive(Clone)]
pub struct ComponentCache {
    inner: Option<Arc<Mutex<lru::LruCache<i64, (i64, Assessed)>>>>,
}

impl ComponentCache {
    /// A cache of at most `capacity` components; 0 turns it off.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: NonZeroUsize::new(capacity)
                .map(|c| Arc::new(Mutex::new(lru::LruCache::new(c)))),
        }
    }

    /// Take the entry for `component` if it was committed at `version`.
    pub fn take(&self, component: i64, version: i64) -> Option<Assessed> {
        let mut cache = self.inner.as_ref()?.lock().ok()?;
        match cache.pop(&component) {
            Some((v, assessed)) if v == version => Some(assessed),
            _ => None,
        }
    }

    /// Keep what a committed transaction left for each component, at the version it left.
    pub fn put(&self, entries: impl IntoIterator<Item = (i64, i64, Assessed)>) {
        let Some(inner) = &self.inner else {
            return;
        };
        if let Ok(mut cache) = inner.lock() {
            for (component, version, assessed) in entries {
                cache.put(component, (version, assessed));
            }
        }
    }

    /// Components held.
    pub fn len(&self) -> usize {
        self.inner
            .as_ref()
            .and_then(|c| c.lock().ok().map(|c| c.len()))
            .unwrap_or(0)
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
