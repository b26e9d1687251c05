//! A set of actor ids. Actors are dense indexes into a scan's actor list, so a set is a bitmap
//! when that is small enough (a bit per actor: 5,000 companies take 625 bytes, 100,000 persons
//! 12.5 KB) and a hash set otherwise — inserting into a bitmap is a shift and an or, where a hash
//! set hashes, probes and grows. Trends keep one set per bucket and line.

use rustc_hash::FxHashSet as HashSet;

/// Bitmaps up to this many bytes in all (per question) before hash sets are used instead.
const DENSE_BUDGET_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub enum ActorSet {
    Dense { words: Vec<u64>, len: usize },
    Sparse(HashSet<u32>),
}

impl ActorSet {
    /// A set of ids below `actors`, one of `sets` such sets the question keeps at once.
    pub fn new(actors: usize, sets: usize) -> Self {
        if Self::dense_fits(actors, sets) {
            ActorSet::Dense { words: vec![0; actors.div_ceil(64)], len: 0 }
        } else {
            ActorSet::Sparse(HashSet::default())
        }
    }

    /// Whether [`Self::new`] makes bitmaps for these sizes.
    pub fn dense_fits(actors: usize, sets: usize) -> bool {
        actors.div_ceil(64).saturating_mul(8).saturating_mul(sets) <= DENSE_BUDGET_BYTES
    }

    /// A set from its bitmap (bit `id % 64` of word `id / 64`).
    pub fn from_words(words: Vec<u64>) -> Self {
        let len = words.iter().map(|w| w.count_ones() as usize).sum();
        ActorSet::Dense { words, len }
    }

    pub fn insert(&mut self, id: u32) {
        match self {
            ActorSet::Dense { words, len } => {
                let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
                match words.get_mut(word) {
                    Some(w) if *w & bit == 0 => {
                        *w |= bit;
                        *len += 1;
                    }
                    Some(_) => {}
                    // An id beyond the declared count: keep it correct, if slower.
                    None => {
                        let mut set: HashSet<u32> = Self::ids_of(words).collect();
                        set.insert(id);
                        *self = ActorSet::Sparse(set);
                    }
                }
            }
            ActorSet::Sparse(set) => {
                set.insert(id);
            }
        }
    }

    /// Every id of `other` into this set.
    pub fn union(&mut self, other: ActorSet) {
        match (&mut *self, other) {
            (ActorSet::Dense { words, len }, ActorSet::Dense { words: theirs, .. }) if words.len() == theirs.len() => {
                for (w, t) in words.iter_mut().zip(theirs) {
                    *w |= t;
                }
                *len = words.iter().map(|w| w.count_ones() as usize).sum();
            }
            (_, ActorSet::Dense { words, .. }) => Self::ids_of(&words).for_each(|id| self.insert(id)),
            (_, ActorSet::Sparse(ids)) => ids.into_iter().for_each(|id| self.insert(id)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ActorSet::Dense { len, .. } => *len,
            ActorSet::Sparse(set) => set.len(),
        }
    }

    fn ids_of(words: &[u64]) -> impl Iterator<Item = u32> + '_ {
        words
            .iter()
            .enumerate()
            .flat_map(|(w, &bits)| (0..64).filter(move |b| bits & (1u64 << b) != 0).map(move |b| (w * 64 + b) as u32))
    }
}

/// Buckets (periods) by index, a bit each: an actor's active or returning periods, filled once
/// per event — bits beat hashing a few dozen small numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketSet(Vec<u64>);

impl BucketSet {
    pub fn insert(&mut self, bucket: usize) {
        let word = bucket / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (bucket % 64);
    }

    /// Every bucket of `other` into this set.
    pub fn union(&mut self, other: &BucketSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        self.0.iter_mut().zip(&other.0).for_each(|(w, o)| *w |= o);
    }

    pub fn contains(&self, bucket: usize) -> bool {
        self.0.get(bucket / 64).is_some_and(|w| w & (1 << (bucket % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse_sets_count_the_same() {
        let ids = [3u32, 64, 3, 0, 127, 64, 1000];
        let mut dense = ActorSet::new(128, 1);
        let mut sparse = ActorSet::new(128, usize::MAX);
        assert!(matches!(dense, ActorSet::Dense { .. }));
        assert!(matches!(sparse, ActorSet::Sparse(_)));
        for id in ids {
            dense.insert(id);
            sparse.insert(id);
        }
        // 1000 is beyond the 128 declared: the dense set turned sparse and still counts it.
        assert_eq!(dense.len(), 5);
        assert_eq!(sparse.len(), 5);
        assert!(matches!(dense, ActorSet::Sparse(_)));
    }

    #[test]
    fn a_union_holds_each_id_of_both_sets_once() {
        let sets = |ids: &[u32], sets: usize| {
            let mut set = ActorSet::new(128, sets);
            ids.iter().for_each(|&id| set.insert(id));
            set
        };
        for (a_sets, b_sets) in [(1, 1), (1, usize::MAX), (usize::MAX, 1), (usize::MAX, usize::MAX)] {
            let mut a = sets(&[1, 2, 64], a_sets);
            a.union(sets(&[2, 3, 127, 500], b_sets));
            assert_eq!(a.len(), 6, "{a_sets} {b_sets}");
        }
    }

    #[test]
    fn bucket_sets_hold_each_bucket_once() {
        let mut set = BucketSet::default();
        for b in [3, 64, 3, 130, 0] {
            set.insert(b);
        }
        assert_eq!((0..200).filter(|&b| set.contains(b)).count(), 4);
        assert!(set.contains(130) && set.contains(0) && !set.contains(1) && !set.contains(500));
    }
}
