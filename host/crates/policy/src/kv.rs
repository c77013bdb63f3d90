//! A small key-value store for plugins, in the host: values with an optional TTL, keys already
//! namespaced by tenant and plugin (`<namespace>\x1f<plugin id>\x1f<key>`). Bounded: keys ≤ 256
//! bytes, values ≤ 64 KiB, and a budget per namespace (a tenant, or `global`) of
//! [`MAX_ENTRIES_PER_NAMESPACE`] entries and [`MAX_BYTES_PER_NAMESPACE`] bytes (keys and values),
//! within [`MAX_ENTRIES`] for the whole store. Over a budget, expired entries of that namespace
//! are swept (at most once a second) and then new values are refused: `kv-set` is then a no-op,
//! as the WIT allows, and never traps. So one tenant's plugins can fill only their own share.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_KEY: usize = 256;
pub const MAX_VALUE: usize = 64 << 10;
/// Entries in the whole store, every namespace together.
const MAX_ENTRIES: usize = 100_000;
/// Entries one namespace may hold.
pub const MAX_ENTRIES_PER_NAMESPACE: usize = 10_000;
/// Bytes (keys plus values) one namespace may hold.
pub const MAX_BYTES_PER_NAMESPACE: usize = 16 << 20;
/// How often a full namespace may be swept for expired entries (a sweep is O(entries)).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

type Entry = (String, Option<Instant>);

/// One namespace's entries and what they cost.
#[derive(Default)]
struct Namespace {
    map: HashMap<String, Entry>,
    bytes: usize,
    last_sweep: Option<Instant>,
    /// A refusal was logged since the last accepted value (one warning per filling-up).
    warned: bool,
}

