//! Leftover repair.

use std::time::Duration;

/// How leftovers are repaired (`repair` in the config).
#[derive(Debug, Clone)]
pub struct RepairPolicy {
    /// How often a repair pass runs (one replica at a time).
    pub interval: Duration,
    /// How old a leftover must be before it is repaired: longer than any write in flight takes.
    pub grace: chrono::Duration,
}

impl Default for RepairPolicy {
    fn default() -> Self {
        RepairPolicy {
            interval: registry_config::defaults::REPAIR_INTERVAL,
            grace: chrono::Duration::from_std(registry_config::defaults::REPAIR_GRACE).expect("a small duration"),
        }
    }
}
