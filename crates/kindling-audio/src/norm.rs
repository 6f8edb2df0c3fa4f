//! Normalisation of feature planes, as the seed experiment did it and as options.
//!
//! Every plane is z-scored, `z = (x - mean) / (std + 1e-8)` ([`NORM_EPS`] keeps a constant
//! plane, such as the magnitudes of digital silence, at zero rather than dividing by zero),
//! with the population standard deviation `std = sqrt(sum (x - mean)^2 / count)`. Planes share
//! statistics by group:
//!
//! - level quantities (magnitude, power, log-magnitude) of the left and right channels are one
//!   group, one mean and std over both, so the level difference between the ears (the main cue
//!   for direction) survives normalisation;
//! - each phase plane is its own group;
//! - the interaural planes ([`crate::interaural`]): `ipd_cos`, `ipd_sin` and `gcc_phat` lie in
//!   [-1, 1] by construction, with a meaning tied to those values (1: in phase, or the lag of a
//!   pure delay), so no normalisation touches them. `ild` is its own group under `fitted`
//!   (one mean and std for all samples, an affine map that keeps every sample's level
//!   difference), but is left raw by `per_sample`: subtracting a sample's own mean would remove
//!   its broadband level difference, the cue the plane is for, and a log-ratio needs no scaling
//!   for loudness (the source's level cancels).
//!
//! The statistics come from each sample itself ([`Normalize::PerSample`], the seed's way), or
//! are fitted once on the training split ([`NormFitter`] -> [`NormStats`]) and stored with the
//! run. Fitting streams: it keeps, per group, a count, a mean and a sum of squared deviations in
//! f64 (merged with the pairwise update of Chan, Golub and LeVeque), never the samples.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AudioError;
use crate::features::{Channel, Features, Quantity};

/// Added to the standard deviation before dividing.
pub const NORM_EPS: f64 = 1e-8;

/// How feature planes are normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "FeatureNormalize")]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Raw values.
    None,
    /// Statistics of each sample itself (the seed's way); applied before caching.
    #[default]
    PerSample,
    /// Statistics fitted on the training split ([`NormStats`]); features are cached raw and
    /// the statistics applied at load time, so one cache serves runs with different splits.
    Fitted,
}

/// The group whose statistics a plane shares, `None` for planes left as they are (see the
/// module docs); `fitted` for statistics fitted on a training split, else per sample.
fn group(c: Channel, fitted: bool) -> Option<(Quantity, usize)> {
    match c.quantity() {
        Quantity::Phase => Some((Quantity::Phase, c.side().unwrap_or(0))),
        q if q.is_bounded() => None,
        Quantity::LevelDifference => fitted.then_some((Quantity::LevelDifference, 0)),
        q => Some((q, 0)),
    }
}

/// Count, mean and sum of squared deviations of a set of values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Values seen.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// The moments of the values of several slices together.
    pub fn of(slices: &[&[f32]]) -> Self {
        // Sums of deviations from the first value, eight lanes wide: exact enough in f64, and
        // the shift keeps the variance from cancelling when the mean is large.
        let shift = slices.iter().find_map(|s| s.first()).map_or(0.0, |&x| f64::from(x));
        let (mut s1, mut s2) = ([0.0f64; 8], [0.0f64; 8]);
        let mut count = 0u64;
        for slice in slices {
            let chunks = slice.chunks_exact(8);
            let rest = chunks.remainder();
            for chunk in chunks {
                for i in 0..8 {
                    let d = f64::from(chunk[i]) - shift;
                    s1[i] += d;
                    s2[i] += d * d;
                }
            }
            for (i, &x) in rest.iter().enumerate() {
                let d = f64::from(x) - shift;
                s1[i] += d;
                s2[i] += d * d;
            }
            count += slice.len() as u64;
        }
        if count == 0 {
            return Self::default();
        }
        let (s1, s2): (f64, f64) = (s1.iter().sum(), s2.iter().sum());
        let n = count as f64;
        Self { count, mean: shift + s1 / n, m2: (s2 - s1 * s1 / n).max(0.0) }
    }

    /// The moments of the union of two sets.
    pub fn merge(self, other: Self) -> Self {
        if self.count == 0 {
            return other;
        }
        if other.count == 0 {
            return self;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        Self {
            count: self.count + other.count,
            mean: self.mean + delta * nb / n,
            m2: self.m2 + other.m2 + delta * delta * na * nb / n,
        }
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        if self.count == 0 { 0.0 } else { (self.m2 / self.count as f64).sqrt() }
    }
}

