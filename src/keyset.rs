//! A set of 64-bit keys (hashes of URLs, of file names) whose memory stays small however
//! many keys it holds, so a list of ten million URLs costs a few bytes a URL, not the
//! 16 a hash set costs at that size.
//!
//! The newest keys live in a hash set, as in any set. When it holds [`SPILL_AT`] keys
//! they are sorted and written to a run in an unnamed temporary file (gone when the
//! process ends, however it ends), and a Bloom filter in memory (10 bits a key) learns
//! them: a key the filter has never seen (almost every new key) is answered without
//! reading the disk; only the rest (about 1%, and true duplicates) read one 4 KiB block
//! of each run, found through an index of each block's first key. Runs are merged into
//! one when there are more than [`MAX_RUNS`], so a lookup reads a bounded number of
//! blocks.
//!
//! Measured against an embedded store (redb, one B-tree on disk, 16 MiB of cache): 6.8 µs
//! an insert at ten million keys, two a URL on the Coordinator's thread. With this set a
//! run's CPU per URL did not change measurably (docs/PERFORMANCE.md): a new key costs a
//! filter probe, and keys are ordered only when a run is written.
//!
//! A disk that fails is never a wrong answer that loses an image: a run that cannot be
//! written keeps its keys in memory (and spilling stops), and a block that cannot be read
//! answers "absent", so at worst a URL is fetched twice or a name gets a suffix. Pure.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Keys kept in memory before they are written out: 4.5 MiB of table for a set, so a
/// set that never spills (up to this many keys) is as fast as a plain hash set.
pub const SPILL_AT: usize = 1 << 18;

/// Runs before all are merged into one: a key the filter lets through reads at most this
/// many blocks.
pub const MAX_RUNS: usize = 8;

/// Bytes a block holds: one page of the file, one read.
const BLOCK_BYTES: usize = 4096;

/// The filter's bits a key: with [`HASHES`] probes, a false positive in about 1% of
/// lookups.
const BITS_PER_KEY: u64 = 10;
const HASHES: u64 = 7;

/// What a [`KeyMap`] holds for each key, at a fixed size on disk.
pub trait Slot: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn put(self, out: &mut [u8]);
    fn get(bytes: &[u8]) -> Self;
}

/// A set's keys hold nothing.
impl Slot for () {
    const SIZE: usize = 0;
    fn put(self, _: &mut [u8]) {}
    fn get(_: &[u8]) -> Self {}
}

impl Slot for u64 {
    const SIZE: usize = 8;
    fn put(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
    }
}

/// A set of 64-bit keys: see the module doc.
pub type KeySet = KeyMap<()>;

/// 64-bit keys, each with a value of a fixed size; the latest value put for a key wins.
#[derive(Debug)]
pub struct KeyMap<V: Slot> {
    /// Keys since the last spill: where every key lands first.
    recent: HashMap<u64, V>,
    /// When `recent` is written out; `usize::MAX` once spilling has failed, or when
    /// there is nowhere to spill.
    spill_at: usize,
    /// Where runs are written; `None`: memory only (a short set, or tests).
    dir: Option<PathBuf>,
    /// The keys written out so far.
    disk: Disk<V>,
    /// Keys the caller expects in all: the first filter's size, so a list whose length
    /// is known gets one filter, not a chain of growing ones.
    expected: u64,
}

impl<V: Slot> KeyMap<V> {
    /// A map held in memory whatever its size.
    pub fn in_memory() -> Self {
        Self::with_spill(None, 0, SPILL_AT)
    }

    /// A map that writes keys past [`SPILL_AT`] under `dir` (`None`: memory only, all of
    /// it made at once), sized for `expected` keys (0: not known; it grows as it must).
    pub fn spilling(dir: Option<PathBuf>, expected: u64) -> Self {
        Self::with_spill(dir, expected, SPILL_AT)
    }

    /// [`KeyMap::spilling`] with another threshold: tests spill after a handful of keys.
    pub fn with_spill(dir: Option<PathBuf>, expected: u64, spill_at: usize) -> Self {
        let room = match dir {
            Some(_) => usize::try_from(expected).unwrap_or(usize::MAX).min(spill_at),
            None => usize::try_from(expected).unwrap_or(0),
        };
        let spill_at = if dir.is_some() { spill_at } else { usize::MAX };
        Self { recent: HashMap::with_capacity(room), spill_at, dir, disk: Disk::default(), expected }
    }

