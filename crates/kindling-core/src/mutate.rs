//! Damaged copies of valid files, for the corruption tests every reader of untrusted bytes
//! has (WAV, IDX, CIFAR, images, pipelines, the trial store, checkpoints).
//!
//! [`mutations`] turns one valid input into a reproducible stream of broken ones: truncations,
//! flipped bits, bytes set to boundary values, 16/32/64-bit fields set to huge or negative
//! numbers (what makes a length field lie), deleted, duplicated and swapped spans. Readers
//! are then checked to return an error or a value, never to panic, abort, hang or allocate
//! without bound.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// `count` damaged copies of `valid`, the same for the same `seed`. The first few are the
/// empty input and truncations at every small length; the rest are random mutations, one to
/// four each.
pub fn mutations(valid: &[u8], count: usize, seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rng = StdRng::seed_from_u64(seed);
    let small = valid.len().min(64).min(count);
    (0..count).map(move |i| {
        if i < small {
            return valid[..i].to_vec();
        }
        let mut out = valid.to_vec();
        for _ in 0..rng.random_range(1..=4) {
            mutate(&mut out, &mut rng);
        }
        out
    })
}

fn mutate(out: &mut Vec<u8>, rng: &mut StdRng) {
    if out.is_empty() {
        out.push(rng.random());
        return;
    }
    let len = out.len();
    let at = rng.random_range(0..len);
    match rng.random_range(0..8) {
        0 => out.truncate(at),
        1 => out[at] ^= 1 << rng.random_range(0..8),
        2 => out[at] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff][rng.random_range(0..6)],
        3 => {
            // A little- or big-endian 32-bit field set to a boundary value.
            let value: u32 = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x0100_0000][rng.random_range(0..6)];
            let bytes = if rng.random() { value.to_le_bytes() } else { value.to_be_bytes() };
            for (k, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = out.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
        4 => {
            let value: u64 = [u64::MAX, 1 << 40, 1 << 62, 0][rng.random_range(0..4)];
            for (k, b) in value.to_le_bytes().into_iter().enumerate() {
                if let Some(slot) = out.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
        5 => {
            let end = (at + rng.random_range(1..=64)).min(len);
            out.drain(at..end);
        }
        6 => {
            let end = (at + rng.random_range(1..=64)).min(len);
            let span: Vec<u8> = out[at..end].to_vec();
            let to = rng.random_range(0..=out.len());
            out.splice(to..to, span);
        }
        _ => {
            let b = rng.random_range(0..len);
            out.swap(at, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_reproducible_and_start_with_truncations() {
        let valid = b"RIFF\x24\x00\x00\x00WAVEfmt some more bytes of a file".to_vec();
        let a: Vec<Vec<u8>> = mutations(&valid, 200, 7).collect();
        let b: Vec<Vec<u8>> = mutations(&valid, 200, 7).collect();
        assert_eq!(a, b);
        assert_eq!(a[0], b"");
        assert_eq!(a[5], &valid[..5]);
        let changed = a[valid.len()..].iter().filter(|m| **m != valid).count();
        assert!(changed > 150, "most random mutations change the input: {changed}");
        assert_ne!(a, mutations(&valid, 200, 8).collect::<Vec<_>>());
    }
}
