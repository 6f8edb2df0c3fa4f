//! Times WAV -> normalised 4 x F x T features over every WAV in a folder (what `cargo xtask bench
//! audio` runs): cold (decode + STFT + normalisation, no cache, in parallel), filling an empty
//! cache, and warm (cache hits, features loaded). Prints one JSON line.
//!
//! `cargo run --release -p kindling-audio --example bench_features -- <wav-dir> <cache-dir>`

use std::path::PathBuf;
use std::time::Instant;

use kindling_audio::{FeatureCache, FeatureConfig, FeatureExtractor, LengthPolicy, StftConfig, WavExpect};
use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: bench_features <wav-dir> <cache-dir>")?);
    let cache_dir = PathBuf::from(args.next().ok_or("usage: bench_features <wav-dir> <cache-dir>")?);
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in walk(&dir)? {
        if entry.extension().is_some_and(|e| e == "wav") {
            files.push(entry);
        }
    }
    files.sort();
    let config = FeatureConfig {
        wav: WavExpect { duration: Some(6.1), length: LengthPolicy::PadOrCrop, ..WavExpect::default() },
        stft: StftConfig { n_fft: 512, hop_length: Some(256), ..StftConfig::default() },
        ..FeatureConfig::default()
    };
    let extractor = FeatureExtractor::new(config.clone())?;
    let shape = extractor.shape().ok_or("no shape")?;

    // Cold: every file read, decoded, transformed and normalised; nothing kept.
    let start = Instant::now();
    let checksum: f64 = files
        .par_iter()
        .map(|f| extractor.from_path(f).map(|x| f64::from(x.data[x.data.len() / 2])))
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .sum();
    let cold = start.elapsed().as_secs_f64();

    let _ = std::fs::remove_dir_all(&cache_dir);
    let cache = FeatureCache::new(&cache_dir, config)?;
    let start = Instant::now();
    let entries = cache.compute_all(&files).into_iter().collect::<Result<Vec<_>, _>>()?;
    let fill = start.elapsed().as_secs_f64();

    // Warm: the cache is looked up (each file hashed) and every sample loaded, as a run does.
    let start = Instant::now();
    let entries2 = cache.compute_all(&files).into_iter().collect::<Result<Vec<_>, _>>()?;
    let loaded: usize =
        entries2.par_iter().map(|e| cache.load(e).map(|x| x.data.len())).collect::<Result<Vec<_>, _>>()?.iter().sum();
    let warm = start.elapsed().as_secs_f64();
    assert_eq!(entries.len(), files.len());
    assert_eq!(loaded, files.len() * shape.iter().product::<usize>());
    let n = files.len() as f64;
    println!(
        "{{\"files\": {}, \"shape\": {:?}, \"threads\": {}, \"cold_files_per_s\": {:.1}, \"fill_files_per_s\": {:.1}, \"warm_files_per_s\": {:.1}, \"checksum\": {checksum:.6}}}",
        files.len(),
        shape,
        rayon::current_num_threads(),
        n / cold,
        n / fill,
        n / warm
    );
    Ok(())
}

fn walk(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}
