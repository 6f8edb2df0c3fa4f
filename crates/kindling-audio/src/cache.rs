//! An on-disk feature cache, so later epochs, runs and sweep trials skip decoding and the STFT.
//!
//! One file per (WAV content, parameters): `<cache dir>/<key>.kfeat`, where the key is the
//! 128-bit [`hash`](crate::hash) of the cache format version, the parameters that decide the
//! cached values (the `wav` expectations, the resolved STFT parameters, the channel selection,
//! and whether per-sample normalisation is applied) and the WAV file's bytes. A changed file or
//! a changed parameter therefore gives another key, and a stale entry is never read. `none` and
//! `fitted` normalisation cache the same raw values and share entries: fitted statistics are
//! applied at load time ([`crate::NormStats::apply`]), so one cache serves runs with different
//! training splits. `per_sample` entries hold normalised values.
//!
//! An entry is a 64-byte header (magic `KNDLFEAT`, format version, `C`, `F`, `T`, the key and a
//! 64-bit checksum of the data) followed by `C x F x T` little-endian f32. Entries are written
//! to a temporary file in the cache folder and renamed into place, so a reader never sees half
//! an entry; one that is truncated, damaged or of another format anyway (a crash, a full disk, a
//! copy gone wrong) fails the size, magic, key or checksum test and is recomputed, never
//! trusted.
//!
//! Entries are read with one `read` call each; the operating system's page cache keeps recently
//! read entries in memory, so repeated epochs cost a copy, not a disk read. Nothing here holds
//! more than one sample per thread: callers load entries per batch (800 samples of
//! `4 x 257 x 382` f32 are 1.26 GB, which need not fit in memory).
//!
//! (Over 450 lines: the cache's key, file format, verification and parallel fill belong together;
//! 172 of its lines are its tests.)

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::AudioError;
use crate::features::{Channel, FeatureConfig, FeatureExtractor, Features};
use crate::hash::{Digest, hash_parts, hash128};
use crate::norm::{NormFitter, NormStats, Normalize};
use crate::stft::PadMode;
use crate::wav::WavExpect;

/// Bumped whenever the entry layout or the meaning of cached values changes; part of every key.
/// (Adding channels needs no bump: the channel names are part of the key. Changing what an
/// existing one holds, such as [`crate::interaural::GCC_MAX_LAG_S`], does.)
pub const CACHE_FORMAT_VERSION: u32 = 1;
const MAGIC: [u8; 8] = *b"KNDLFEAT";
const HEADER_LEN: usize = 64;
/// The extension of entry files.
pub const ENTRY_EXTENSION: &str = "kfeat";

/// What [`FeatureCache`] did for a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// A valid entry was already there.
    Hit,
    /// The entry was missing and has been computed.
    Computed,
    /// An entry was there but damaged (size, magic, key or checksum); it has been recomputed.
    Repaired,
}

/// A WAV file's entry in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The WAV file.
    pub source: PathBuf,
    /// The entry file.
    pub file: PathBuf,
    /// The key: content and parameters.
    pub key: Digest,
    /// `[C, F, T]`.
    pub shape: [usize; 3],
    /// Whether it was found or computed.
    pub status: CacheStatus,
}

/// The parameters that decide cached values, with STFT defaults resolved, in a stable encoding.
#[derive(Serialize)]
struct KeyParams<'a> {
    wav: &'a WavExpect,
    n_fft: usize,
    hop_length: usize,
    win_length: usize,
    center: bool,
    pad_mode: PadMode,
    channels: &'a [Channel],
    per_sample_normalized: bool,
    /// Only where a plane depends on it, so the keys of every other configuration stay as
    /// they were before the coherence existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    coherence_frames: Option<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    coherence_weighting: bool,
}

/// A folder of cached features for one [`FeatureConfig`].
#[derive(Clone, Debug)]
pub struct FeatureCache {
    dir: PathBuf,
    extractor: FeatureExtractor,
    params: Digest,
}

