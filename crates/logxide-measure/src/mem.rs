//! Resident memory of this process, from `/proc/self/status` (Linux; `None` elsewhere).

use std::fs;

fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Current resident set size (`VmRSS`), in KiB.
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS")
}

/// Peak resident set size (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM")
}

/// Resets the peak (`VmHWM`) to the current RSS, so a later peak measures only what
/// follows (writes `5` to `/proc/self/clear_refs`; best effort).
pub fn reset_peak() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// CPU time, in nanoseconds, used so far by this process's thread named `name` (the first
/// one found), from `/proc/self/task/*/schedstat`.
pub fn thread_cpu_ns(name: &str) -> Option<u64> {
    for task in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim_end() == name {
            let stat = fs::read_to_string(task.path().join("schedstat")).ok()?;
            return stat.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// CPU time this process has used so far, all its threads (those that exited too): user
/// and kernel (system) time, in nanoseconds (microsecond resolution), from `getrusage`.
pub fn process_cpu_ns() -> Option<(u64, u64)> {
    // SAFETY: `getrusage` fills the `rusage` it is given a valid pointer to; an all-zero
    // `rusage` is a valid value of that plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    Some((ns(usage.ru_utime), ns(usage.ru_stime)))
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_rss() {
        let rss = super::rss_kib().unwrap();
        super::reset_peak();
        let peak = super::peak_rss_kib().unwrap();
        assert!(rss > 0 && peak > 0);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let (u0, s0) = super::process_cpu_ns().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (u1, s1) = super::process_cpu_ns().unwrap();
        assert!(u1 + s1 >= u0 + s0 + 10_000_000, "{u0} {s0} {u1} {s1}");
    }
}
