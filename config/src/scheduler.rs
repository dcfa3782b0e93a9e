//! `scheduler:`: the worker pool that runs Lua processes.

use serde::{Deserialize, Serialize};

use crate::{ByteSize, Duration};

/// The `scheduler:` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a mapping of scheduler settings")]
pub struct SchedulerConfig {
    /// Worker threads that run Lua processes; 0 means one per CPU core
    /// ([`SchedulerConfig::effective_workers`]). At most [`SchedulerConfig::MAX_WORKERS`].
    pub workers: usize,
    /// Memory cap for each worker's Lua state. At least 1 MiB.
    pub memory_limit: ByteSize,
    /// How long one process may run before the worker preempts it and lets the next
    /// one in. Between 100µs and 10s.
    pub time_slice: Duration,
    /// On shutdown, services first get a CANCEL event; any still running after this
    /// long are terminated.
    pub shutdown_timeout: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            workers: 0,
            memory_limit: ByteSize::gib(1),
            time_slice: Duration::from_millis(5),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl SchedulerConfig {
    /// Largest accepted `workers`.
    pub const MAX_WORKERS: usize = 1024;

    /// The number of workers to start: `workers`, or the number of CPU cores the
    /// process may use when `workers` is 0 (1 if that cannot be determined).
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_workers_means_one_per_core() {
        let auto = SchedulerConfig::default();
        assert!(auto.effective_workers() >= 1);
        let fixed = SchedulerConfig { workers: 3, ..SchedulerConfig::default() };
        assert_eq!(fixed.effective_workers(), 3);
    }
}
