//! Where the CPU went during a measured window (Linux `/proc`): the whole machine's busy and
//! idle time and this load generator's own, so that a report can say how much of the machine
//! the servers used per request and whether the machine was the limit (no idle left) or the
//! clients' round trips were (idle left over).

/// Clock ticks per second in `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 by
/// the kernel's user-space ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// Cumulative CPU seconds at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Every CPU's time not idle: user, nice, system, irq, softirq, steal.
    busy: f64,
    /// Every CPU's idle and I/O-wait time.
    idle: f64,
    /// This process's user and system time.
    own: f64,
}

/// Now's counters; `None` where `/proc` cannot be read (not Linux).
pub fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))?
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| cpu.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let idle = at(3) + at(4);
    let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name (which may hold spaces): state is the 3rd
    // field of the whole line, utime the 14th and stime the 15th.
    let after = own_stat.rsplit_once(')')?.1;
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let own = fields.get(11)? + fields.get(12)?;
    Some(Sample {
        busy: busy / TICKS_PER_SEC,
        idle: idle / TICKS_PER_SEC,
        own: own / TICKS_PER_SEC,
    })
}

/// The CPU use of a window of `requests` answered requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Busy CPU time of the whole machine per request, in microseconds.
    pub machine_us: f64,
    /// Of that, this load generator's.
    pub bench_us: f64,
    /// The machine's idle share of the window, in percent.
    pub idle_pct: f64,
}

impl Usage {
    /// Between two samples; `None` without requests or time.
    pub fn between(from: Sample, to: Sample, requests: u64) -> Option<Usage> {
        let total = (to.busy - from.busy) + (to.idle - from.idle);
        if requests == 0 || total <= 0.0 {
            return None;
        }
        let per = 1e6 / requests as f64;
        Some(Usage {
            machine_us: (to.busy - from.busy) * per,
            bench_us: (to.own - from.own) * per,
            idle_pct: 100.0 * (to.idle - from.idle) / total,
        })
    }

    /// Busy CPU per request of everything but the load generator (the servers, and the
    /// kernel's work for them).
    pub fn servers_us(&self) -> f64 {
        (self.machine_us - self.bench_us).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_splits_the_window_per_request() {
        let a = Sample {
            busy: 10.0,
            idle: 5.0,
            own: 1.0,
        };
        let b = Sample {
            busy: 13.0,
            idle: 6.0,
            own: 1.5,
        };
        let u = Usage::between(a, b, 30_000).expect("usage");
        assert!((u.machine_us - 100.0).abs() < 1e-9);
        assert!((u.bench_us - 1e6 * 0.5 / 30_000.0).abs() < 1e-9);
        assert!((u.idle_pct - 25.0).abs() < 1e-9);
        assert!((u.servers_us() - (100.0 - 1e6 * 0.5 / 30_000.0)).abs() < 1e-9);
        assert_eq!(Usage::between(a, b, 0), None);
    }

    #[test]
    fn this_machine_can_be_sampled() {
        let s = sample().expect("/proc is readable on Linux");
        assert!(s.busy > 0.0 && s.idle >= 0.0 && s.own >= 0.0);
    }
}
