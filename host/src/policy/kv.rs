//! A small key-value store for plugins, in the host: values with an optional TTL, keys already
//! namespaced by tenant and plugin. Bounded: keys ≤ 256 bytes, values ≤ 64 KiB, and at most
//! `MAX_ENTRIES` entries (expired ones are swept first; then new keys are refused).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_KEY: usize = 256;
pub const MAX_VALUE: usize = 64 << 10;
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct KvStore {
    map: Mutex<HashMap<String, (String, Option<Instant>)>>,
}

impl KvStore {
    pub fn get(&self, key: &str) -> Option<String> {
        let mut map = self.map.lock().ok()?;
        match map.get(key) {
            Some((_, Some(exp))) if *exp <= Instant::now() => {
                map.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    /// Stores `value`; false if it was refused (too large, store full).
    pub fn set(&self, key: String, value: String, ttl: Option<Duration>) -> bool {
        if key.len() > MAX_KEY + 512 || value.len() > MAX_VALUE {
            return false;
        }
        let Ok(mut map) = self.map.lock() else { return false };
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            let now = Instant::now();
            map.retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
            if map.len() >= MAX_ENTRIES {
                return false;
            }
        }
        map.insert(key, (value, ttl.map(|t| Instant::now() + t)));
        true
    }

    pub fn delete(&self, key: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
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
}
