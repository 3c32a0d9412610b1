//! [`ByOrder`]: what a room keeps under a duplicate key (a refund reference, a transaction id),
//! each used on one order, and forgets when that order is seeded again or deleted.

use std::collections::HashMap;

/// Values under their keys, indexed by the order each was used on, so that forgetting an order
/// costs what that order holds, not what every order holds: a test that seeds thousands of
/// orders (a benchmark, a soak) would otherwise scan every key on each seed.
#[derive(Debug)]
pub(crate) struct ByOrder<V> {
    values: HashMap<String, Kept<V>>,
    /// Each order's keys in `values`.
    keys: HashMap<String, Vec<String>>,
}

/// A value and the order its key was used on.
#[derive(Debug)]
struct Kept<V> {
    order_id: String,
    value: V,
}

impl<V> Default for ByOrder<V> {
    fn default() -> Self {
        ByOrder {
            values: HashMap::new(),
            keys: HashMap::new(),
        }
    }
}

impl<V> ByOrder<V> {
    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.values.get(key).map(|kept| &kept.value)
    }

    /// The order `key` was used on.
    pub(crate) fn order_of(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|kept| kept.order_id.as_str())
    }

    /// Keeps `value` under `key`, used on `order_id`, in place of what `key` held.
    pub(crate) fn insert(&mut self, key: String, order_id: &str, value: V) {
        let kept = Kept {
            order_id: order_id.to_owned(),
            value,
        };
        if let Some(earlier) = self.values.insert(key.clone(), kept) {
            self.unlist(&earlier.order_id, &key);
        }
        self.keys.entry(order_id.to_owned()).or_default().push(key);
    }

    /// Forgets every key used on `order_id`.
    pub(crate) fn forget_order(&mut self, order_id: &str) {
        for key in self.keys.remove(order_id).unwrap_or_default() {
            self.values.remove(&key);
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.values.clear();
        self.keys.clear();
    }

    /// Takes `key` off `order_id`'s list.
    fn unlist(&mut self, order_id: &str, key: &str) {
        if let Some(keys) = self.keys.get_mut(order_id) {
            keys.retain(|listed| listed != key);
            if keys.is_empty() {
                self.keys.remove(order_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_an_order_forgets_its_keys_only() {
        let mut kept = ByOrder::default();
        kept.insert("R-1".to_owned(), "O-1", 1);
        kept.insert("R-2".to_owned(), "O-1", 2);
        kept.insert("R-3".to_owned(), "O-2", 3);
        kept.forget_order("O-1");
        assert_eq!(kept.get("R-1"), None);
        assert_eq!(kept.get("R-2"), None);
        assert_eq!(kept.get("R-3"), Some(&3));
        assert_eq!(kept.order_of("R-3"), Some("O-2"));
    }

    #[test]
    fn a_key_used_again_on_another_order_belongs_to_that_order() {
        let mut kept = ByOrder::default();
        kept.insert("R-1".to_owned(), "O-1", 1);
        kept.insert("R-1".to_owned(), "O-2", 2);
        kept.forget_order("O-1");
        assert_eq!(kept.get("R-1"), Some(&2));
        assert_eq!(kept.order_of("R-1"), Some("O-2"));
        kept.forget_order("O-2");
        assert_eq!(kept.get("R-1"), None);
        assert!(kept.keys.is_empty(), "no order lists a forgotten key");
    }

    #[test]
    fn clear_forgets_everything() {
        let mut kept = ByOrder::default();
        kept.insert("R-1".to_owned(), "O-1", ());
        kept.clear();
        assert_eq!(kept.order_of("R-1"), None);
        assert!(kept.keys.is_empty());
    }
}
