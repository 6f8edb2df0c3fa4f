//! SpecAugment-style masking of spectrogram features: frequency masks and time masks.
//!
//! Each mask follows torchaudio's `FrequencyMasking(freq_mask_param)` and
//! `TimeMasking(time_mask_param, p=...)`: a width `v = floor(u1 * param)` and a start
//! `floor(u2 * (size - u1 * param))` with `u1, u2` uniform in [0, 1), so the masked range
//! `[start, start + v)` is at most `param - 1` wide and lies inside the axis. As in torchaudio,
//! one mask covers every channel of a `C x F x T` sample unless `iid_masks` draws one per
//! channel. Two deliberate differences: `param` is capped at the axis length (torchaudio would
//! start a too-wide mask before the axis), and several masks per axis are a setting
//! (`freq_masks`, `time_masks`) rather than repeated transforms.
//!
//! Randomness comes from an explicit generator, or from `(seed, epoch, index)` through
//! [`kindling_core::derive_seed`], so a sample's masks do not depend on which worker draws
//! them or in what order.

use kindling_core::Issues;
use rand::{Rng, RngExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Masking settings. The default masks nothing (both params 0).
///
/// ```yaml
/// freq_mask_param: 30   # widest frequency mask, in bins (0: none)
/// time_mask_param: 40   # widest time mask, in frames (0: none)
/// freq_masks: 2         # default 1
/// time_masks: 2         # default 1
/// time_mask_p: 1.0      # a time mask covers at most p * T frames (torchaudio's p)
/// iid_masks: false      # true: each channel gets its own masks
/// mask_value: zero      # zero | mean (the channel's mean before masking)
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SpecAugment {
    /// Widest frequency mask is `freq_mask_param - 1` bins; 0 disables.
    pub freq_mask_param: usize,
    /// Widest time mask is `time_mask_param - 1` frames; 0 disables.
    pub time_mask_param: usize,
    /// Frequency masks per sample.
    pub freq_masks: usize,
    /// Time masks per sample.
    pub time_masks: usize,
    /// Upper bound on a time mask as a share of the frames, in [0, 1].
    #[schemars(range(min = 0, max = 1))]
    pub time_mask_p: f64,
    /// Independent masks per channel instead of one mask for all.
    pub iid_masks: bool,
    /// What masked values become.
    pub mask_value: MaskValue,
}

impl Default for SpecAugment {
    fn default() -> Self {
        Self {
            freq_mask_param: 0,
            time_mask_param: 0,
            freq_masks: 1,
            time_masks: 1,
            time_mask_p: 1.0,
            iid_masks: false,
            mask_value: MaskValue::Zero,
        }
    }
}

/// The value written into masked cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskValue {
    /// 0 (torchaudio's default `mask_value`).
    #[default]
    Zero,
    /// The mean of the channel before masking (torchaudio's `SpecAugment(zero_masking=False)`).
    Mean,
}

/// The axis a mask runs along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Frequency bins.
    Freq,
    /// Frames.
    Time,
}

/// One applied mask: `[start, end)` along `axis` of `channel` (all channels when `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mask {
    /// Along which axis.
    pub axis: Axis,
    /// The channel, or every channel.
    pub channel: Option<usize>,
    /// First masked index.
    pub start: usize,
    /// One past the last masked index (equal to `start` for an empty mask).
    pub end: usize,
}

/// A buffer whose length is not the product of its shape.
#[derive(Debug, thiserror::Error)]
#[error("a buffer of {len} values cannot have shape {shape:?}")]
pub struct ShapeError {
    /// The buffer's length.
    pub len: usize,
    /// The shape given.
    pub shape: [usize; 3],
}

impl SpecAugment {
    /// Records every problem with these settings (paths relative to this block).
    pub fn check(&self, issues: &mut Issues) {
        issues.require(
            (0.0..=1.0).contains(&self.time_mask_p),
            "time_mask_p",
            format!("must be between 0 and 1, got {}", self.time_mask_p),
        );
    }

