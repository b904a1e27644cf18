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
}
