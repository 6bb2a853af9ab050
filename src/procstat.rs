//! Process figures for the closing summary, the benchmarks and `/metrics`: peak resident memory
//! and CPU time, read from Linux's `/proc/self` (absent elsewhere: `None`); and the one change
//! the process makes to itself, the open-file limit raised at start ([`raise_fd_limit`]).

use std::time::Duration;

/// The soft open-file limit aimed for: every client connection and every segment being sent
/// holds a descriptor. Linux's default ceiling (`fs.nr_open`).
const FD_LIMIT_WANTED: u64 = 1 << 20;

/// Below this many open files a server of a few hundred clients runs out.
const FD_LIMIT_LOW: u64 = 4096;

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) toward the hard limit (at most
/// [`FD_LIMIT_WANTED`]) when it is below, and logs what it did: `info` when raised, a warning
/// when the limit stays low (the hard limit is), `debug` otherwise. Returns the soft limit now.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let was = getrlimit(Resource::Nofile);
    let soft = was.current?;
    let hard = was.maximum.unwrap_or(u64::MAX);
    let wanted = hard.min(FD_LIMIT_WANTED);
    let now = if soft < wanted {
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: was.maximum,
            },
        ) {
            Ok(()) => {
                tracing::info!(from = soft, to = wanted, hard, "raised the open-file limit");
                wanted
            }
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit");
                soft
            }
        }
    } else {
        tracing::debug!(soft, hard, "open-file limit");
        soft
    };
    if now < FD_LIMIT_LOW {
        tracing::warn!(
            limit = now,
            hard,
            "the open-file limit is low: each client connection holds a file descriptor \
             (raise the hard limit: ulimit -Hn, or LimitNOFILE= in a systemd unit)"
        );
    }
    Some(now)
}

/// Peak resident set size (`VmHWM`) in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resident set size now (`VmRSS`) in bytes.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Open file descriptors of this process (the entries of `/proc/self/fd`, less the one the
/// listing itself holds).
pub fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some((entries.count() as u64).saturating_sub(1))
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`), as `/proc/self/limits` says.
pub fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User + system CPU time of this process (all threads).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space.
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_figures_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::peak_rss_bytes().unwrap() > 1024 * 1024);
            assert!(super::cpu_time().is_some());
            assert!(super::rss_bytes().unwrap() > 1024 * 1024);
            // Other tests open and close files meanwhile: only stdin, stdout, stderr are sure.
            let fds = super::open_fds().unwrap();
            assert!(fds >= 3, "{fds}");
            assert!(super::max_fds().unwrap() >= 3);
        }
    }

    #[test]
    fn the_fd_limit_ends_at_least_where_it_was_and_proc_agrees() {
        if cfg!(target_os = "linux") {
            let before = super::max_fds().unwrap();
            let now = super::raise_fd_limit().unwrap();
            assert!(now >= before, "{now} < {before}");
            assert_eq!(super::max_fds(), Some(now));
            // Raised already: the second call leaves it.
            assert_eq!(super::raise_fd_limit(), Some(now));
        }
    }
}
