//! Work spread over the cores, for the few places a run has thousands of independent items:
//! files to examine (thousands of system calls, which wait on the kernel, not on each other),
//! a run record's results to decode, and the input lists of the results a change undid.

/// `f` of every item, in order, spread over the cores.
pub fn on_every_core<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    /// Fewer items are not worth a thread.
    const LEAST: usize = 256;
    let threads = threads(items.len(), LEAST);
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let size = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let chunk: Vec<T> = items.by_ref().take(size).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let f = &f;
    let jobs =
        (chunks.into_iter()).map(|chunk| move || chunk.into_iter().map(f).collect::<Vec<U>>());
    joined(jobs).into_iter().flatten().collect()
}

/// `f` of each of as many slices of `items` as there are cores, in order, each slice at least
/// `least` items long (a single slice, on this thread, when there are fewer): for work whose
/// result per slice merges cheaply, such as the distinct values among millions.
pub fn over_slices<'a, T: Sync, U: Send>(
    items: &'a [T],
    least: usize,
    f: impl Fn(&'a [T]) -> U + Sync,
) -> Vec<U> {
    let threads = threads(items.len(), least);
    if threads == 1 {
        return vec![f(items)];
    }
    let f = &f;
    joined((items.chunks(items.len().div_ceil(threads))).map(|slice| move || f(slice)))
}

/// How many threads `len` items of at least `least` each take: one per core at most.
fn threads(len: usize, least: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(len / least.max(1)).max(1)
}

/// Each job on a thread of its own, their results in order; a job's panic goes on here.
fn joined<U: Send, J: FnOnce() -> U + Send>(jobs: impl Iterator<Item = J>) -> Vec<U> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs.map(|job| scope.spawn(job)).collect();
        (handles.into_iter())
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_spread_over_the_cores_comes_back_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let doubled = on_every_core(items, |n| n * 2);
        assert_eq!(doubled, (0..1000).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(on_every_core(vec![3], |n: i32| n + 1), [4]);
        assert!(on_every_core(Vec::<u8>::new(), |n| n).is_empty());
    }

    #[test]
    fn slices_cover_every_item_once_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let sums = over_slices(&items, 100, |slice| slice.to_vec());
        assert_eq!(sums.concat(), items);
        assert_eq!(
            over_slices(&items, 2000, <[usize]>::len),
            [1000],
            "too few for a thread"
        );
        assert_eq!(over_slices(&[] as &[u8], 10, <[u8]>::len), [0]);
    }
}
