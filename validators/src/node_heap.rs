//! Node's heap limit for pyright: what a type check of a large tree needs.
//!
//! Node caps its heap near 4 GiB by default, whatever the machine has. Pyright keeps every
//! module it loads, and on some ten thousand modules (four copies of Django side by side,
//! `docs/benchmarks.md`) it runs near that cap: it empties its type cache again and again,
//! which slows it, and past the cap it dies. So pyright gets half the memory this process may
//! use (the machine's, or less where a cgroup on the way up sets `memory.max`), when that is
//! more than node's default and `NODE_OPTIONS` sets no limit of its own. The limit is a
//! ceiling, not a reservation: a small project uses what it used before. The limit in effect
//! also sizes the runs a large project is checked in (`pyright_batches.rs`).

/// Node's default limit on 64-bit machines, in MiB: a "raise" below it would lower it.
const NODE_DEFAULT_MIB: u64 = 4096;

/// The heap pyright runs with: what to put in `NODE_OPTIONS`, and the limit in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heap {
    /// `NODE_OPTIONS` for pyright, or `None` to leave the environment as it is.
    pub options: Option<String>,
    /// Node's heap limit for pyright, in MiB: the one set here, the user's own, or node's
    /// default.
    pub limit_mib: u64,
}

/// The heap pyright gets in this process's environment.
pub fn heap() -> Heap {
    let current = std::env::var("NODE_OPTIONS").unwrap_or_default();
    with_heap(&current, available_bytes())
}

/// `current` options with a heap limit of half of `available` bytes, if that is worth setting.
fn with_heap(current: &str, available: Option<u64>) -> Heap {
    const FLAG: &str = "--max-old-space-size";
    if current.contains(FLAG) {
        // The user's own limit; node takes the last one given, as `=N` or as the next word.
        let words: Vec<&str> = current.split_whitespace().collect();
        let limit_mib = words
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, w)| match w.strip_prefix(FLAG)? {
                "" => words.get(i + 1)?.parse().ok(),
                value => value.strip_prefix('=')?.parse().ok(),
            })
            .unwrap_or(NODE_DEFAULT_MIB);
        return Heap {
            options: None,
            limit_mib,
        };
    }
    match available.map(|a| a / 2 / (1 << 20)) {
        Some(mib) if mib > NODE_DEFAULT_MIB => Heap {
            options: Some(format!("{current} {FLAG}={mib}").trim_start().to_owned()),
            limit_mib: mib,
        },
        _ => Heap {
            options: None,
            limit_mib: NODE_DEFAULT_MIB,
        },
    }
}

/// The memory this process may use, in bytes.
fn available_bytes() -> Option<u64> {
    let total = mem_total(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
    Some(cgroup_limit().map_or(total, |limit| limit.min(total)))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The lowest `memory.max` of this process's cgroup (v2) and its ancestors, if any sets one.
fn cgroup_limit() -> Option<u64> {
    let (mut dir, mount) = protocol::sdk::cgroup_dir()?;
    let mut lowest: Option<u64> = None;
    loop {
        let max = std::fs::read_to_string(dir.join("memory.max")).ok();
        if let Some(limit) = max.as_deref().and_then(|m| m.trim().parse::<u64>().ok()) {
            lowest = Some(lowest.map_or(limit, |l| l.min(limit)));
        }
        if dir == mount || !dir.pop() {
            return lowest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn half_the_memory_is_given_when_it_is_more_than_nodes_default() {
        let given = |current, available| with_heap(current, Some(available));
        assert_eq!(
            given("", 24 * GIB),
            Heap {
                options: Some("--max-old-space-size=12288".to_owned()),
                limit_mib: 12288
            }
        );
        assert_eq!(
            given("--enable-source-maps", 24 * GIB).options.as_deref(),
            Some("--enable-source-maps --max-old-space-size=12288")
        );
        // 8 GiB: half is node's default, which is left alone; so is an unknown machine.
        let default = Heap {
            options: None,
            limit_mib: NODE_DEFAULT_MIB,
        };
        assert_eq!(given("", 8 * GIB), default);
        assert_eq!(with_heap("", None), default);
    }

    #[test]
    fn a_limit_the_user_set_is_kept_and_known() {
        let limit = |current| with_heap(current, Some(64 * GIB));
        assert_eq!(
            limit("--max-old-space-size=2048"),
            Heap {
                options: None,
                limit_mib: 2048
            }
        );
        assert_eq!(limit("--max-old-space-size 3000").limit_mib, 3000);
        assert_eq!(
            limit("--max-old-space-size=1000 --max-old-space-size=5000").limit_mib,
            5000
        );
        assert_eq!(
            limit("--max-old-space-size=lots").limit_mib,
            NODE_DEFAULT_MIB
        );
    }

    #[test]
    fn the_machines_memory_is_read_from_meminfo() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        // This machine's own figures are readable, and no cgroup limit exceeds them.
        let available = available_bytes().expect("/proc/meminfo is readable");
        assert!(available > 0);
    }
}
