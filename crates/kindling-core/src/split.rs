//! Stratified splitting.

use rand::seq::SliceRandom;

/// Splits sample indices into (train, valid) so every class keeps its share: each class's
/// indices are shuffled with `seed` and `round(fraction * count)` of them go to valid. Both
/// outputs are sorted, so the order of samples within a split does not depend on the seed.
pub fn stratified_split(labels: &[u32], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let classes = labels.iter().map(|&y| y as usize + 1).max().unwrap_or(0);
    let mut by_class = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y as usize].push(i);
    }
    let mut rng = crate::seed::rng_from_seed(seed, "split");
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for mut idx in by_class {
        idx.shuffle(&mut rng);
        let n_valid = (fraction * idx.len() as f64).round() as usize;
        valid.extend_from_slice(&idx[..n_valid]);
        train.extend_from_slice(&idx[n_valid..]);
    }
    train.sort_unstable();
    valid.sort_unstable();
    (train, valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_keep_their_share_and_nothing_is_lost() {
        let labels: Vec<u32> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let (train, valid) = stratified_split(&labels, 0.25, 7);
        assert_eq!(valid.iter().filter(|&&i| labels[i] == 0).count(), 20);
        assert_eq!(valid.iter().filter(|&&i| labels[i] == 1).count(), 5);
        let mut all: Vec<usize> = train.iter().chain(&valid).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(stratified_split(&labels, 0.25, 7), (train, valid.clone()));
        assert_ne!(stratified_split(&labels, 0.25, 8).1, valid);
    }
}