    /// The value put last for `key`.
    pub fn get(&self, key: u64) -> Option<V> {
        self.recent.get(&key).copied().or_else(|| self.disk.get(key))
    }

    pub fn contains(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    /// Puts `value` for `key`, replacing what was there.
    pub fn put(&mut self, key: u64, value: V) {
        self.recent.insert(key, value);
        if self.recent.len() >= self.spill_at {
            self.spill();
        }
    }

    /// Keys held, in memory and on disk, a key put twice counted once only while both
    /// are in memory.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.recent.len() as u64 + self.disk.runs.iter().map(|r| r.keys).sum::<u64>()
    }

    /// Runs on disk now.
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.disk.runs.len()
    }

    fn spill(&mut self) {
        let Some(dir) = &self.dir else { return };
        let mut entries: Vec<(u64, V)> = self.recent.iter().map(|(k, v)| (*k, *v)).collect();
        entries.sort_unstable_by_key(|(k, _)| *k);
        match Run::write(dir, entries.iter().copied(), entries.len()) {
            Ok(run) => {
                self.disk.learn(entries.iter().map(|(k, _)| *k), self.expected.max(4 * self.spill_at as u64));
                self.disk.runs.push(run);
                // Kept allocated: the next run's keys fill the same table.
                self.recent.clear();
            }
            // Kept in memory: slower to grow, never wrong.
            Err(_) => self.spill_at = usize::MAX,
        }
        if self.disk.runs.len() > MAX_RUNS
            && let Ok(merged) = Run::merge(dir, &self.disk.runs)
        {
            self.disk.runs = vec![merged];
        }
    }
}

impl KeyMap<()> {
    /// Adds `key`; false if it was there already.
    pub fn insert(&mut self, key: u64) -> bool {
        if self.contains(key) {
            return false;
        }
        self.put(key, ());
        true
    }
}

/// The runs written so far and the filters that know their keys.
#[derive(Debug)]
struct Disk<V: Slot> {
    /// Every key written is in one of them; a chain when the map outgrows the first.
    filters: Vec<Bloom>,
    /// Oldest first: a key in two runs has the later one's value.
    runs: Vec<Run<V>>,
}

impl<V: Slot> Default for Disk<V> {
    fn default() -> Self {
        Self { filters: Vec::new(), runs: Vec::new() }
    }
}

impl<V: Slot> Disk<V> {
    fn get(&self, key: u64) -> Option<V> {
        if !self.filters.iter().any(|f| f.maybe(key)) {
            return None;
        }
        self.runs.iter().rev().find_map(|r| r.get(key))
    }

    /// Adds `keys` to the newest filter, starting one twice as big when it is full.
    fn learn(&mut self, keys: impl Iterator<Item = u64>, first_size: u64) {
        for key in keys {
            match self.filters.last_mut() {
                Some(f) if f.len < f.capacity => f.add(key),
                last => {
                    let capacity = last.map_or(first_size, |f| f.capacity * 2);
                    let mut filter = Bloom::new(capacity);
                    filter.add(key);
                    self.filters.push(filter);
                }
            }
        }
    }
}

/// A Bloom filter over keys that are hashes already: the probes are derived from the key
/// (double hashing), not hashed again.
#[derive(Debug)]
struct Bloom {
    bits: Vec<u64>,
    /// Keys it was sized for; past that its false positives grow, so the map starts
    /// another.
    capacity: u64,
    len: u64,
}

impl Bloom {
    fn new(capacity: u64) -> Self {
        let words = capacity.max(64).saturating_mul(BITS_PER_KEY).div_ceil(64);
        Self { bits: vec![0; usize::try_from(words).unwrap_or(usize::MAX)], capacity, len: 0 }
    }

    fn probes(&self, key: u64) -> impl Iterator<Item = (usize, u64)> + use<> {
        let m = self.bits.len() as u64 * 64;
        // The high half stirred into an odd step: two keys sharing a low half still
        // probe apart.
        let step = (key >> 32).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..HASHES).map(move |i| {
            let bit = key.wrapping_add(i.wrapping_mul(step)) % m;
            ((bit / 64) as usize, 1 << (bit % 64))
        })
    }

    fn add(&mut self, key: u64) {
        for (word, mask) in self.probes(key) {
            self.bits[word] |= mask;
        }
        self.len += 1;
    }

    fn maybe(&self, key: u64) -> bool {
        self.probes(key).all(|(word, mask)| self.bits[word] & mask != 0)
    }
}