impl FeatureCache {
    /// A cache in `dir` (created if missing) for features made with `config`.
    pub fn new(dir: impl Into<PathBuf>, config: FeatureConfig) -> Result<Self, AudioError> {
        Self::with_extractor(dir, FeatureExtractor::new(config)?)
    }

    /// A cache in `dir` (created if missing) for `extractor`'s features.
    pub fn with_extractor(dir: impl Into<PathBuf>, extractor: FeatureExtractor) -> Result<Self, AudioError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| AudioError::io(&dir, e))?;
        let c = extractor.config();
        let params = KeyParams {
            wav: &c.wav,
            n_fft: c.stft.n_fft,
            hop_length: c.stft.hop(),
            win_length: c.stft.win(),
            center: c.stft.center,
            pad_mode: c.stft.pad_mode,
            channels: &c.channels,
            per_sample_normalized: c.normalize == Normalize::PerSample,
            coherence_frames: c.coherence_depends().then_some(c.coherence_frames),
            coherence_weighting: c.coherence_weighting,
        };
        // Serialising plain fields to JSON cannot fail; an empty encoding would still be stable.
        let encoded = serde_json::to_vec(&params).unwrap_or_default();
        Ok(Self { dir, extractor, params: hash128(&encoded) })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The extractor that fills the cache.
    pub fn extractor(&self) -> &FeatureExtractor {
        &self.extractor
    }

    /// The key of a WAV file with these bytes.
    pub fn key(&self, content: &[u8]) -> Digest {
        let content = hash128(content);
        hash_parts(&[b"kindling-audio feature cache", &CACHE_FORMAT_VERSION.to_le_bytes(), &self.params.0, &content.0])
    }

    /// The entry file for `key`.
    pub fn entry_path(&self, key: Digest) -> PathBuf {
        self.dir.join(format!("{}.{ENTRY_EXTENSION}", key.to_hex()))
    }

    /// The features of `wav`: from the cache when a valid entry exists, else computed and
    /// stored.
    pub fn get(&self, wav: &Path) -> Result<(Features, CacheEntry), AudioError> {
        let bytes = std::fs::read(wav).map_err(|e| AudioError::io(wav, e))?;
        let key = self.key(&bytes);
        let file = self.entry_path(key);
        let status = match std::fs::read(&file) {
            Ok(entry) => match self.decode(&entry, key) {
                Some(features) => {
                    let shape = features.shape();
                    return Ok((
                        features,
                        CacheEntry { source: wav.to_owned(), file, key, shape, status: CacheStatus::Hit },
                    ));
                }
                None => CacheStatus::Repaired,
            },
            Err(_) => CacheStatus::Computed,
        };
        let features = self.extractor.from_bytes(wav, &bytes)?;
        self.store(&file, key, &features)?;
        let shape = features.shape();
        Ok((features, CacheEntry { source: wav.to_owned(), file, key, shape, status }))
    }

    /// The features of an entry listed by [`FeatureCache::compute_all`]. A damaged or missing
    /// entry file is recomputed from its source (which, if it changed since, gets a new entry).
    pub fn load(&self, entry: &CacheEntry) -> Result<Features, AudioError> {
        if let Ok(bytes) = std::fs::read(&entry.file)
            && let Some(features) = self.decode(&bytes, entry.key)
        {
            return Ok(features);
        }
        self.get(&entry.source).map(|(features, _)| features)
    }

    /// Makes sure every file has a valid entry, computing the missing ones in parallel
    /// (rayon's pool). Returns one result per file, in order; a file that cannot be read or
    /// transformed gets an error naming it, and the others are still cached.
    pub fn compute_all(&self, files: &[PathBuf]) -> Vec<Result<CacheEntry, AudioError>> {
        // First hash every file and look for its entry; then compute what is missing. Files
        // with the same content share a key, and only the first of them writes the entry, so
        // no two threads write one file.
        let probes: Vec<Result<CacheEntry, AudioError>> = files.par_iter().map(|f| self.probe(f)).collect();
        let mut writers = HashSet::new();
        let jobs: Vec<(usize, bool)> = probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Ok(e) if e.status != CacheStatus::Hit => Some((i, writers.insert(e.key))),
                _ => None,
            })
            .collect();
        let computed: Vec<(usize, Result<CacheEntry, AudioError>)> = jobs
            .par_iter()
            .map(|&(i, write)| {
                let status = probes[i].as_ref().map_or(CacheStatus::Computed, |e| e.status);
                (i, self.fill(&files[i], status, write))
            })
            .collect();
        let mut results = probes;
        for (i, result) in computed {
            results[i] = result;
        }
        results
    }

    /// Fits normalisation statistics on `entries` (the training split), in parallel, streaming:
    /// one sample per thread in memory.
    pub fn fit_stats(&self, entries: &[CacheEntry]) -> Result<NormStats, AudioError> {
        let channels = &self.extractor.config().channels;
        let fitter = entries
            .par_iter()
            .try_fold(
                || NormFitter::new(channels),
                |mut fitter, entry| {
                    fitter.update(&self.load(entry)?)?;
                    Ok::<_, AudioError>(fitter)
                },
            )
            .try_reduce(|| NormFitter::new(channels), |a, b| Ok(a.merge(b)))?;
        Ok(fitter.finish())
    }

    /// Hashes `wav` and checks its entry's header and size (not yet its checksum).
    fn probe(&self, wav: &Path) -> Result<CacheEntry, AudioError> {
        let bytes = std::fs::read(wav).map_err(|e| AudioError::io(wav, e))?;
        let key = self.key(&bytes);
        let file = self.entry_path(key);
        let (shape, status) = match self.read_header(&file, key) {
            Ok(Some(shape)) => (shape, CacheStatus::Hit),
            Ok(None) => ([0; 3], CacheStatus::Repaired),
            Err(()) => ([0; 3], CacheStatus::Computed),
        };
        Ok(CacheEntry { source: wav.to_owned(), file, key, shape, status })
    }

    /// Computes `wav`'s features and, when `write`, stores them.
    fn fill(&self, wav: &Path, status: CacheStatus, write: bool) -> Result<CacheEntry, AudioError> {
        let bytes = std::fs::read(wav).map_err(|e| AudioError::io(wav, e))?;
        // Hashed again: the file may have changed since it was probed.
        let key = self.key(&bytes);
        let file = self.entry_path(key);
        let features = self.extractor.from_bytes(wav, &bytes)?;
        if write {
            self.store(&file, key, &features)?;
        }
        Ok(CacheEntry { source: wav.to_owned(), file, key, shape: features.shape(), status })
    }

    /// `Ok(Some(shape))` for a plausible entry, `Ok(None)` for a damaged one, `Err` for none.
    fn read_header(&self, file: &Path, key: Digest) -> Result<Option<[usize; 3]>, ()> {
        let mut f = std::fs::File::open(file).map_err(|_| ())?;
        let len = f.metadata().map_err(|_| ())?.len();
        let mut header = [0u8; HEADER_LEN];
        if f.read_exact(&mut header).is_err() {
            return Ok(None);
        }
        Ok(parse_header(&header, key)
            .filter(|&(_, data_len, _)| len == (HEADER_LEN + data_len) as u64)
            .map(|(s, _, _)| s))
    }

    fn decode(&self, bytes: &[u8], key: Digest) -> Option<Features> {
        let ([c, bins, frames], data_len, checksum) = parse_header(bytes.get(..HEADER_LEN)?, key)?;
        let data = bytes.get(HEADER_LEN..)?;
        if data.len() != data_len || checksum_of(data) != checksum {
            return None;
        }
        let channels = &self.extractor.config().channels;
        if c != channels.len() {
            return None;
        }
        let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Some(Features { channels: channels.clone(), bins, frames, data: values })
    }

    fn store(&self, file: &Path, key: Digest, features: &Features) -> Result<(), AudioError> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 4 * features.data.len());
        bytes.resize(HEADER_LEN, 0);
        for x in &features.data {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let checksum = checksum_of(&bytes[HEADER_LEN..]);
        let [c, f, t] = features.shape();
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(c as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&(f as u64).to_le_bytes());
        bytes[24..32].copy_from_slice(&(t as u64).to_le_bytes());
        bytes[32..48].copy_from_slice(&key.0);
        bytes[48..56].copy_from_slice(&checksum.to_le_bytes());
        write_entry(file, &bytes).map_err(|e| AudioError::io(file, e))
    }
}

