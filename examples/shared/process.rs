//! What `/proc` says of a process (`"self"` or a pid): its open file
//! descriptors and the fields of its status, for the checks that watch a
//! process for leaks (the soak, the unplug cycles).

/// The file descriptors process `pid` has open.
pub fn open_fds(pid: &str) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The numbers of the `fields` of process `pid`'s status (`VmRSS:` in
/// KiB, `Threads:`), in their order, all read at one moment.
pub fn status<const N: usize>(pid: &str, fields: [&str; N]) -> Option<[u64; N]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut values = [0; N];
    for (value, name) in values.iter_mut().zip(fields) {
        *value = field(name)?;
    }
    Some(values)
}
