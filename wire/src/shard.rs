//! Key → shard mapping, shared by clients, shard groups and the controller.
//!
//! `shard = fnv1a32(UTF-8 bytes of key) % nshards`. FNV-1a is a few lines in any
//! language, has no seed, and spreads short keys well enough for ten shards;
//! every implementation of the protocol must use exactly this function.

use std::num::NonZeroU32;

/// Number of shards in the default deployment.
pub const NSHARDS: NonZeroU32 = NonZeroU32::new(10).expect("10 is not zero");

const FNV32_OFFSET_BASIS: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// 32-bit FNV-1a hash: for each byte, `h = (h ^ byte) * 16777619 mod 2^32`,
/// starting from 2166136261.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV32_OFFSET_BASIS, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(FNV32_PRIME)
    })
}

/// The shard owning `key` when there are `nshards` shards.
pub fn key_to_shard(key: &str, nshards: NonZeroU32) -> u32 {
    fnv1a32(key.as_bytes()) % nshards.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_the_published_test_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn key_to_shard_vectors_from_the_protocol_doc() {
        // The same table is printed in docs/protocol.md.
        let cases = [
            ("", 0x811c_9dc5, 1),
            ("a", 0xe40c_292c, 0),
            ("x", 0xfd0c_5087, 5),
            ("y", 0xfc0c_4ef4, 6),
            ("key-0", 0x58e0_35d9, 7),
            ("key-1", 0x57e0_3446, 8),
            ("key-2", 0x56e0_32b3, 9),
            ("user:42", 0x2f6b_7b82, 2),
            ("κλειδί", 0xca49_47e7, 7),
        ];
        for (key, hash, shard) in cases {
            assert_eq!(fnv1a32(key.as_bytes()), hash, "key {key:?}");
            assert_eq!(key_to_shard(key, NSHARDS), shard, "key {key:?}");
        }
    }

    #[test]
    fn one_shard_maps_everything_to_shard_zero() {
        let one = NonZeroU32::MIN;
        assert_eq!(key_to_shard("anything", one), 0);
    }
}
