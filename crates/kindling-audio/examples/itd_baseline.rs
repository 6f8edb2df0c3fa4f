//! The classical baseline of the stereo direction experiment (what `cargo xtask bench audio`
//! runs beside the logistic regression): one interaural time difference per file
//! ([`kindling_audio::interaural::gcc_phat_itd`]: the GCC-PHAT cross-spectrum summed over the
//! STFT frames, n_fft 512, hop 256, lags up to +-1.2 ms in 1/8-sample steps), and each test file
//! assigned to the class whose training-set median ITD is nearest. Nothing else is fitted.
//!
//! Reads the WAVs as the CNN does (16 kHz stereo, padded or cropped to 6.1 s) from
//! `<data-dir>/{kemar,kemar-hard,fabian,fabian-hard}/manifest.csv` and prints one JSON line per
//! experiment: accuracy, accuracy within one class (18 degrees for the 11 directions, whose
//! class names sort by azimuth), the class medians and the confusion matrix.
//!
//! `cargo run --release --workspace --example itd_baseline -- <data-dir>`

use std::collections::HashMap;
use std::path::Path;

use kindling_audio::interaural::{ItdConfig, gcc_phat_itd};
use kindling_audio::{AudioDataset, LengthPolicy, WavExpect};
use rayon::prelude::*;
use serde_json::json;

/// `(train set, test set, held-out fraction)`: a fraction splits the train set itself, with
/// `stereo-direction.yaml`'s split (stratified, seed 0).
const EXPERIMENTS: &[(&str, &str, Option<f64>)] = &[
    ("kemar", "kemar", Some(0.2)),
    ("kemar", "fabian", None),
    ("kemar-hard", "fabian-hard", None),
    ("kemar-hard", "kemar-hard", Some(0.2)),
];

/// A set's class names and, per file, its label and ITD in seconds.
struct Set {
    classes: Vec<String>,
    labels: Vec<u32>,
    itds: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::args().nth(1).ok_or("usage: itd_baseline <data-dir>")?;
    let wav = WavExpect { duration: Some(6.1), length: LengthPolicy::PadOrCrop, ..WavExpect::default() };
    let config = ItdConfig::default();
    let mut sets: HashMap<&str, Set> = HashMap::new();
    for &(train, test, _) in EXPERIMENTS {
        for name in [train, test] {
            if !sets.contains_key(name) {
                sets.insert(name, load(&Path::new(&data).join(name), &wav, &config)?);
            }
        }
    }
    for &(train, test, held_out) in EXPERIMENTS {
        let (a, b) = (&sets[train], &sets[test]);
        if a.classes != b.classes {
            return Err(format!("{train} and {test} have different classes").into());
        }
        let (train_idx, test_idx, name) = match held_out {
            Some(fraction) => {
                let (t, v) = kindling_core::stratified_split(&a.labels, fraction, 0);
                let pct = (100.0 * fraction).round();
                (t, v, format!("{train}, {}/{pct} split", 100.0 - pct))
            }
            None => ((0..a.labels.len()).collect(), (0..b.labels.len()).collect(), format!("{train} -> {test}")),
        };
        let classes = a.classes.len();
        let medians: Vec<f64> = (0..classes)
            .map(|c| median(train_idx.iter().filter(|&&i| a.labels[i] as usize == c).map(|&i| a.itds[i]).collect()))
            .collect();
        let mut confusion = vec![vec![0u32; classes]; classes];
        let (mut right, mut near) = (0, 0);
        for &i in &test_idx {
            let itd = b.itds[i];
            let predicted = (0..classes)
                .filter(|&c| medians[c].is_finite())
                .min_by(|&x, &y| (medians[x] - itd).abs().total_cmp(&(medians[y] - itd).abs()))
                .ok_or("the training set has no files")?;
            let truth = b.labels[i] as usize;
            confusion[truth][predicted] += 1;
            right += usize::from(predicted == truth);
            near += usize::from(predicted.abs_diff(truth) <= 1);
        }
        let n = test_idx.len().max(1) as f64;
        let line = json!({
            "baseline": name,
            "train": train_idx.len(),
            "test": test_idx.len(),
            "accuracy": right as f64 / n,
            "within_one_class": near as f64 / n,
            "classes": a.classes,
            "median_itd_us": medians.iter().map(|m| (m * 1e7).round() / 10.0).collect::<Vec<_>>(),
            "confusion": confusion,
        });
        println!("{line}");
    }
    Ok(())
}

/// Reads `<dir>/manifest.csv` and estimates every file's ITD, in parallel.
fn load(dir: &Path, wav: &WavExpect, config: &ItdConfig) -> Result<Set, Box<dyn std::error::Error>> {
    let set = AudioDataset::from_manifest(&dir.join("manifest.csv"))?;
    let itds = set
        .items
        .par_iter()
        .map(|item| {
            let audio = wav.read(&item.path).map_err(|e| e.to_string())?;
            gcc_phat_itd(&audio, config).map_err(|e| format!("{}: {e}", item.path.display()))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(Set { classes: set.classes.clone(), labels: set.labels(), itds })
}

/// The median (the mean of the middle two for an even count); NaN for none.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) { (v[m - 1] + v[m]) / 2.0 } else { v[m] }
}