fn z_score(plane: &mut [f32], mean: f64, std: f64) {
    let (m, scale) = (mean as f32, (1.0 / (std + NORM_EPS)) as f32);
    for x in plane {
        *x = (*x - m) * scale;
    }
}

/// Groups of plane indices that share statistics, in order of first appearance; planes left as
/// they are belong to none.
fn groups(channels: &[Channel], fitted: bool) -> Vec<((Quantity, usize), Vec<usize>)> {
    let mut out: Vec<((Quantity, usize), Vec<usize>)> = Vec::new();
    for (i, &c) in channels.iter().enumerate() {
        let Some(g) = group(c, fitted) else { continue };
        match out.iter_mut().find(|(have, _)| *have == g) {
            Some((_, members)) => members.push(i),
            None => out.push((g, vec![i])),
        }
    }
    out
}

/// Z-scores `features` with its own statistics (see the module docs for the groups).
pub fn normalize_per_sample(features: &mut Features) {
    for (_, members) in groups(&features.channels, false) {
        let moments = Moments::of(&members.iter().map(|&i| features.plane(i)).collect::<Vec<_>>());
        for &i in &members {
            z_score(features.plane_mut(i), moments.mean, moments.std());
        }
    }
}

/// Mean and standard deviation of one plane, fitted on a training split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaneStats {
    /// The plane.
    pub channel: Channel,
    /// Its group's mean.
    pub mean: f64,
    /// Its group's population standard deviation.
    pub std: f64,
}

/// Statistics fitted on a training split, stored with a run (serde, e.g. as JSON) and applied
/// to every split at load time. Planes no normalisation touches (`ipd_cos`, `ipd_sin`,
/// `gcc_phat`) have no entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormStats {
    /// Per plane, in the order the features have them.
    pub planes: Vec<PlaneStats>,
    /// Samples the statistics were fitted on.
    pub samples: u64,
}

impl NormStats {
    /// The statistics of `channel`, if fitted.
    pub fn get(&self, channel: Channel) -> Option<&PlaneStats> {
        self.planes.iter().find(|p| p.channel == channel)
    }

    /// Z-scores every plane of `features` with the fitted statistics, leaving the bounded
    /// interaural planes as they are.
    pub fn apply(&self, features: &mut Features) -> Result<(), AudioError> {
        for i in 0..features.channels.len() {
            let c = features.channels[i];
            if group(c, true).is_none() {
                continue;
            }
            let stats = self.get(c).ok_or_else(|| {
                AudioError::Config(vec![kindling_core::ConfigIssue::new(
                    "normalize",
                    format!("the fitted statistics have no {} plane; fit them with the same channels", c.name()),
                )])
            })?;
            z_score(features.plane_mut(i), stats.mean, stats.std);
        }
        Ok(())
    }

    /// Writes the statistics as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<(), AudioError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| AudioError::malformed(path, e.to_string()))?;
        kindling_core::write_atomic(path, &json).map_err(|e| AudioError::io(path, e))
    }

    /// Reads statistics written by [`NormStats::save`].
    pub fn load(path: &Path) -> Result<Self, AudioError> {
        let bytes = std::fs::read(path).map_err(|e| AudioError::io(path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| AudioError::malformed(path, format!("is not a normalisation statistics file: {e}")))
    }
}

/// Accumulates [`NormStats`] over a stream of samples. Fitters of disjoint parts can be merged,
/// so fitting runs in parallel.
#[derive(Clone, Debug)]
pub struct NormFitter {
    channels: Vec<Channel>,
    groups: Vec<((Quantity, usize), Vec<usize>, Moments)>,
    samples: u64,
}

