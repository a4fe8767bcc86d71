//! Shared strings for values that repeat across a fleet: instance ids (an
//! instance appears as agent, instance and plugin rows), versions, OS types,
//! states and plugin names. At 100 000 instances this keeps one copy of each
//! instead of hundreds of thousands.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

static POOL: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// The shared copy of `s`.
pub fn intern(s: &str) -> Arc<str> {
    let Ok(mut pool) = POOL.lock() else {
        return Arc::from(s);
    };
    if let Some(hit) = pool.get(s) {
        return Arc::clone(hit);
    }
    let new: Arc<str> = Arc::from(s);
    pool.insert(Arc::clone(&new));
    new
}

/// Drops the strings nothing but the pool holds any more (instances gone,
/// versions upgraded away). Called once per cycle.
pub fn sweep() -> usize {
    let Ok(mut pool) = POOL.lock() else { return 0 };
    pool.retain(|s| Arc::strong_count(s) > 1);
    pool.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_value_and_sweep_frees_unused() {
        let a = intern("2.2.3.398-intern-test");
        let b = intern("2.2.3.398-intern-test");
        assert!(Arc::ptr_eq(&a, &b));
        let before = sweep();
        drop((a, b));
        let after = sweep();
        assert!(after < before || after == 0);
        let c = intern("2.2.3.398-intern-test");
        assert_eq!(&*c, "2.2.3.398-intern-test");
    }
}
