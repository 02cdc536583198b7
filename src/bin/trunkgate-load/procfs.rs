//! The gateway process as /proc shows it: CPU time, RSS, open fds, bound UDP sockets.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_kb: u64,
    pub fds: usize,
    pub udp_sockets: usize,
    /// Established TCP connections; after a drain these are the HTTP client's idle keep-alive
    /// connections (webhook, callbacks), which it closes after 30 s idle.
    pub tcp_established: usize,
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that ends the command name: state is field 3; utime 14, stime 15.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn sample(pid: u32) -> Option<Sample> {
    let cpu_ticks = cpu_ticks(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let mut inodes = std::collections::HashSet::new();
    let mut fds = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        fds += 1;
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut udp_sockets = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for line in text.lines().skip(1) {
                if let Some(inode) = line.split_whitespace().nth(9) {
                    if inodes.contains(inode) {
                        udp_sockets += 1;
                    }
                }
            }
        }
    }
    let mut tcp_established = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // st 01 = ESTABLISHED; inode is field 9.
                if f.get(3) == Some(&"01") && f.get(9).is_some_and(|i| inodes.contains(*i)) {
                    tcp_established += 1;
                }
            }
        }
    }
    Some(Sample {
        cpu_ticks,
        rss_kb,
        fds,
        udp_sockets,
        tcp_established,
    })
}

/// The pid of a process named `trunkgate` (the first found).
pub fn find_gateway() -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            if comm.trim() == "trunkgate" {
                return Some(pid);
            }
        }
    }
    None
}

/// Waits (bounded, 10 s) until the gateway's fds (not counting idle HTTP keep-alive
/// connections) and UDP sockets are back to `before`, then samples. Teardown is asynchronous and has no event we can see from outside, hence polling.
pub async fn settle(pid: u32, before: Option<&Sample>) -> Option<Sample> {
    for _ in 0..100 {
        let s = sample(pid)?;
        match before {
            Some(b)
                if s.fds.saturating_sub(s.tcp_established)
                    <= b.fds.saturating_sub(b.tcp_established)
                    && s.udp_sockets <= b.udp_sockets =>
            {
                return Some(s)
            }
            None => return Some(s),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    sample(pid)
}
