//! Events counted on every core: a question's events are cut into a few contiguous ranges, each
//! counted on rayon's pool into its own partial result, and the partials merged in range order —
//! so anything order-sensitive (a list of values, a sum of floats) comes out as one thread would
//! have made it.

use std::ops::Range;

use rayon::prelude::*;

/// Events per range at least: fewer are not worth a thread's start and a merge.
const MIN_EVENTS_PER_RANGE: usize = 1 << 16;

/// `0..len` in at most one range per thread (each range's partial result may hold a set per
/// bucket, so more ranges would cost memory, not speed), none shorter than
/// [`MIN_EVENTS_PER_RANGE`] unless it is the only one. No events: one empty range, so a count
/// of nothing is still a (zero) count.
pub fn ranges(len: usize) -> Vec<Range<usize>> {
    if len == 0 {
        return std::iter::once(0..0).collect();
    }
    let size = len.div_ceil(most_ranges(len)).max(1);
    (0..len).step_by(size).map(|start| start..(start + size).min(len)).collect()
}

/// How many ranges [`ranges`]`(len)` makes at most: what a range's partial result is budgeted
/// against (the memory of one partial times this is what a question holds at once).
pub fn most_ranges(len: usize) -> usize {
    rayon::current_num_threads().min(len / MIN_EVENTS_PER_RANGE).max(1)
}

/// `count` on each of [`ranges`]`(len)` in parallel, the partials merged in range order.
pub fn count_ranges<T: Send>(
    len: usize,
    count: impl Fn(Range<usize>) -> T + Sync,
    merge: impl Fn(T, T) -> T,
) -> Option<T> {
    let partials: Vec<T> = ranges(len).into_par_iter().map(&count).collect();
    partials.into_iter().reduce(merge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_event_once_in_order() {
        for len in [0, 1, 5, MIN_EVENTS_PER_RANGE, 3 * MIN_EVENTS_PER_RANGE + 7, 10_000_000] {
            let r = ranges(len);
            assert_eq!(r.first().map_or(0, |r| r.start), 0);
            assert_eq!(r.last().map_or(0, |r| r.end), len);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start), "{r:?}");
            assert!(r.len() <= most_ranges(len) && most_ranges(len) <= rayon::current_num_threads().max(1));
        }
        assert_eq!(ranges(0), std::iter::once(0..0).collect::<Vec<_>>());
        let merged = count_ranges(
            200_000,
            |r| r.collect::<Vec<_>>(),
            |mut a, b| {
                a.extend(b);
                a
            },
        );
        assert_eq!(merged, Some((0..200_000).collect::<Vec<_>>()));
    }
}
