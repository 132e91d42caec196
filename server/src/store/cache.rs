//! The byte-bounded cache of picture bytes in front of a database store (and of variants, in
//! front of the store and their making).
//!
//! quick_cache rather than moka: a hit is a shard's read lock, a hash lookup and one atomic
//! bit, where moka also records every read for its frequency sketch; on the tiny picture that
//! difference was the gap between the database store and the in-memory folder store (see
//! BENCHMARKS.md). quick_cache also never admits an entry heavier than its share of the bound,
//! so the cache holds at most `--cache-size` bytes of pictures.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::MAX_PICTURE_BYTES;

/// A guess of the typical picture size, from which the cache sizes its tables: too low only
/// costs table memory, too high a few more collisions.
const TYPICAL_PICTURE_BYTES: u64 = 64 * 1024;

/// Values by key (picture bytes by SHA-256 unless said otherwise), holding at most a given
/// number of bytes.
pub struct ByteCache<K = [u8; 32], V = Bytes>(Arc<Cache<K, V, ByLength>>);

impl<K, V> Clone for ByteCache<K, V> {
    fn clone(&self) -> Self {
        ByteCache(self.0.clone())
    }
}

/// What a cached value weighs: the bytes it holds.
pub trait Weighed {
    fn bytes(&self) -> usize;
}

impl Weighed for Bytes {
    fn bytes(&self) -> usize {
        self.len()
    }
}

#[derive(Clone)]
pub struct ByLength;

impl<K, V: Weighed> Weighter<K, V> for ByLength {
    fn weight(&self, _: &K, value: &V) -> u64 {
        // Never zero: quick_cache never evicts an entry that weighs nothing.
        (value.bytes() as u64).max(1)
    }
}

impl<K: Eq + Hash + Clone, V: Weighed + Clone> ByteCache<K, V> {
    /// A cache of at most `capacity` bytes; 0 caches nothing.
    pub fn new(capacity: u64) -> ByteCache<K, V> {
        // The bound is split between shards and an entry must fit in one shard, so there are
        // no more shards than the largest picture fits into; more shards than cores times
        // four gain nothing.
        let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let shards = (capacity / MAX_PICTURE_BYTES as u64).clamp(1, cores as u64 * 4);
        let items = (capacity / TYPICAL_PICTURE_BYTES).clamp(32, 1 << 20);
        let options = quick_cache::OptionsBuilder::new()
            .shards(shards as usize)
            .estimated_items_capacity(items as usize)
            .weight_capacity(capacity)
            .build();
        let cache = match options {
            Ok(options) => {
                Cache::with_options(options, ByLength, Default::default(), Default::default())
            }
            // Only a missing setting is an error, and both are set above.
            Err(_) => Cache::with_weighter(items as usize, capacity, ByLength),
        };
        ByteCache(Arc::new(cache))
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }

    pub fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }

    /// Bytes held.
    pub fn weight(&self) -> u64 {
        self.0.weight()
    }

    pub fn remove(&self, key: &K) {
        self.0.remove(key);
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.0.clear();
    }

    /// The value for `key`, read with `read` on a miss; concurrent misses for one key wait
    /// for the first one's read instead of reading again.
    pub async fn get_or_read<E>(
        &self,
        key: &K,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        self.0.get_or_insert_async(key, read).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|runtime| runtime.block_on(future))
            .unwrap_or_else(|e| panic!("no runtime: {e}"))
    }

    #[test]
    fn holds_no_more_than_its_capacity() {
        let cache: ByteCache = ByteCache::new(1024 * 1024);
        for n in 0..64u8 {
            cache.insert([n; 32], Bytes::from(vec![n; 64 * 1024]));
        }
        assert!(cache.weight() <= 1024 * 1024, "{}", cache.weight());
        // An entry larger than the whole bound is never admitted.
        cache.insert([255; 32], Bytes::from(vec![0; 2 * 1024 * 1024]));
        assert!(cache.get(&[255; 32]).is_none());
    }

    #[test]
    fn a_zero_capacity_caches_nothing() {
        let cache: ByteCache = ByteCache::new(0);
        cache.insert([1; 32], Bytes::from_static(b"x"));
        assert!(cache.get(&[1; 32]).is_none());
        let read =
            block_on(cache.get_or_read(&[2; 32], async { Ok::<_, ()>(Bytes::from_static(b"y")) }));
        assert_eq!(read, Ok(Bytes::from_static(b"y")));
    }

    #[test]
    fn a_miss_is_read_once_then_served_from_memory() {
        let cache: ByteCache = ByteCache::new(1024);
        let first =
            block_on(cache.get_or_read(&[3; 32], async { Ok::<_, ()>(Bytes::from_static(b"z")) }));
        let second = block_on(cache.get_or_read(&[3; 32], async { Err(()) }));
        assert_eq!(
            (first, second),
            (Ok(Bytes::from_static(b"z")), Ok(Bytes::from_static(b"z")))
        );
    }
}