    /// Masks a `C x F x T` buffer in place with generator `rng`; returns the masks applied.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        data: &mut [f32],
        shape: [usize; 3],
        rng: &mut R,
    ) -> Result<Vec<Mask>, ShapeError> {
        let [c, f, t] = shape;
        if c.checked_mul(f).and_then(|cf| cf.checked_mul(t)) != Some(data.len()) {
            return Err(ShapeError { len: data.len(), shape });
        }
        let plane = f * t;
        let fills: Vec<f32> = match self.mask_value {
            MaskValue::Zero => vec![0.0; c],
            MaskValue::Mean if plane == 0 => vec![0.0; c],
            MaskValue::Mean => data
                .chunks_exact(plane)
                .map(|p| (p.iter().map(|&x| f64::from(x)).sum::<f64>() / plane as f64) as f32)
                .collect(),
        };
        let time_param = if self.time_mask_p < 1.0 {
            self.time_mask_param.min((t as f64 * self.time_mask_p) as usize)
        } else {
            self.time_mask_param
        };
        let groups: Vec<Option<usize>> = if self.iid_masks { (0..c).map(Some).collect() } else { vec![None] };
        let mut masks = Vec::new();
        for channel in groups {
            for _ in 0..self.freq_masks {
                if let Some((start, end)) = draw(rng, self.freq_mask_param, f) {
                    masks.push(Mask { axis: Axis::Freq, channel, start, end });
                }
            }
            for _ in 0..self.time_masks {
                if let Some((start, end)) = draw(rng, time_param, t) {
                    masks.push(Mask { axis: Axis::Time, channel, start, end });
                }
            }
        }
        for m in &masks {
            let channels = m.channel.map_or(0..c, |ch| ch..ch + 1);
            for ch in channels {
                let p = &mut data[ch * plane..(ch + 1) * plane];
                match m.axis {
                    Axis::Freq => p[m.start * t..m.end * t].fill(fills[ch]),
                    Axis::Time => {
                        for row in p.chunks_exact_mut(t) {
                            row[m.start..m.end].fill(fills[ch]);
                        }
                    }
                }
            }
        }
        Ok(masks)
    }

    /// As [`SpecAugment::apply`], with the generator of sample `index` in `epoch` of a run
    /// seeded with `seed`: the same three numbers always give the same masks.
    pub fn apply_seeded(
        &self,
        data: &mut [f32],
        shape: [usize; 3],
        seed: u64,
        epoch: u64,
        index: u64,
    ) -> Result<Vec<Mask>, ShapeError> {
        let mut rng = kindling_core::rng_from_seed(seed, &format!("spec_augment/{epoch}/{index}"));
        self.apply(data, shape, &mut rng)
    }
}

