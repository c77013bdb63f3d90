//! The engine-wide pool of idle plugin instances: one budget (a count and a byte total) shared
//! by every loaded plugin of every tenant, least recently used evicted first.
//!
//! Why one shared pool rather than a fixed pool per plugin: a SaaS gateway has thousands of
//! tenants, most idle at any moment. Per-plugin pools made memory grow with the number of
//! tenants whether they sent traffic or not, and the engine's instance slots ran out below
//! 500 tenants. Here a tenant holds nothing until it sends traffic; a tenant under load keeps
//! warm instances because it keeps returning them (they are the most recently used); one that
//! goes quiet loses them to the budget or to the idle timeout.
//!
//! Items are kept per owner (one loaded plugin version), so an instance never serves another
//! plugin, config or tenant. Each owner's items are a stack (newest reused first: its memory is
//! warm), and since every insertion gets a larger sequence number than any before, the oldest
//! item of the whole pool is always the bottom of its owner's stack: eviction is a lookup of
//! the smallest sequence number, O(log n).
//!
//! Evicted items are dropped after the lock is released (dropping a `Store` unmaps memory).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much may sit idle, engine-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleBudget {
    /// Idle instances kept in all.
    pub max_instances: usize,
    /// Linear memory of the idle instances together, bytes.
    pub max_bytes: usize,
    /// Idle instances of one plugin version (a burst of one plugin does not flush the others).
    pub max_per_plugin: usize,
    /// An instance unused for this long is given back.
    pub idle_timeout: Duration,
}

impl Default for IdleBudget {
    fn default() -> Self {
        IdleBudget {
            max_instances: 512,
            max_bytes: 256 << 20,
            max_per_plugin: 16,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why an idle item left the pool without being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Over the count or byte budget.
    Budget,
    /// Unused for longer than the idle timeout.
    Idle,
    /// The engine's instance slots were full and a request needed one.
    Capacity,
}

/// What the pool holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdleStats {
    pub instances: usize,
    pub bytes: usize,
    pub owners: usize,
}

struct Entry<T> {
    seq: u64,
    since: Instant,
    bytes: usize,
    item: T,
}

struct State<T> {
    by_owner: HashMap<u64, VecDeque<Entry<T>>>,
    /// seq → owner, for every item in the pool.
    lru: BTreeMap<u64, u64>,
    next_seq: u64,
    bytes: usize,
}

/// The shared idle pool. `T` is the pooled item (a configured instance).
pub struct IdlePool<T> {
    budget: IdleBudget,
    state: Mutex<State<T>>,
    next_owner: AtomicU64,
}

impl<T> IdlePool<T> {
    pub fn new(budget: IdleBudget) -> Self {
        IdlePool {
            budget,
            state: Mutex::new(State { by_owner: HashMap::new(), lru: BTreeMap::new(), next_seq: 0, bytes: 0 }),
            next_owner: AtomicU64::new(1),
        }
    }

    pub fn budget(&self) -> IdleBudget {
        self.budget
    }

    /// A fresh owner id (one per loaded plugin version).
    pub fn new_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// The most recently returned idle item of `owner`.
    pub fn take(&self, owner: u64) -> Option<T> {
        let mut st = self.state.lock().ok()?;
        let stack = st.by_owner.get_mut(&owner)?;
        let e = stack.pop_back()?;
        if stack.is_empty() {
            st.by_owner.remove(&owner);
        }
        st.lru.remove(&e.seq);
        st.bytes -= e.bytes;
        Some(e.item)
    }

