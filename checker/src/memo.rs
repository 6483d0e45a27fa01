//! The memo of explored configurations (linearized set, model state).
//!
//! A configuration that was fully explored without success needs no second
//! look, whatever path led to it. Keys are compact and exact:
//!
//! - The search numbers operations in order of their return. Let `r` be the
//!   unlinearized operation that returns first: every operation before it is
//!   linearized. So the set's bitset is all ones up to some word `lo`, and
//!   only the words from `lo` to the last non-zero word differ between
//!   configurations — a short window, bounded by the concurrency around `r`.
//!   An entry stores `lo` and that window; this representation is unique
//!   per set, so comparing it compares the sets.
//! - The table is indexed by the 64-bit Zobrist hash of the set mixed with
//!   the state number, which the search maintains incrementally (one XOR per
//!   step). A hash match is always confirmed by comparing the entry, so a
//!   collision can never prune an unexplored configuration.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Keys are already uniformly mixed 64-bit hashes; hashing them again is waste.
#[derive(Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One explored configuration. A window of one word (the common case) is
/// stored inline, so a lookup usually touches a single hash-table slot.
#[derive(Clone, Copy)]
struct Entry {
    state: u32,
    lo: u32,
    len: u32,
    /// Next entry with the same key in `overflow`, or `END`.
    next: u32,
    /// The window itself when `len == 1`, else its offset in `words`.
    data: u64,
}

const END: u32 = u32::MAX;

/// Set of explored configurations.
pub(crate) struct Memo {
    table: HashMap<u64, Entry, BuildHasherDefault<PassThroughHasher>>,
    /// Entries whose 64-bit key collided with an earlier, different one.
    overflow: Vec<Entry>,
    words: Vec<u64>,
}

/// The memo would need more than 2^32 overflow entries.
#[derive(Debug)]
pub(crate) struct MemoFull;

impl Memo {
    pub(crate) fn new() -> Self {
        Memo {
            table: HashMap::default(),
            overflow: Vec::new(),
            words: Vec::new(),
        }
    }

    fn matches(&self, e: &Entry, state: u32, lo: u32, window: &[u64]) -> bool {
        e.state == state
            && e.lo == lo
            && e.len as usize == window.len()
            && match window.len() {
                0 => true,
                1 => e.data == window[0],
                n => self.words[e.data as usize..e.data as usize + n] == *window,
            }
    }

    fn entry(&mut self, state: u32, lo: u32, window: &[u64], next: u32) -> Entry {
        let data = match window.len() {
            0 => 0,
            1 => window[0],
            _ => {
                let offset = self.words.len() as u64;
                self.words.extend_from_slice(window);
                offset
            }
        };
        Entry {
            state,
            lo,
            len: window.len() as u32,
            next,
            data,
        }
    }

    /// Records a configuration; `Ok(true)` if it was new.
    ///
    /// `window` is the bitset from word `lo` (the first word that is not all
    /// ones) to the last non-zero word.
    pub(crate) fn insert(
        &mut self,
        key: u64,
        state: u32,
        lo: u32,
        window: &[u64],
    ) -> Result<bool, MemoFull> {
        let (first_next, first_matches) = match self.table.get(&key) {
            None => {
                let e = self.entry(state, lo, window, END);
                self.table.insert(key, e);
                return Ok(true);
            }
            Some(first) => (first.next, self.matches(first, state, lo, window)),
        };
        if first_matches {
            return Ok(false);
        }
        let mut at = first_next;
        while at != END {
            let e = self.overflow[at as usize];
            if self.matches(&e, state, lo, window) {
                return Ok(false);
            }
            at = e.next;
        }
        let id = u32::try_from(self.overflow.len()).map_err(|_| MemoFull)?;
        let e = self.entry(state, lo, window, first_next);
        self.overflow.push(e);
        if let Some(first) = self.table.get_mut(&key) {
            first.next = id;
        }
        Ok(true)
    }

    /// Number of configurations recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len() + self.overflow.len()
    }

    /// Rough heap use, for the memory budget.
    pub(crate) fn approx_bytes(&self) -> usize {
        self.table.capacity() * (8 + std::mem::size_of::<Entry>() + 1)
            + self.overflow.capacity() * std::mem::size_of::<Entry>()
            + self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_hash_with_different_sets_is_not_a_hit() {
        let mut m = Memo::new();
        assert!(m.insert(7, 1, 0, &[0b101]).unwrap());
        assert!(!m.insert(7, 1, 0, &[0b101]).unwrap());
        assert!(
            m.insert(7, 1, 0, &[0b101, 1]).unwrap(),
            "same hash, longer window"
        );
        assert!(!m.insert(7, 1, 0, &[0b101, 1]).unwrap());
        assert!(m.insert(7, 1, 0, &[]).unwrap(), "same hash, empty window");
        assert!(m.insert(7, 1, 0, &[0b111]).unwrap(), "same hash, other set");
        assert!(
            m.insert(7, 2, 0, &[0b101]).unwrap(),
            "same hash, other state"
        );
        assert!(
            m.insert(7, 1, 1, &[0b101]).unwrap(),
            "same hash, other prefix"
        );
        assert!(!m.insert(7, 1, 0, &[0b111]).unwrap());
        assert_eq!(m.len(), 6);
    }
}