impl NormFitter {
    /// A fitter for features with these planes.
    pub fn new(channels: &[Channel]) -> Self {
        let groups = groups(channels, true).into_iter().map(|(g, m)| (g, m, Moments::default())).collect();
        Self { channels: channels.to_vec(), groups, samples: 0 }
    }

    /// Adds one sample's raw features.
    pub fn update(&mut self, features: &Features) -> Result<(), AudioError> {
        if features.channels != self.channels {
            return Err(AudioError::Config(vec![kindling_core::ConfigIssue::new(
                "normalize",
                "a sample's planes differ from the planes the statistics are being fitted for",
            )]));
        }
        for (_, members, moments) in &mut self.groups {
            let planes: Vec<&[f32]> = members.iter().map(|&i| features.plane(i)).collect();
            *moments = moments.merge(Moments::of(&planes));
        }
        self.samples += 1;
        Ok(())
    }

    /// Combines with a fitter of other samples (for the same planes).
    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        for ((_, _, a), (_, _, b)) in self.groups.iter_mut().zip(other.groups) {
            *a = a.merge(b);
        }
        self.samples += other.samples;
        self
    }

    /// The fitted statistics.
    pub fn finish(&self) -> NormStats {
        let mut planes = Vec::with_capacity(self.channels.len());
        for &channel in &self.channels {
            if let Some((_, _, m)) = self.groups.iter().find(|(g, _, _)| Some(*g) == group(channel, true)) {
                planes.push(PlaneStats { channel, mean: m.mean, std: m.std() });
            }
        }
        NormStats { planes, samples: self.samples }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(seed: u32) -> Features {
        let (bins, frames) = (5, 7);
        let channels = Channel::STEREO_MAG_PHASE.to_vec();
        let data = (0..4 * bins * frames)
            .map(|i| {
                let c = i / (bins * frames);
                let v = ((i as u32 * 2_654_435_761u32).wrapping_add(seed * 97) % 1000) as f32 / 1000.0;
                // Right magnitudes are quieter than left ones; phases span (-pi, pi].
                match c {
                    0 => 10.0 + 5.0 * v,
                    1 => 2.0 + v,
                    _ => (v - 0.5) * 6.0,
                }
            })
            .collect();
        Features { channels, bins, frames, data }
    }

    fn mean_std(values: impl Iterator<Item = f32>) -> (f64, f64) {
        let v: Vec<f64> = values.map(f64::from).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
    }

    #[test]
    fn per_sample_scores_magnitudes_jointly_and_phases_alone() {
        let raw = features(1);
        let mut f = raw.clone();
        normalize_per_sample(&mut f);
        let (m, s) = mean_std(f.plane(0).iter().chain(f.plane(1)).copied());
        assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5);
        // Jointly: the left plane stays louder than the right one.
        assert!(mean_std(f.plane(0).iter().copied()).0 > 0.5 && mean_std(f.plane(1).iter().copied()).0 < -0.5);
        // Formula: one mean and std over both magnitude planes.
        let (rm, rs) = mean_std(raw.plane(0).iter().chain(raw.plane(1)).copied());
        let want = ((f64::from(raw.data[3]) - rm) / (rs + NORM_EPS)) as f32;
        assert!((f.data[3] - want).abs() < 1e-5);
        for c in [2, 3] {
            let (m, s) = mean_std(f.plane(c).iter().copied());
            assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5, "plane {c}: {m} {s}");
        }
    }

    #[test]
    fn constant_planes_become_zero_not_nan() {
        let mut f = features(2);
        f.data.iter_mut().for_each(|x| *x = 3.0);
        normalize_per_sample(&mut f);
        assert!(f.data.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn streaming_fit_equals_statistics_of_everything_at_once() {
        let samples: Vec<Features> = (0..9).map(features).collect();
        let mut fitter = NormFitter::new(&Channel::STEREO_MAG_PHASE);
        let mut other = NormFitter::new(&Channel::STEREO_MAG_PHASE);
        for (i, s) in samples.iter().enumerate() {
            if i < 4 { fitter.update(s).unwrap() } else { other.update(s).unwrap() }
        }
        let stats = fitter.merge(other).finish();
        assert_eq!(stats.samples, 9);
        let (m, s) = mean_std(samples.iter().flat_map(|f| f.plane(0).iter().chain(f.plane(1)).copied()));
        let l = stats.get(Channel::LMag).unwrap();
        assert!((l.mean - m).abs() < 1e-9 && (l.std - s).abs() < 1e-9);
        assert_eq!(stats.get(Channel::RMag), Some(&PlaneStats { channel: Channel::RMag, ..l.clone() }));
        let (m, s) = mean_std(samples.iter().flat_map(|f| f.plane(3).iter().copied()));
        let r = stats.get(Channel::RPhase).unwrap();
        assert!((r.mean - m).abs() < 1e-9 && (r.std - s).abs() < 1e-9);

        // Applying the stats of all samples to the data z-scores it jointly.
        let mut f = samples[0].clone();
        stats.apply(&mut f).unwrap();
        let want = ((f64::from(samples[0].data[0]) - l.mean) / (l.std + NORM_EPS)) as f32;
        assert!((f.data[0] - want).abs() < 1e-5);
    }

    #[test]
    fn interaural_planes_keep_their_values_and_ild_is_scaled_only_when_fitted() {
        let channels = vec![Channel::LLogmag, Channel::IpdCos, Channel::Ild, Channel::GccPhat, Channel::IpdSin];
        let (bins, frames) = (4, 6);
        let sample = |seed: u32| {
            let data = (0..channels.len() * bins * frames)
                .map(|i| {
                    let v = ((i as u32 * 2_654_435_761u32).wrapping_add(seed * 131) % 1000) as f32 / 1000.0;
                    if i / (bins * frames) == 2 { 1.5 + v } else { 2.0 * v - 1.0 }
                })
                .collect();
            Features { channels: channels.clone(), bins, frames, data }
        };
        let raw = sample(1);
        let mut f = raw.clone();
        normalize_per_sample(&mut f);
        // Per sample: only the log-magnitude is z-scored; the ILD keeps its positive mean.
        assert_ne!(f.plane(0), raw.plane(0));
        for c in 1..5 {
            assert_eq!(f.plane(c), raw.plane(c), "plane {c}");
        }

        let mut fitter = NormFitter::new(&channels);
        for seed in 0..3 {
            fitter.update(&sample(seed)).unwrap();
        }
        let stats = fitter.finish();
        let kept: Vec<Channel> = stats.planes.iter().map(|p| p.channel).collect();
        assert_eq!(kept, [Channel::LLogmag, Channel::Ild]);
        let (m, s) = mean_std((0..3).flat_map(|seed| sample(seed).plane(2).to_vec()));
        let ild = stats.get(Channel::Ild).unwrap();
        assert!((ild.mean - m).abs() < 1e-9 && (ild.std - s).abs() < 1e-9);
        let mut g = raw.clone();
        stats.apply(&mut g).unwrap();
        let want = ((f64::from(raw.plane(2)[5]) - m) / (s + NORM_EPS)) as f32;
        assert!((g.plane(2)[5] - want).abs() < 1e-5);
        for c in [1, 3, 4] {
            assert_eq!(g.plane(c), raw.plane(c), "plane {c}");
        }
    }

    #[test]
    fn stats_round_trip_through_json_and_refuse_other_planes() {
        let mut fitter = NormFitter::new(&Channel::STEREO_MAG_PHASE);
        fitter.update(&features(3)).unwrap();
        let stats = fitter.finish();
        let dir = crate::testutil::TempDir::new("norm");
        let path = dir.join("norm.json");
        stats.save(&path).unwrap();
        assert_eq!(NormStats::load(&path).unwrap(), stats);
        std::fs::write(&path, b"{\"planes\": 3}").unwrap();
        assert!(NormStats::load(&path).unwrap_err().to_string().contains("norm.json"));

        let mut other = features(3);
        other.channels[0] = Channel::LPower;
        assert!(stats.apply(&mut other).unwrap_err().to_string().contains("l_power"));
        assert!(fitter.update(&other).is_err());
    }
}