/// Sorted keys and their values in an unnamed file, with each block's first key in
/// memory.
#[derive(Debug)]
struct Run<V: Slot> {
    file: File,
    keys: u64,
    /// The first key of each block: which one block a key could be in.
    firsts: Vec<u64>,
    _slot: std::marker::PhantomData<V>,
}

impl<V: Slot> Run<V> {
    const ENTRY: usize = 8 + V::SIZE;
    const PER_BLOCK: usize = BLOCK_BYTES / Self::ENTRY;

    /// Writes `entries`, sorted by key and without repeats, `count` of them.
    fn write(dir: &Path, entries: impl Iterator<Item = (u64, V)>, count: usize) -> io::Result<Self> {
        let file = tempfile::tempfile_in(dir)?;
        let mut out = BufWriter::with_capacity(64 * 1024, &file);
        let mut firsts = Vec::with_capacity(count.div_ceil(Self::PER_BLOCK));
        let mut n = 0u64;
        let mut buf = vec![0u8; Self::ENTRY];
        for (key, value) in entries {
            if n.is_multiple_of(Self::PER_BLOCK as u64) {
                firsts.push(key);
            }
            buf[..8].copy_from_slice(&key.to_le_bytes());
            value.put(&mut buf[8..]);
            out.write_all(&buf)?;
            n += 1;
        }
        out.flush()?;
        drop(out);
        Ok(Run { file, keys: n, firsts, _slot: std::marker::PhantomData })
    }

    fn get(&self, key: u64) -> Option<V> {
        let block = self.firsts.partition_point(|&first| first <= key).checked_sub(1)?;
        let start = block * Self::PER_BLOCK;
        let len = (self.keys as usize - start).min(Self::PER_BLOCK);
        let mut bytes = vec![0u8; len * Self::ENTRY];
        // Unreadable: "absent" (see the module doc).
        self.file.read_exact_at(&mut bytes, (start * Self::ENTRY) as u64).ok()?;
        let entries: Vec<&[u8]> = bytes.chunks_exact(Self::ENTRY).collect();
        let at = entries
            .binary_search_by_key(&key, |e| u64::from_le_bytes(e[..8].try_into().expect("8 bytes")))
            .ok()?;
        Some(V::get(&entries[at][8..]))
    }

