//! A process's memory of recent answers, by key: the last few are kept, the
//! oldest is forgotten first, and a key already held keeps its first answer.
//! The archive listings (`pg::tools`) and the predictions (`engine::predict`)
//! each keep one, behind a `Mutex` in a `static`.

use std::collections::VecDeque;

/// The last `kept` answers, oldest first.
pub(crate) struct Recent<K, V> {
    kept: usize,
    entries: VecDeque<(K, V)>,
}

impl<K: PartialEq, V: Clone> Recent<K, V> {
    /// Empty; holds at most `kept` answers.
    pub(crate) const fn new(kept: usize) -> Self {
        Recent {
            kept,
            entries: VecDeque::new(),
        }
    }

    /// The answer held under `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    }

    /// Holds `value` under `key` unless the key is held already; the oldest
    /// answer goes once `kept` are held.
    pub(crate) fn put(&mut self, key: K, value: &V) {
        if self.entries.iter().any(|(k, _)| *k == key) {
            return;
        }
        if self.entries.len() == self.kept {
            self.entries.pop_front();
        }
        self.entries.push_back((key, value.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_answer_goes_first_and_a_held_key_keeps_its_answer() {
        let mut recent = Recent::new(2);
        recent.put("a", &1);
        recent.put("a", &9);
        assert_eq!(recent.get(&"a"), Some(1), "the first answer stays");
        recent.put("b", &2);
        recent.put("c", &3);
        assert_eq!(recent.get(&"a"), None, "the oldest went");
        assert_eq!((recent.get(&"b"), recent.get(&"c")), (Some(2), Some(3)));
    }
}
