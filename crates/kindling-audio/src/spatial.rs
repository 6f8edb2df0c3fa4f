//! A stereo direction data set from real measurements: mono recordings convolved with measured
//! head-related impulse responses (HRIRs) into N horizontal directions, with optional diffuse
//! noise and a synthetic late-reverberation tail to make the task harder.
//!
//! The HRIR file is a multichannel WAV in the layout of the SSR sets (KEMAR, FABIAN): 720
//! channels, channel `2 * az` the left ear and `2 * az + 1` the right ear for azimuth `az` in
//! degrees, counter-clockwise from the front (so +90 is the listener's left), one impulse
//! response per channel.
//!
//! Every sample is drawn from its own seeded stream (`seed`, sample index), so the set is the
//! same whatever the number of threads.
//!
//! (Over 450 lines: one data set's renderer (HRIR loading, resampling, convolution, mixing, the
//! manifest); 92 of its lines are its tests.)

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngExt;
use rand::rngs::StdRng;
use rayon::prelude::*;
use realfft::RealFftPlanner;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use serde::Serialize;

/// What went wrong; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum SpatialError {
    /// A file could not be read or decoded.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A WAV file could not be read (the error names it).
    #[error(transparent)]
    Audio(#[from] crate::AudioError),
    /// The configuration cannot produce a set.
    #[error("{0}")]
    Config(String),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> SpatialError {
    SpatialError::File { path: path.to_owned(), message: message.to_string() }
}

/// How to build the set.
#[derive(Clone, Debug, Serialize)]
pub struct SpatialConfig {
    /// The HRIR set (720-channel WAV, see the module docs).
    pub hrir: PathBuf,
    /// Mono (or stereo, averaged) recordings: WAV, or Ogg Vorbis (`.oga`, `.ogg`).
    pub sources: Vec<PathBuf>,
    /// Azimuths of the classes in degrees, counter-clockwise from the front (+90 = left).
    pub directions: Vec<i32>,
    /// Samples per class.
    pub per_class: usize,
    /// Output sample rate (Hz).
    pub sample_rate: u32,
    /// Output length (seconds).
    pub duration: f64,
    /// Diffuse noise (independent per ear) at this signal-to-noise ratio, in dB.
    pub snr_db: Option<f64>,
    /// A late-reverberation tail with this RT60 (seconds): exponentially decaying noise,
    /// decorrelated between the ears.
    pub rt60: Option<f64>,
    /// Direct-to-reverberant energy ratio of the tail, in dB.
    pub drr_db: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl SpatialConfig {
    /// 11 directions from -90 to +90 degrees in 18-degree steps, 16 kHz, 6.1 s: the seed's set.
    pub fn new(hrir: PathBuf, sources: Vec<PathBuf>) -> Self {
        Self {
            hrir,
            sources,
            directions: (0..11).map(|i| -90 + 18 * i).collect(),
            per_class: 80,
            sample_rate: 16_000,
            duration: 6.1,
            snr_db: None,
            rt60: None,
            drr_db: 0.0,
            seed: 0,
        }
    }

    /// The class name of direction `i`: `03_az-36`; names sort by azimuth, right to left.
    pub fn class_name(&self, i: usize) -> String {
        class_name(i, self.directions[i])
    }
}

/// The class name of direction `i` at azimuth `az`: `03_az-36`.
pub fn class_name(i: usize, az: i32) -> String {
    format!("{i:02}_az{az:+03}")
}

/// Left and right impulse responses per direction, at the output rate.
#[derive(Clone, Debug)]
pub struct Hrirs {
    /// `[direction][ear]` -> taps.
    pub pairs: Vec<[Vec<f32>; 2]>,
}

/// Reads any WAV as f32 channels.
fn read_wav(path: &Path) -> Result<(u32, Vec<Vec<f32>>), SpatialError> {
    let audio = crate::wav::read_wav(path)?;
    if audio.channels.is_empty() {
        return Err(file_err(path, "has no channels"));
    }
    Ok((audio.sample_rate, audio.channels))
}

/// Reads an Ogg Vorbis file as f32 channels.
fn read_vorbis(path: &Path) -> Result<(u32, Vec<Vec<f32>>), SpatialError> {
    let file = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    let mut reader = lewton::inside_ogg::OggStreamReader::new(std::io::BufReader::new(file))
        .map_err(|e| file_err(path, format!("not a readable Ogg Vorbis file: {e}")))?;
    let rate = reader.ident_hdr.audio_sample_rate;
    let channels = usize::from(reader.ident_hdr.audio_channels).max(1);
    let mut out = vec![Vec::new(); channels];
    while let Some(packet) = reader.read_dec_packet_itl().map_err(|e| file_err(path, format!("cannot decode: {e}")))? {
        for frame in packet.chunks_exact(channels) {
            for (c, &s) in frame.iter().enumerate() {
                out[c].push(f32::from(s) / 32768.0);
            }
        }
    }
    Ok((rate, out))
}

/// Resamples one channel from `from` Hz to `to` Hz (FFT resampler; the delay is trimmed).
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Both).map_err(|e| e.to_string())?;
    let input = InterleavedSlice::new(x, 1, x.len()).map_err(|e| e.to_string())?;
    let out = r.process_all(&input, x.len(), None).map_err(|e| e.to_string())?;
    Ok(out.take_data())
}