    /// One run holding every key of `runs` (oldest first) with its latest value, read in
    /// order from each.
    fn merge(dir: &Path, runs: &[Self]) -> io::Result<Self> {
        let mut readers = Vec::with_capacity(runs.len());
        for run in runs {
            let mut file = run.file.try_clone()?;
            file.rewind()?;
            readers.push((BufReader::with_capacity(64 * 1024, file), run.keys));
        }
        let next = |i: usize, readers: &mut Vec<(BufReader<File>, u64)>| -> io::Result<Option<(u64, V)>> {
            let (reader, left) = &mut readers[i];
            if *left == 0 {
                return Ok(None);
            }
            *left -= 1;
            let mut b = vec![0u8; Self::ENTRY];
            reader.read_exact(&mut b)?;
            Ok(Some((u64::from_le_bytes(b[..8].try_into().expect("8 bytes")), V::get(&b[8..]))))
        };
        // Smallest key first; of equal keys, the newest run's first, the rest skipped.
        let mut heap = BinaryHeap::new();
        for i in 0..readers.len() {
            if let Some((key, value)) = next(i, &mut readers)? {
                heap.push((Reverse(key), i, Entry(value)));
            }
        }
        let total: u64 = runs.iter().map(|r| r.keys).sum();
        let mut failed = None;
        let mut last = None;
        let merged = std::iter::from_fn(|| {
            loop {
                let (Reverse(key), i, Entry(value)) = heap.pop()?;
                match next(i, &mut readers) {
                    Ok(Some((k, v))) => heap.push((Reverse(k), i, Entry(v))),
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
                if last != Some(key) {
                    last = Some(key);
                    return Some((key, value));
                }
            }
        });
        let run = Run::write(dir, merged, usize::try_from(total).unwrap_or(0))?;
        match failed {
            Some(e) => Err(e),
            None => Ok(run),
        }
    }
}

/// A value in the merge's heap, which orders by key and run alone.
#[derive(Debug)]
struct Entry<V>(V);

impl<V> PartialEq for Entry<V> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<V> Eq for Entry<V> {}
impl<V> PartialOrd for Entry<V> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<V> Ord for Entry<V> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift: the same keys every run, spread over all 64 bits.
    fn keys(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::from_fn(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Some(x)
        })
    }

    #[test]
    fn a_spilling_set_answers_as_a_hash_set_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeySet::with_spill(Some(dir.path().to_path_buf()), 0, 50);
        let mut model = std::collections::HashSet::new();
        // Repeats: every third key is one seen before.
        let fresh: Vec<u64> = keys(7).take(3000).collect();
        for (i, &key) in fresh.iter().enumerate() {
            let key = if i % 3 == 2 { fresh[i / 2] } else { key };
            assert_eq!(set.insert(key), model.insert(key), "key {i}");
        }
        assert!(set.runs() >= 1 && set.runs() <= MAX_RUNS, "{} runs", set.runs());
        assert_eq!(set.len(), model.len() as u64);
        for &key in &fresh {
            assert_eq!(set.contains(key), model.contains(&key));
        }
        for key in keys(99).take(3000) {
            assert_eq!(set.contains(key), model.contains(&key), "never inserted");
        }
        // Nothing left behind under the folder: the runs' files have no names.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn runs_are_merged_so_a_lookup_reads_few_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeySet::with_spill(Some(dir.path().to_path_buf()), 0, 10);
        let all: Vec<u64> = keys(3).take(10 * (MAX_RUNS + 1)).collect();
        for &key in &all {
            assert!(set.insert(key));
        }
        assert_eq!(set.runs(), 1, "nine runs merged into one");
        assert_eq!(set.len(), all.len() as u64);
        assert!(all.iter().all(|&k| set.contains(k) && !set.insert(k)));
    }

    #[test]
    fn the_latest_value_wins_across_runs_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = KeyMap::<u64>::with_spill(Some(dir.path().to_path_buf()), 0, 10);
        let mut model = HashMap::new();
        let all: Vec<u64> = keys(21).take(50).collect();
        for round in 0..6u64 {
            for (i, &key) in all.iter().enumerate() {
                if !(i as u64 + round).is_multiple_of(3) {
                    map.put(key, round * 1000 + i as u64);
                    model.insert(key, round * 1000 + i as u64);
                }
            }
            for &key in &all {
                assert_eq!(map.get(key), model.get(&key).copied(), "round {round}");
            }
        }
        assert!(map.runs() < MAX_RUNS + 1, "merged on the way: {} runs", map.runs());
        assert_eq!(map.get(12345), None);
    }

    #[test]
    fn keys_at_block_edges_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let n = Run::<()>::PER_BLOCK * 3 + 1;
        let mut set = KeySet::with_spill(Some(dir.path().to_path_buf()), n as u64, n);
        let mut all: Vec<u64> = (0..n as u64).map(|k| k * 2 + 10).collect();
        all.iter().for_each(|&k| assert!(set.insert(k)));
        assert_eq!(set.runs(), 1);
        all.sort_unstable();
        for &k in &all {
            assert!(set.contains(k), "{k}");
            assert!(!set.contains(k + 1), "{}", k + 1);
        }
        assert!(!set.contains(0) && !set.contains(u64::MAX));
    }

    #[test]
    fn a_folder_that_cannot_be_written_keeps_keys_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let mut set = KeySet::with_spill(Some(gone), 0, 10);
        let all: Vec<u64> = keys(5).take(100).collect();
        assert!(all.iter().all(|&k| set.insert(k)));
        assert_eq!(set.runs(), 0);
        assert!(all.iter().all(|&k| set.contains(k)));
        assert_eq!(set.len(), 100);
    }

    #[test]
    fn the_filter_lets_through_about_one_key_in_a_hundred() {
        let mut filter = Bloom::new(10_000);
        keys(11).take(10_000).for_each(|k| filter.add(k));
        assert!(keys(11).take(10_000).all(|k| filter.maybe(k)), "no false negatives");
        let false_positives = keys(12).take(100_000).filter(|&k| filter.maybe(k)).count();
        assert!(false_positives < 2_000, "{false_positives} in 100,000");
    }
}