/// Writes an entry to a temporary file in the cache folder, then renames it into place, so no
/// reader sees a partial entry; the temporary name is unique per process and call, so threads
/// and processes filling one cache never share one.
///
/// Unlike [`kindling_core::write_atomic`], this does not `fsync`: an entry is disposable and
/// verified on every read, so one lost or torn by a crash is simply recomputed, and the sync
/// halved the rate at which a cold cache fills (about 400 against 800 files/s of
/// `4 x 257 x 382` on 2 cores).
fn write_entry(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = file.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, file));
    if result.is_err() {
        // Best effort: the temporary file is ours and incomplete.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Shape, data length in bytes and checksum from a header, if it is one of ours for `key`.
fn parse_header(header: &[u8], key: Digest) -> Option<([usize; 3], usize, u64)> {
    let u64_at = |at: usize| header.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let u32_at = |at: usize| header.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    if header.get(..8)? != MAGIC || u32_at(8)? != CACHE_FORMAT_VERSION || header.get(32..48)? != key.0 {
        return None;
    }
    let c = u32_at(12)? as usize;
    let f = usize::try_from(u64_at(16)?).ok()?;
    let t = usize::try_from(u64_at(24)?).ok()?;
    let data_len = c.checked_mul(f)?.checked_mul(t)?.checked_mul(4)?;
    Some(([c, f, t], data_len, u64_at(48)?))
}

fn checksum_of(data: &[u8]) -> u64 {
    let d = hash128(data).0;
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// [`FeatureCache::compute_all`] in one call: a cache in `cache_dir` for `config`, filled for
/// `files`. The outer error is a bad configuration or an unusable folder; the inner ones are
/// per file.
pub fn compute_all(
    files: &[PathBuf],
    config: FeatureConfig,
    cache_dir: &Path,
) -> Result<Vec<Result<CacheEntry, AudioError>>, AudioError> {
    Ok(FeatureCache::new(cache_dir, config)?.compute_all(files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stft::StftConfig;
    use crate::testutil::{TempDir, stereo_tone_wav, write_int_wav};

    fn config() -> FeatureConfig {
        FeatureConfig {
            wav: WavExpect { duration: Some(0.25), ..WavExpect::default() },
            stft: StftConfig { n_fft: 64, hop_length: Some(32), ..StftConfig::default() },
            ..FeatureConfig::default()
        }
    }

    fn wavs(dir: &TempDir, n: u32) -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                let p = dir.join(&format!("{i}.wav"));
                stereo_tone_wav(&p, 16_000, 4000, i);
                p
            })
            .collect()
    }

    #[test]
    fn entries_are_computed_once_then_hit_and_match_direct_extraction() {
        let dir = TempDir::new("cache");
        let files = wavs(&dir, 5);
        let cache = FeatureCache::new(dir.join("cache"), config()).unwrap();
        let first: Vec<CacheEntry> = cache.compute_all(&files).into_iter().map(Result::unwrap).collect();
        assert!(first.iter().all(|e| e.status == CacheStatus::Computed && e.shape == [4, 33, 126]));
        let second: Vec<CacheEntry> = cache.compute_all(&files).into_iter().map(Result::unwrap).collect();
        assert!(second.iter().all(|e| e.status == CacheStatus::Hit));
        assert_eq!(
            first.iter().map(|e| &e.file).collect::<Vec<_>>(),
            second.iter().map(|e| &e.file).collect::<Vec<_>>()
        );
        for (entry, file) in second.iter().zip(&files) {
            let direct = cache.extractor().from_path(file).unwrap();
            assert_eq!(cache.load(entry).unwrap(), direct);
            let (got, e) = cache.get(file).unwrap();
            assert_eq!((got, e.status), (direct, CacheStatus::Hit));
        }
        let entries = std::fs::read_dir(cache.dir()).unwrap().count();
        assert_eq!(entries, 5, "no temporary files are left behind");
    }

    #[test]
    fn a_changed_file_or_parameter_never_reuses_a_stale_entry() {
        let dir = TempDir::new("cache-stale");
        let files = wavs(&dir, 1);
        let cache = FeatureCache::new(dir.join("cache"), config()).unwrap();
        let (before, e1) = cache.get(&files[0]).unwrap();
        // Same length, different content.
        stereo_tone_wav(&files[0], 16_000, 4000, 9);
        let (after, e2) = cache.get(&files[0]).unwrap();
        assert_ne!(e1.key, e2.key);
        assert_eq!(e2.status, CacheStatus::Computed);
        assert_ne!(before, after);
        assert_eq!(after, cache.extractor().from_path(&files[0]).unwrap());

        let mut hop = config();
        hop.stft.hop_length = Some(16);
        let mut channels = config();
        channels.channels = vec![Channel::LMag, Channel::RMag];
        let mut norm = config();
        norm.normalize = Normalize::None;
        // Each interaural plane is its own selection: a new key, and entries of its shape.
        let mut ipd = config();
        ipd.channels = vec![Channel::LMag, Channel::RMag, Channel::IpdCos, Channel::IpdSin];
        let mut ild = config();
        ild.channels = vec![Channel::LMag, Channel::RMag, Channel::Ild, Channel::GccPhat];
        let mut coherence = config();
        coherence.channels = vec![Channel::IpdCos, Channel::Coherence];
        let mut window = coherence.clone();
        window.coherence_frames = 9;
        let mut weighted = ipd.clone();
        weighted.coherence_weighting = true;
        // The coherence's window is no part of the key of features that do not use it.
        let mut unused = config();
        unused.coherence_frames = 9;
        assert_eq!(FeatureCache::new(dir.join("cache"), unused).unwrap().get(&files[0]).unwrap().1.key, e2.key);
        let mut keys = vec![e2.key];
        for other in [hop, channels, norm, ipd, ild, coherence, window, weighted] {
            let c2 = FeatureCache::new(dir.join("cache"), other).unwrap();
            let (f, e) = c2.get(&files[0]).unwrap();
            assert!(!keys.contains(&e.key));
            keys.push(e.key);
            assert_eq!(e.status, CacheStatus::Computed);
            assert_eq!(f, c2.extractor().from_path(&files[0]).unwrap());
            assert_eq!(c2.load(&e).unwrap(), f);
        }
        // `none` and `fitted` cache the same raw values, so they share entries.
        let mut fitted = config();
        fitted.normalize = Normalize::Fitted;
        assert_eq!(
            FeatureCache::new(dir.join("cache"), fitted).unwrap().get(&files[0]).unwrap().1.status,
            CacheStatus::Hit
        );
        // Resolved defaults give the same key as explicit values.
        let mut explicit = config();
        explicit.stft.win_length = Some(64);
        assert_eq!(FeatureCache::new(dir.join("cache"), explicit).unwrap().get(&files[0]).unwrap().1.key, e2.key);
    }

    #[test]
    fn damaged_entries_are_recomputed_not_trusted() {
        let dir = TempDir::new("cache-damage");
        let files = wavs(&dir, 1);
        let cache = FeatureCache::new(dir.join("cache"), config()).unwrap();
        let entry = cache.compute_all(&files).pop().unwrap().unwrap();
        let good = std::fs::read(&entry.file).unwrap();
        let want = cache.load(&entry).unwrap();

        let mut flipped = good.clone();
        flipped[HEADER_LEN + 100] ^= 0x40;
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        let damages: [(&str, Vec<u8>); 5] = [
            ("truncated", good[..good.len() - 3].to_vec()),
            ("header only", good[..HEADER_LEN].to_vec()),
            ("empty", Vec::new()),
            ("bit flip", flipped),
            ("magic", bad_magic),
        ];
        for (what, bytes) in damages {
            std::fs::write(&entry.file, &bytes).unwrap();
            assert_eq!(cache.load(&entry).unwrap(), want, "{what}");
            assert_eq!(std::fs::read(&entry.file).unwrap(), good, "{what}: the entry was rewritten");
            std::fs::write(&entry.file, &bytes).unwrap();
            let (f, e) = cache.get(&files[0]).unwrap();
            assert_eq!((f, e.status), (want.clone(), CacheStatus::Repaired), "{what}");
        }
        std::fs::write(&entry.file, &good[..good.len() - 3]).unwrap();
        assert_eq!(cache.compute_all(&files)[0].as_ref().unwrap().status, CacheStatus::Repaired);
        assert_eq!(std::fs::read(&entry.file).unwrap(), good);
    }

    #[test]
    fn compute_all_reports_bad_files_by_name_and_caches_the_rest() {
        let dir = TempDir::new("cache-errors");
        let mut files = wavs(&dir, 3);
        let mono = dir.join("mono.wav");
        write_int_wav(&mono, 1, 16_000, 16, &vec![0; 4000]);
        files.insert(1, mono.clone());
        files.push(dir.join("missing.wav"));
        // A duplicate of the first file: same key, written once.
        let copy = dir.join("copy.wav");
        std::fs::copy(&files[0], &copy).unwrap();
        files.push(copy);
        let results = compute_all(&files, config(), &dir.join("cache")).unwrap();
        assert_eq!(results.len(), 6);
        let err = results[1].as_ref().unwrap_err();
        assert_eq!(err.path(), Some(mono.as_path()));
        assert!(err.to_string().contains("mono"));
        assert!(results[4].as_ref().unwrap_err().to_string().contains("missing.wav"));
        let (first, copy) = (results[0].as_ref().unwrap(), results[5].as_ref().unwrap());
        assert_eq!(first.file, copy.file);
        assert!([0, 2, 3].iter().all(|&i| results[i].is_ok()));
        assert_eq!(std::fs::read_dir(dir.join("cache")).unwrap().count(), 3);
        assert!(compute_all(&files, FeatureConfig { channels: vec![], ..config() }, &dir.join("cache")).is_err());
    }

    #[test]
    fn fitted_statistics_stream_over_the_cache_and_apply_at_load() {
        let dir = TempDir::new("cache-fit");
        let files = wavs(&dir, 6);
        let cache =
            FeatureCache::new(dir.join("cache"), FeatureConfig { normalize: Normalize::Fitted, ..config() }).unwrap();
        let entries: Vec<CacheEntry> = cache.compute_all(&files).into_iter().map(Result::unwrap).collect();
        let stats = cache.fit_stats(&entries[..4]).unwrap();
        assert_eq!(stats.samples, 4);
        let mut sequential = NormFitter::new(&Channel::STEREO_MAG_PHASE);
        for e in &entries[..4] {
            sequential.update(&cache.extractor().from_path(&e.source).unwrap()).unwrap();
        }
        let want = sequential.finish();
        for (a, b) in stats.planes.iter().zip(&want.planes) {
            assert_eq!(a.channel, b.channel);
            assert!((a.mean - b.mean).abs() < 1e-9 * b.mean.abs().max(1.0) && (a.std - b.std).abs() < 1e-9 * b.std);
        }
        let mut f = cache.load(&entries[5]).unwrap();
        let raw = f.clone();
        stats.apply(&mut f).unwrap();
        let l = stats.get(Channel::LMag).unwrap();
        assert!(
            (f.data[7] - ((f64::from(raw.data[7]) - l.mean) / (l.std + crate::norm::NORM_EPS)) as f32).abs() < 1e-5
        );
    }
}