/// The HRIR pairs of `directions` from an SSR-layout file, resampled to `rate`.
pub fn load_hrirs(path: &Path, directions: &[i32], rate: u32) -> Result<Hrirs, SpatialError> {
    let (from, channels) = read_wav(path)?;
    if channels.len() != 720 {
        return Err(file_err(
            path,
            format!("has {} channels; an HRIR set has 720 (left and right ear for each degree)", channels.len()),
        ));
    }
    let pairs = directions
        .iter()
        .map(|&az| {
            let a = az.rem_euclid(360) as usize;
            let ear = |c: usize| resample(&channels[c], from, rate).map_err(|e| file_err(path, e));
            Ok([ear(2 * a)?, ear(2 * a + 1)?])
        })
        .collect::<Result<_, SpatialError>>()?;
    Ok(Hrirs { pairs })
}

/// A source as mono at `rate`, scaled to unit RMS.
pub fn load_source(path: &Path, rate: u32) -> Result<Vec<f32>, SpatialError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let (from, channels) = match ext.as_str() {
        "oga" | "ogg" => read_vorbis(path)?,
        _ => read_wav(path)?,
    };
    let n = channels.iter().map(Vec::len).min().unwrap_or(0);
    let mono: Vec<f32> = (0..n).map(|i| channels.iter().map(|c| c[i]).sum::<f32>() / channels.len() as f32).collect();
    let mut mono = resample(&mono, from, rate).map_err(|e| file_err(path, e))?;
    let rms = (mono.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / mono.len().max(1) as f64).sqrt();
    if rms.is_nan() || rms <= 1e-6 {
        return Err(file_err(path, "is silent"));
    }
    for s in &mut mono {
        *s = (f64::from(*s) / rms) as f32;
    }
    Ok(mono)
}

/// Linear convolution of `x` with `h`, truncated to `x.len()` samples, through real FFTs.
pub fn convolve(x: &[f32], h: &[f32], planner: &mut RealFftPlanner<f32>) -> Vec<f32> {
    let n = (x.len() + h.len() - 1).next_power_of_two();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spectrum = |v: &[f32], fwd: &Arc<dyn realfft::RealToComplex<f32>>| {
        let mut buf = vec![0.0f32; n];
        buf[..v.len()].copy_from_slice(v);
        let mut out = fwd.make_output_vec();
        // Lengths come from the plan, so the transform cannot fail.
        fwd.process(&mut buf, &mut out).expect("buffer lengths match the plan");
        out
    };
    let (a, b) = (spectrum(x, &fwd), spectrum(h, &fwd));
    let mut prod: Vec<_> = a.iter().zip(&b).map(|(p, q)| p * q).collect();
    // The imaginary parts at DC and Nyquist of a real signal's product are zero up to rounding.
    if let Some(first) = prod.first_mut() {
        first.im = 0.0;
    }
    if let Some(last) = prod.last_mut() {
        last.im = 0.0;
    }
    let mut out = inv.make_output_vec();
    inv.process(&mut prod, &mut out).expect("buffer lengths match the plan");
    out.truncate(x.len());
    let scale = 1.0 / n as f32;
    for v in &mut out {
        *v *= scale;
    }
    out
}