    /// Returns `item` (of `bytes` linear memory) to the pool, then evicts what is over the
    /// budget or past the idle timeout, oldest first. Returns what left the pool (maybe `item`
    /// itself, when it alone is over the budget or its owner has its share) so the caller
    /// drops it outside the lock, and counts it.
    pub fn put(&self, owner: u64, item: T, bytes: usize, now: Instant) -> Vec<(Eviction, T)> {
        let Ok(mut st) = self.state.lock() else { return vec![(Eviction::Budget, item)] };
        if bytes > self.budget.max_bytes || self.budget.max_instances == 0 {
            return vec![(Eviction::Budget, item)];
        }
        let held = st.by_owner.get(&owner).map_or(0, VecDeque::len);
        if held >= self.budget.max_per_plugin {
            return vec![(Eviction::Budget, item)];
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.lru.insert(seq, owner);
        st.bytes += bytes;
        st.by_owner.entry(owner).or_default().push_back(Entry { seq, since: now, bytes, item });
        let mut out = Vec::new();
        while st.lru.len() > self.budget.max_instances || st.bytes > self.budget.max_bytes {
            match pop_oldest(&mut st) {
                Some(e) => out.push((Eviction::Budget, e.item)),
                None => break,
            }
        }
        expire(&mut st, now, self.budget.idle_timeout, &mut out);
        out
    }

    /// Evicts the least recently used idle item of any owner (a request needs its slot).
    pub fn evict_oldest(&self) -> Option<T> {
        let mut st = self.state.lock().ok()?;
        pop_oldest(&mut st).map(|e| e.item)
    }

    /// Evicts every item idle for longer than the timeout.
    pub fn expire(&self, now: Instant) -> Vec<(Eviction, T)> {
        let mut out = Vec::new();
        if let Ok(mut st) = self.state.lock() {
            expire(&mut st, now, self.budget.idle_timeout, &mut out);
        }
        out
    }

    /// Removes every idle item of `owner` (its plugin version was unloaded).
    pub fn remove_owner(&self, owner: u64) -> Vec<T> {
        let Ok(mut st) = self.state.lock() else { return Vec::new() };
        let Some(stack) = st.by_owner.remove(&owner) else { return Vec::new() };
        stack
            .into_iter()
            .map(|e| {
                st.lru.remove(&e.seq);
                st.bytes -= e.bytes;
                e.item
            })
            .collect()
    }

    /// Applies `f` to every idle item of `owner` (for reports; holds the lock).
    pub fn inspect<R>(&self, owner: u64, f: impl Fn(&T) -> R) -> Vec<R> {
        self.state
            .lock()
            .map(|st| st.by_owner.get(&owner).map_or_else(Vec::new, |s| s.iter().map(|e| f(&e.item)).collect()))
            .unwrap_or_default()
    }

    pub fn stats(&self) -> IdleStats {
        self.state
            .lock()
            .map(|st| IdleStats { instances: st.lru.len(), bytes: st.bytes, owners: st.by_owner.len() })
            .unwrap_or_default()
    }
}

fn pop_oldest<T>(st: &mut State<T>) -> Option<Entry<T>> {
    let (_, owner) = st.lru.pop_first()?;
    let stack = st.by_owner.get_mut(&owner)?;
    let e = stack.pop_front()?;
    if stack.is_empty() {
        st.by_owner.remove(&owner);
    }
    st.bytes -= e.bytes;
    Some(e)
}

fn expire<T>(st: &mut State<T>, now: Instant, timeout: Duration, out: &mut Vec<(Eviction, T)>) {
    loop {
        let Some((&seq, &owner)) = st.lru.first_key_value() else { return };
        let old = st
            .by_owner
            .get(&owner)
            .and_then(|s| s.front())
            .is_some_and(|e| e.seq == seq && now.saturating_duration_since(e.since) >= timeout);
        if !old {
            return;
        }
        match pop_oldest(st) {
            Some(e) => out.push((Eviction::Idle, e.item)),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pool(max_instances: usize, max_bytes: usize, per: usize) -> IdlePool<&'static str> {
        IdlePool::new(IdleBudget {
            max_instances,
            max_bytes,
            max_per_plugin: per,
            idle_timeout: Duration::from_secs(60),
        })
    }

    #[test]
    fn items_come_back_to_their_owner_only_newest_first() {
        let p = pool(10, 1000, 10);
        let (a, b) = (p.new_owner(), p.new_owner());
        let now = Instant::now();
        assert!(p.put(a, "a1", 1, now).is_empty());
        assert!(p.put(a, "a2", 1, now).is_empty());
        assert!(p.put(b, "b1", 1, now).is_empty());
        assert_eq!(p.take(b), Some("b1"));
        assert_eq!(p.take(b), None, "never another owner's item");
        assert_eq!(p.take(a), Some("a2"));
        assert_eq!(p.take(a), Some("a1"));
        assert_eq!(p.stats(), IdleStats::default());
    }

    #[test]
    fn the_count_budget_evicts_the_least_recently_used_of_any_owner() {
        let p = pool(2, 1000, 10);
        let (a, b, c) = (p.new_owner(), p.new_owner(), p.new_owner());
        let now = Instant::now();
        p.put(a, "a", 1, now);
        p.put(b, "b", 1, now);
        let out = p.put(c, "c", 1, now);
        assert_eq!(out, vec![(Eviction::Budget, "a")]);
        // b used again: now c is the oldest.
        let b_item = p.take(b).unwrap();
        p.put(b, b_item, 1, now);
        assert_eq!(p.put(a, "a", 1, now), vec![(Eviction::Budget, "c")]);
        assert_eq!(p.stats().instances, 2);
    }

    #[test]
    fn the_byte_budget_counts_memory() {
        let p = pool(100, 10, 10);
        let (a, b) = (p.new_owner(), p.new_owner());
        let now = Instant::now();
        p.put(a, "a", 6, now);
        assert_eq!(p.put(b, "b", 6, now), vec![(Eviction::Budget, "a")]);
        assert_eq!(p.stats().bytes, 6);
        assert_eq!(p.put(a, "huge", 11, now), vec![(Eviction::Budget, "huge")], "alone over the budget");
        assert_eq!(p.stats().bytes, 6);
    }

    #[test]
    fn one_owner_keeps_at_most_its_share() {
        let p = pool(100, 1000, 2);
        let a = p.new_owner();
        let now = Instant::now();
        p.put(a, "1", 1, now);
        p.put(a, "2", 1, now);
        assert_eq!(p.put(a, "3", 1, now), vec![(Eviction::Budget, "3")]);
    }

    #[test]
    fn idle_items_expire_oldest_first() {
        let p = pool(100, 1000, 10);
        let (a, b) = (p.new_owner(), p.new_owner());
        let t0 = Instant::now();
        p.put(a, "old", 1, t0);
        p.put(b, "new", 1, t0 + Duration::from_secs(50));
        assert_eq!(p.expire(t0 + Duration::from_secs(61)), vec![(Eviction::Idle, "old")]);
        assert_eq!(p.stats().instances, 1);
        assert_eq!(p.expire(t0 + Duration::from_secs(111)), vec![(Eviction::Idle, "new")]);
    }

    #[test]
    fn removing_an_owner_frees_its_items_and_bytes() {
        let p = pool(100, 1000, 10);
        let (a, b) = (p.new_owner(), p.new_owner());
        let now = Instant::now();
        p.put(a, "a1", 3, now);
        p.put(b, "b1", 4, now);
        p.put(a, "a2", 3, now);
        assert_eq!(p.remove_owner(a), vec!["a1", "a2"]);
        assert_eq!(p.stats(), IdleStats { instances: 1, bytes: 4, owners: 1 });
        assert_eq!(p.evict_oldest(), Some("b1"));
        assert_eq!(p.evict_oldest(), None);
    }
}