impl Namespace {
    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some((v, _)) => {
                self.bytes = self.bytes.saturating_sub(key.len() + v.len());
                true
            }
            None => false,
        }
    }

    fn sweep(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        let mut freed = 0;
        self.map.retain(|k, (v, exp)| {
            let keep = exp.is_none_or(|e| e > now);
            if !keep {
                freed += k.len() + v.len();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        self.last_sweep = Some(now);
        before - self.map.len()
    }
}

#[derive(Default)]
struct Inner {
    namespaces: HashMap<String, Namespace>,
    entries: usize,
}

#[derive(Default)]
pub struct KvStore {
    inner: Mutex<Inner>,
}

/// The namespace of a full key: everything before the first `\x1f` (tenant ids cannot hold it).
fn namespace_of(key: &str) -> &str {
    key.split('\u{1f}').next().unwrap_or(key)
}

impl KvStore {
    pub fn get(&self, key: &str) -> Option<String> {
        let mut inner = self.inner.lock().ok()?;
        let ns = inner.namespaces.get_mut(namespace_of(key))?;
        match ns.map.get(key) {
            Some((_, Some(exp))) if *exp <= Instant::now() => {
                ns.remove(key);
                inner.entries = inner.entries.saturating_sub(1);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    /// Stores `value`; false if it was refused (too large, namespace or store full).
    pub fn set(&self, key: String, value: String, ttl: Option<Duration>) -> bool {
        if key.len() > MAX_KEY + 512 || value.len() > MAX_VALUE {
            return false;
        }
        let Ok(mut guard) = self.inner.lock() else { return false };
        let inner = &mut *guard;
        let name = namespace_of(&key);
        if !inner.namespaces.contains_key(name) {
            inner.namespaces.insert(name.to_string(), Namespace::default());
        }
        let Some(ns) = inner.namespaces.get_mut(name) else { return false };
        let new = key.len() + value.len();
        let mut old = ns.map.get(&key).map_or(0, |(v, _)| key.len() + v.len());
        let fits = |ns: &Namespace, entries: usize, old: usize| {
            let grows = !ns.map.contains_key(&key);
            ns.bytes.saturating_sub(old) + new <= MAX_BYTES_PER_NAMESPACE
                && (!grows || (ns.map.len() < MAX_ENTRIES_PER_NAMESPACE && entries < MAX_ENTRIES))
        };
        if !fits(ns, inner.entries, old) {
            let now = Instant::now();
            if ns.last_sweep.is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY) {
                inner.entries = inner.entries.saturating_sub(ns.sweep(now));
                // The sweep may have taken this very key.
                old = ns.map.get(&key).map_or(0, |(v, _)| key.len() + v.len());
            }
            if !fits(ns, inner.entries, old) {
                if !ns.warned {
                    ns.warned = true;
                    tracing::warn!(
                        namespace = %name,
                        entries = ns.map.len(),
                        bytes = ns.bytes,
                        "plugin kv namespace is full: kv-set refused until entries expire or are deleted"
                    );
                }
                return false;
            }
        }
        if ns.map.insert(key, (value, ttl.map(|t| Instant::now() + t))).is_none() {
            inner.entries += 1;
        }
        ns.bytes = ns.bytes.saturating_sub(old) + new;
        ns.warned = false;
        true
    }

    pub fn delete(&self, key: &str) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(ns) = inner.namespaces.get_mut(namespace_of(key))
            && ns.remove(key)
        {
            inner.entries = inner.entries.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_and_sizes_are_bounded() {
        let kv = KvStore::default();
        assert!(kv.set("a".into(), "1".into(), Some(Duration::from_millis(30))));
        assert_eq!(kv.get("a").as_deref(), Some("1"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(kv.get("a"), None);
        assert!(!kv.set("b".into(), "x".repeat(MAX_VALUE + 1), None));
        assert!(kv.set("c".into(), "2".into(), None));
        kv.delete("c");
        assert_eq!(kv.get("c"), None);
    }

    fn key(ns: &str, i: usize) -> String {
        format!("{ns}\u{1f}plugin\u{1f}k{i}")
    }

    #[test]
    fn one_namespace_cannot_fill_the_store_for_the_others() {
        let kv = KvStore::default();
        // Entries: the greedy tenant gets its share, no more.
        for i in 0..MAX_ENTRIES_PER_NAMESPACE {
            assert!(kv.set(key("greedy", i), "v".into(), None), "entry {i}");
        }
        assert!(!kv.set(key("greedy", MAX_ENTRIES_PER_NAMESPACE), "v".into(), None));
        // Replacing an existing key is not growth.
        assert!(kv.set(key("greedy", 0), "w".into(), None));
        assert_eq!(kv.get(&key("greedy", 0)).as_deref(), Some("w"));
        // Another tenant is unaffected.
        assert!(kv.set(key("other", 0), "v".into(), None));
        assert_eq!(kv.get(&key("other", 0)).as_deref(), Some("v"));
        // Deleting frees room in the namespace.
        kv.delete(&key("greedy", 1));
        assert!(kv.set(key("greedy", MAX_ENTRIES_PER_NAMESPACE), "v".into(), None));

        // Bytes: 64 KiB values fill a namespace's byte budget long before its entry budget.
        let big = "x".repeat(MAX_VALUE);
        let fit = MAX_BYTES_PER_NAMESPACE / (MAX_VALUE + key("bytes", 0).len() + 8);
        for i in 0..fit {
            assert!(kv.set(key("bytes", i), big.clone(), None), "value {i}");
        }
        let mut refused = false;
        for i in fit..fit + 4 {
            refused |= !kv.set(key("bytes", i), big.clone(), None);
        }
        assert!(refused, "the byte budget must refuse more values");
        assert!(kv.set(key("other", 1), big, None));
    }

    #[test]
    fn expired_entries_make_room_when_a_namespace_is_full() {
        let kv = KvStore::default();
        for i in 0..MAX_ENTRIES_PER_NAMESPACE {
            assert!(kv.set(key("t", i), "v".into(), Some(Duration::from_millis(20))));
        }
        std::thread::sleep(Duration::from_millis(30));
        assert!(kv.set(key("t", MAX_ENTRIES_PER_NAMESPACE), "v".into(), None));
    }
}