/// One mask along an axis of `size`, torchaudio's way; `None` when masking is off.
fn draw<R: Rng + ?Sized>(rng: &mut R, param: usize, size: usize) -> Option<(usize, usize)> {
    let param = param.min(size);
    if param < 1 {
        return None;
    }
    let value = rng.random::<f64>() * param as f64;
    let min_value = rng.random::<f64>() * (size as f64 - value);
    let start = (min_value as usize).min(size);
    let end = (start + value as usize).min(size);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [usize; 3] = [4, 20, 30];

    fn buffer() -> Vec<f32> {
        (0..SHAPE.iter().product::<usize>()).map(|i| 1.0 + (i % 7) as f32).collect()
    }

    fn masked(data: &[f32]) -> Vec<bool> {
        data.iter().map(|&x| x == 0.0).collect()
    }

    #[test]
    fn masks_stay_in_bounds_and_below_their_param() {
        let aug = SpecAugment {
            freq_mask_param: 8,
            time_mask_param: 12,
            freq_masks: 2,
            time_masks: 3,
            ..SpecAugment::default()
        };
        for index in 0..200 {
            let mut data = buffer();
            let masks = aug.apply_seeded(&mut data, SHAPE, 7, 0, index).unwrap();
            assert_eq!(masks.len(), 5);
            for m in &masks {
                let (size, param) = if m.axis == Axis::Freq { (20, 8) } else { (30, 12) };
                assert!(m.start <= m.end && m.end <= size, "{m:?}");
                assert!(m.end - m.start < param, "{m:?}");
                assert_eq!(m.channel, None);
            }
            // Exactly the masked cells are zero.
            let [c, f, t] = SHAPE;
            for ch in 0..c {
                for k in 0..f {
                    for j in 0..t {
                        let hit = masks.iter().any(|m| match m.axis {
                            Axis::Freq => (m.start..m.end).contains(&k),
                            Axis::Time => (m.start..m.end).contains(&j),
                        });
                        assert_eq!(data[(ch * f + k) * t + j] == 0.0, hit);
                    }
                }
            }
        }
    }

    #[test]
    fn same_seed_same_masks_other_seeds_differ() {
        let aug = SpecAugment { freq_mask_param: 10, time_mask_param: 15, ..SpecAugment::default() };
        let run = |seed, epoch, index| {
            let mut data = buffer();
            aug.apply_seeded(&mut data, SHAPE, seed, epoch, index).unwrap();
            masked(&data)
        };
        assert_eq!(run(1, 2, 3), run(1, 2, 3));
        let base = run(1, 2, 3);
        let differing = [run(2, 2, 3), run(1, 3, 3), run(1, 2, 4)].iter().filter(|m| **m != base).count();
        assert!(differing >= 2, "masks hardly depend on seed, epoch and index");
        let distinct: std::collections::HashSet<Vec<bool>> = (0..20).map(|s| run(s, 0, 0)).collect();
        assert!(distinct.len() > 10);
    }

    #[test]
    fn one_mask_covers_all_channels_unless_iid() {
        let [c, f, t] = SHAPE;
        let plane = f * t;
        let shared = SpecAugment { freq_mask_param: 10, time_mask_param: 15, ..SpecAugment::default() };
        let mut data = buffer();
        shared.apply_seeded(&mut data, SHAPE, 5, 0, 0).unwrap();
        let m = masked(&data);
        for ch in 1..c {
            assert_eq!(m[..plane], m[ch * plane..(ch + 1) * plane]);
        }
        let iid = SpecAugment { iid_masks: true, ..shared };
        let differs = (0..20).any(|index| {
            let mut data = buffer();
            let masks = iid.apply_seeded(&mut data, SHAPE, 5, 0, index).unwrap();
            assert!(masks.iter().all(|m| m.channel.is_some()));
            let m = masked(&data);
            (1..c).any(|ch| m[..plane] != m[ch * plane..(ch + 1) * plane])
        });
        assert!(differs);
    }

    #[test]
    fn mean_fill_time_p_and_bad_shapes() {
        let aug =
            SpecAugment { freq_mask_param: 20, freq_masks: 3, mask_value: MaskValue::Mean, ..SpecAugment::default() };
        let mut data = buffer();
        let before = data.clone();
        let plane = SHAPE[1] * SHAPE[2];
        let masks = aug.apply_seeded(&mut data, SHAPE, 1, 0, 0).unwrap();
        let m = masks.iter().find(|m| m.end > m.start).unwrap();
        let mean = before[..plane].iter().map(|&x| f64::from(x)).sum::<f64>() / plane as f64;
        assert!((f64::from(data[m.start * SHAPE[2]]) - mean).abs() < 1e-5);

        let p = SpecAugment { time_mask_param: 1000, time_mask_p: 0.1, ..SpecAugment::default() };
        for index in 0..50 {
            let masks = p.apply_seeded(&mut buffer(), SHAPE, 1, 0, index).unwrap();
            assert!(masks.iter().all(|m| m.end - m.start < 3), "{masks:?}");
        }
        assert!(aug.apply_seeded(&mut [0.0; 5], SHAPE, 1, 0, 0).is_err());
        assert!(SpecAugment::default().apply_seeded(&mut buffer(), SHAPE, 1, 0, 0).unwrap().is_empty());
        let mut issues = Issues::default();
        SpecAugment { time_mask_p: 1.5, ..SpecAugment::default() }.check(&mut issues);
        assert_eq!(issues.into_vec().len(), 1);
    }
}
