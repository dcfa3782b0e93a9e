//! The header every run prints: what machine the figures come from, so a
//! figure is never read without its context (the anchors print the same).

use std::process::Command;

/// One `# machine: ...` line: CPUs, CPU model, RAM, kernel, UTC time.
pub(crate) fn describe() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("# machine: {cpus} cpu ({model}), {ram_gib:.1} GiB RAM, kernel {}, {}", kernel.trim(), utc_now())
}

/// The current UTC time; `date` is on every machine this runs on, and
/// pulling in a date crate for one line is not worth it.
fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// CPU counters at one instant, to tell afterwards whether something else
/// was running during a benchmark (other builds on a shared 2-vCPU machine
/// move these figures far more than any code change).
pub(crate) struct CpuMark {
    /// Machine-wide jiffies: (total, idle, steal).
    machine: (u64, u64, u64),
    /// This process's user+system jiffies, plus those of its finished
    /// children (the `idle` benchmark runs in child processes).
    own: u64,
}

impl CpuMark {
    /// Takes the counters now.
    pub(crate) fn now() -> CpuMark {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<u64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        let get = |i: usize| f.get(i).copied().unwrap_or(0);
        let machine = (f.iter().sum(), get(3) + get(4), get(7));
        // Fields 14-17 of /proc/self/stat (utime, stime, cutime, cstime);
        // `rest` starts at field 3, after the command name, which may
        // contain spaces.
        let me = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = me.rsplit_once(") ").map_or("", |(_, r)| r);
        let v: Vec<&str> = rest.split_whitespace().collect();
        let own = (11..15).map(|i| v.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)).sum();
        CpuMark { machine, own }
    }

    /// `# cpu: ...` since this mark: the machine's busy share, the share this
    /// benchmark used, and what was left for everything else.
    pub(crate) fn report(&self) -> String {
        let now = CpuMark::now();
        let total = now.machine.0.saturating_sub(self.machine.0).max(1) as f64;
        let idle = now.machine.1.saturating_sub(self.machine.1) as f64;
        let steal = now.machine.2.saturating_sub(self.machine.2) as f64;
        let own = now.own.saturating_sub(self.own) as f64;
        let busy = 100.0 * (total - idle) / total;
        let mine = 100.0 * own / total;
        format!(
            "# cpu (all cpus = 100%): {busy:.0}% busy, this benchmark {mine:.0}%, others {:.0}%, steal {:.1}%",
            (busy - mine).max(0.0),
            100.0 * steal / total
        )
    }
}