/// A standard normal draw (Box-Muller).
pub(crate) fn gauss(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

/// Mean square of `x`.
pub(crate) fn power(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64
}

/// One sample: the binaural signal (left, right) of a random source from direction `dir`.
pub fn render(cfg: &SpatialConfig, hrirs: &Hrirs, sources: &[Vec<f32>], dir: usize, rng: &mut StdRng) -> [Vec<f32>; 2] {
    let rate = f64::from(cfg.sample_rate);
    let len = (cfg.duration * rate).round() as usize;
    // The dry signal: one source, repeated with random gaps from a random offset, random gain.
    let source = &sources[rng.random_range(0..sources.len())];
    let gain = 10f64.powf(rng.random_range(-6.0..0.0) / 20.0) as f32;
    let mut dry = vec![0.0f32; len];
    let mut pos = rng.random_range(0..(0.5 * rate) as usize);
    while pos < len {
        let n = source.len().min(len - pos);
        for (d, &s) in dry[pos..pos + n].iter_mut().zip(source) {
            *d = s * gain;
        }
        pos += source.len() + rng.random_range((0.1 * rate) as usize..(0.5 * rate) as usize);
    }
    let mut planner = RealFftPlanner::<f32>::new();
    let mut ears =
        [convolve(&dry, &hrirs.pairs[dir][0], &mut planner), convolve(&dry, &hrirs.pairs[dir][1], &mut planner)];
    let direct = (power(&ears[0]) + power(&ears[1])) / 2.0;
    if let Some(rt60) = cfg.rt60 {
        // Late reverberation: per ear, decaying Gaussian noise (-60 dB at rt60) after a 10 ms
        // pre-delay, scaled to the direct-to-reverberant ratio.
        let taps = (rt60 * rate).round() as usize;
        let pre = (0.01 * rate) as usize;
        for ear in &mut ears {
            let mut tail = vec![0.0f32; pre + taps];
            for (i, t) in tail[pre..].iter_mut().enumerate() {
                *t = (gauss(rng) * (-6.907_755 * i as f64 / (rt60 * rate)).exp()) as f32;
            }
            let wet = convolve(&dry, &tail, &mut planner);
            let scale = (direct / power(&wet).max(1e-20) / 10f64.powf(cfg.drr_db / 10.0)).sqrt() as f32;
            for (e, w) in ear.iter_mut().zip(&wet) {
                *e += w * scale;
            }
        }
    }
    if let Some(snr) = cfg.snr_db {
        let signal = (power(&ears[0]) + power(&ears[1])) / 2.0;
        let sigma = (signal / 10f64.powf(snr / 10.0)).sqrt();
        for ear in &mut ears {
            for e in ear.iter_mut() {
                *e += (gauss(rng) * sigma) as f32;
            }
        }
    }
    // Both ears scaled together (level differences are the cue) to a peak of 0.9.
    let peak = ears.iter().flatten().fold(0.0f32, |m, &s| m.max(s.abs()));
    if peak > 0.0 {
        for e in ears.iter_mut().flatten() {
            *e *= 0.9 / peak;
        }
    }
    ears
}

/// What [`spatialize`] wrote.
#[derive(Clone, Debug)]
pub struct SpatialOutcome {
    /// Files written.
    pub files: usize,
    /// `manifest.csv` (path,label).
    pub manifest: PathBuf,
}

/// Writes the set under `out`: `<class>/<class>_<n>.wav` (stereo, 16-bit), `manifest.csv`,
/// and `spatialize.json` (the configuration).
pub fn spatialize(cfg: &SpatialConfig, out: &Path) -> Result<SpatialOutcome, SpatialError> {
    if cfg.directions.is_empty() || cfg.per_class == 0 {
        return Err(SpatialError::Config("no directions or no samples per class".into()));
    }
    if cfg.sources.is_empty() {
        return Err(SpatialError::Config("no source recordings".into()));
    }
    let hrirs = load_hrirs(&cfg.hrir, &cfg.directions, cfg.sample_rate)?;
    let sources: Vec<Vec<f32>> =
        cfg.sources.par_iter().map(|p| load_source(p, cfg.sample_rate)).collect::<Result<_, _>>()?;
    std::fs::create_dir_all(out).map_err(|e| file_err(out, e))?;
    for i in 0..cfg.directions.len() {
        let d = out.join(cfg.class_name(i));
        std::fs::create_dir_all(&d).map_err(|e| file_err(&d, e))?;
    }
    let jobs: Vec<(usize, usize)> =
        (0..cfg.directions.len()).flat_map(|d| (0..cfg.per_class).map(move |n| (d, n))).collect();
    let rows: Vec<String> = jobs
        .par_iter()
        .enumerate()
        .map(|(index, &(dir, n))| {
            let mut rng = kindling_core::rng_from_seed(cfg.seed, &format!("spatialize/{index}"));
            let [l, r] = render(cfg, &hrirs, &sources, dir, &mut rng);
            let class = cfg.class_name(dir);
            let rel = format!("{class}/{class}_{n:04}.wav");
            write_stereo(&out.join(&rel), &l, &r, cfg.sample_rate)?;
            Ok(format!("{rel},{class}\n"))
        })
        .collect::<Result<_, SpatialError>>()?;
    let manifest = out.join("manifest.csv");
    let text = String::from("path,label\n") + &rows.concat();
    kindling_core::write_atomic(&manifest, text.as_bytes()).map_err(|e| file_err(&manifest, e))?;
    let json = out.join("spatialize.json");
    kindling_core::write_atomic(&json, serde_json::to_string_pretty(cfg).unwrap_or_default().as_bytes())
        .map_err(|e| file_err(&json, e))?;
    Ok(SpatialOutcome { files: rows.len(), manifest })
}

/// Encodes 16-bit stereo PCM in memory and writes it atomically.
fn write_stereo(path: &Path, l: &[f32], r: &[f32], rate: u32) -> Result<(), SpatialError> {
    let spec =
        hound::WavSpec { channels: 2, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut bytes = std::io::Cursor::new(Vec::with_capacity(44 + 4 * l.len()));
    let encoded = (|| -> Result<(), hound::Error> {
        let mut w = hound::WavWriter::new(&mut bytes, spec)?;
        for (&a, &b) in l.iter().zip(r) {
            w.write_sample((a.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
            w.write_sample((b.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
        }
        w.finalize()
    })();
    encoded.map_err(|e| file_err(path, e))?;
    kindling_core::write_atomic(path, bytes.get_ref()).map_err(|e| file_err(path, e))
}

/// Writes a synthetic HRIR set in the SSR layout (720 channels, 32-bit float at `rate`, `taps`
/// long), for tests and demonstrations without the measured sets: each ear's response is one
/// impulse, delayed up to 0.6 ms and attenuated by up to 10 dB on the far side of the head.
pub fn write_synthetic_hrirs(path: &Path, rate: u32, taps: usize) -> Result<(), SpatialError> {
    let spec = hound::WavSpec {
        channels: 720,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| file_err(path, e))?;
    let max_delay = 0.0006 * f64::from(rate);
    // lateral: +1 at the left (azimuth 90), -1 at the right (270).
    let lateral = |az: usize| (az as f64).to_radians().sin();
    for t in 0..taps {
        for az in 0..360 {
            // Left ear, then right: +1 where this ear faces the source.
            for side in [1.0, -1.0] {
                let near = side * lateral(az);
                let delay = ((1.0 - near) / 2.0 * max_delay).round() as usize;
                let gain = 10f64.powf(-10.0 * (1.0 - near) / 2.0 / 20.0);
                let v = if t == delay { gain as f32 } else { 0.0 };
                w.write_sample(v).map_err(|e| file_err(path, e))?;
            }
        }
    }
    w.finalize().map_err(|e| file_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn noise_source(path: &Path, rate: u32, seconds: f64) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let mut rng = kindling_core::rng_from_seed(9, "noise");
        for _ in 0..(seconds * f64::from(rate)) as usize {
            w.write_sample((gauss(&mut rng) * 6000.0).clamp(-32000.0, 32000.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }

    fn level_difference_db(path: &Path) -> f64 {
        let audio = crate::wav::read_wav(path).unwrap();
        10.0 * (power(&audio.channels[0]) / power(&audio.channels[1])).log10()
    }

    fn set(dir: &TempDir) -> SpatialConfig {
        let hrir = dir.join("hrirs.wav");
        write_synthetic_hrirs(&hrir, 16_000, 32).unwrap();
        // A 48 kHz source: resampled to 16 kHz on the way in.
        noise_source(&dir.join("src.wav"), 48_000, 0.5);
        let mut cfg = SpatialConfig::new(hrir, vec![dir.join("src.wav")]);
        cfg.directions = vec![-90, 0, 90];
        cfg.per_class = 2;
        cfg.duration = 1.0;
        cfg
    }

    #[test]
    fn directions_are_heard_on_the_right_side_and_sets_repeat_by_seed() {
        let dir = TempDir::new("spatial");
        let cfg = set(&dir);
        let out = dir.join("set");
        let outcome = spatialize(&cfg, &out).unwrap();
        assert_eq!(outcome.files, 6);
        let manifest = std::fs::read_to_string(&outcome.manifest).unwrap();
        assert_eq!(manifest.lines().next(), Some("path,label"));
        assert!(manifest.contains("00_az-90/00_az-90_0000.wav,00_az-90\n"), "{manifest}");
        // +90 is the listener's left: louder in the left ear; -90 in the right; 0 balanced.
        let ild = |class: &str| level_difference_db(&out.join(format!("{class}/{class}_0000.wav")));
        assert!(ild("02_az+90") > 8.0, "{}", ild("02_az+90"));
        assert!(ild("00_az-90") < -8.0, "{}", ild("00_az-90"));
        assert!(ild("01_az+00").abs() < 0.5, "{}", ild("01_az+00"));
        let audio = crate::wav::read_wav(&out.join("01_az+00/01_az+00_0001.wav")).unwrap();
        assert_eq!((audio.sample_rate, audio.channels.len(), audio.frames()), (16_000, 2, 16_000));

        // Same seed, same bytes; another seed, other samples.
        let again = dir.join("again");
        spatialize(&cfg, &again).unwrap();
        let bytes = |root: &Path| std::fs::read(root.join("02_az+90/02_az+90_0001.wav")).unwrap();
        assert_eq!(bytes(&out), bytes(&again));
        let other = dir.join("other");
        spatialize(&SpatialConfig { seed: 5, ..cfg }, &other).unwrap();
        assert_ne!(bytes(&out), bytes(&other));
    }

    #[test]
    fn noise_and_reverberation_blur_the_level_difference() {
        let dir = TempDir::new("spatial-hard");
        let cfg = set(&dir);
        let hard = SpatialConfig { snr_db: Some(0.0), rt60: Some(0.4), ..cfg.clone() };
        spatialize(&cfg, &dir.join("clean")).unwrap();
        spatialize(&hard, &dir.join("hard")).unwrap();
        let ild = |root: &str| level_difference_db(&dir.join(root).join("02_az+90/02_az+90_0000.wav"));
        assert!(ild("hard") < ild("clean") - 3.0, "clean {} hard {}", ild("clean"), ild("hard"));
        assert!(ild("hard") > 0.0, "still left of centre: {}", ild("hard"));
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_file() {
        let dir = TempDir::new("spatial-bad");
        let cfg = set(&dir);
        // Not an HRIR set: a mono file.
        let e = spatialize(&SpatialConfig { hrir: dir.join("src.wav"), ..cfg.clone() }, &dir.join("x")).unwrap_err();
        assert!(e.to_string().contains("src.wav: has 1 channels; an HRIR set has 720"), "{e}");
        std::fs::write(dir.join("broken.oga"), b"OggS but not really").unwrap();
        let e = spatialize(&SpatialConfig { sources: vec![dir.join("broken.oga")], ..cfg.clone() }, &dir.join("y"))
            .unwrap_err();
        assert!(e.to_string().contains("broken.oga: not a readable Ogg Vorbis file"), "{e}");
        let e = spatialize(&SpatialConfig { sources: vec![], ..cfg }, &dir.join("z")).unwrap_err();
        assert_eq!(e.to_string(), "no source recordings");
    }
}
