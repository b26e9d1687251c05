//! The hashes of every client event id a project ever stored (DESIGN.md §10: a client id is a
//! duplicate forever), kept compact: a project imported from another tool has one per event.
//!
//! Most are loaded at start and never change, so they live in one sorted array (8 bytes each)
//! found through an index of its top bits; ids stored since go to a small hash set that is
//! merged into the array as it grows. At 10M ids: ~90 MB, where a hash set took ~150 MB plus
//! the list it was built from while loading.

use foldhash::HashSet;

/// Ids per index bucket, on average: a lookup reads about this many neighbours.
const IDS_PER_BUCKET: usize = 8;
/// The hash set is merged into the array once it holds this many, or a quarter of the array:
/// a bulk import into an empty project merges a dozen times, not at every few thousand ids.
const MIN_MERGE: usize = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct ClientIds {
    /// Ascending, no repeats.
    sorted: Vec<u64>,
    /// Bucket `b` (the ids whose top bits are `b`) is `sorted[starts[b]..starts[b + 1]]`.
    starts: Vec<u32>,
    /// `id >> shift` is the id's bucket.
    shift: u32,
    recent: HashSet<u64>,
}

impl ClientIds {
    /// Add ids stored before (loading a project). A first load keeps `ids`' own allocation.
    pub fn load(&mut self, mut ids: Vec<u64>) {
        if self.sorted.is_empty() {
            std::mem::swap(&mut self.sorted, &mut ids);
        } else {
            self.sorted.append(&mut ids);
        }
        self.sorted.sort_unstable();
        self.merge();
    }

    pub fn contains(&self, id: u64) -> bool {
        self.in_sorted(id) || self.recent.contains(&id)
    }

    /// Remember `id`. Callers insert ids they just found absent, so the array is not searched
    /// again; an id inserted twice is kept once all the same.
    pub fn insert(&mut self, id: u64) {
        self.recent.insert(id);
        if self.recent.len() >= MIN_MERGE.max(self.sorted.len() / 4) {
            self.merge();
        }
    }

    /// Ids held; one inserted again counts twice until the next merge.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn in_sorted(&self, id: u64) -> bool {
        let bucket = self.bucket(id);
        let (Some(&start), Some(&end)) = (self.starts.get(bucket), self.starts.get(bucket + 1)) else {
            return false;
        };
        self.sorted[start as usize..end as usize].binary_search(&id).is_ok()
    }

    fn bucket(&self, id: u64) -> usize {
        // A shift of 64 (no buckets yet) would overflow: everything is bucket 0 then.
        id.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// Move the recent ids into the array (merging from the back, in place) and index it again.
    fn merge(&mut self) {
        let mut recent: Vec<u64> = self.recent.drain().collect();
        recent.sort_unstable();
        let old = self.sorted.len();
        self.sorted.resize(old + recent.len(), 0);
        let (mut read, mut write) = (old, self.sorted.len());
        while let Some(&last) = recent.last() {
            write -= 1;
            if read > 0 && self.sorted[read - 1] > last {
                read -= 1;
                self.sorted[write] = self.sorted[read];
            } else {
                self.sorted[write] = last;
                recent.pop();
            }
        }
        // Ids loaded after they were inserted meet their copy here.
        self.sorted.dedup();
        self.index();
    }

    fn index(&mut self) {
        let buckets = (self.sorted.len() / IDS_PER_BUCKET).max(1).next_power_of_two();
        self.shift = 64 - buckets.trailing_zeros();
        self.starts.clear();
        self.starts.reserve_exact(buckets + 1);
        let mut at = 0;
        for bucket in 0..buckets {
            self.starts.push(at as u32);
            while at < self.sorted.len() && self.bucket(self.sorted[at]) == bucket {
                at += 1;
            }
        }
        self.starts.push(at as u32);
        self.sorted.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, spread over the whole range like real id hashes.
    fn ids(seed: u64, n: usize) -> Vec<u64> {
        (0..n as u64).map(|i| xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), seed)).collect()
    }

    #[test]
    fn loaded_and_inserted_ids_are_found_and_others_are_not() {
        let mut set = ClientIds::default();
        assert!(!set.contains(42) && set.is_empty());
        let loaded = ids(1, 100_000);
        set.load(loaded.iter().chain(&loaded[..10]).copied().collect());
        assert_eq!(set.len(), 100_000, "repeats are kept once");
        // Enough inserts to merge several times, some of them ids already present.
        let inserted = ids(2, 3 * MIN_MERGE);
        for &id in inserted.iter().chain(&loaded[..1000]) {
            set.insert(id);
        }
        set.merge();
        assert_eq!(set.len(), 100_000 + 3 * MIN_MERGE);
        assert!(loaded.iter().chain(&inserted).all(|&id| set.contains(id)));
        assert!(ids(3, 10_000).iter().all(|&id| !set.contains(id)));
        assert!(set.sorted.windows(2).all(|w| w[0] < w[1]), "the array stays sorted");
    }

    #[test]
    fn the_extremes_of_the_range_are_found() {
        let mut set = ClientIds::default();
        set.insert(0);
        set.insert(u64::MAX);
        set.load(vec![1, u64::MAX - 1, 0]);
        assert!([0, 1, u64::MAX - 1, u64::MAX].iter().all(|&id| set.contains(id)));
        assert!(!set.contains(2));
    }
}
