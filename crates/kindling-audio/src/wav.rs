//! WAV decoding and the checks that make a file fit a configuration.
//!
//! hound parses the RIFF header; the data chunk is then converted in one tight loop per
//! channel rather than one call per sample. Integer samples are divided by 2^(bits-1), the
//! convention of soundfile and torchaudio (16-bit audio lands in [-1, 1 - 2^-15]); 32-bit float
//! samples pass through unclipped but must be finite. Layouts outside the common packed ones
//! (24 valid bits in 4-byte containers) are read through hound's sample iterator.
//!
//! (Over 450 lines: every WAV encoding and the pad/crop/mono policies, one concept; 191 of its
//! lines are its tests.)

use std::io::Cursor;
use std::path::Path;

use hound::SampleFormat;
use kindling_core::Issues;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AudioError;

/// Decoded audio, one vector per channel (planar), all channels the same length.
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// `channels[c][n]`: sample `n` of channel `c` (0 is left, 1 is right).
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }
}

/// Reads a WAV file of any channel count, sample rate and supported sample format (8, 16, 24 and
/// 32-bit integer PCM, 32-bit float).
pub fn read_wav(path: &Path) -> Result<Audio, AudioError> {
    let bytes = std::fs::read(path).map_err(|e| AudioError::io(path, e))?;
    decode_wav(path, &bytes)
}

/// Decodes the bytes of a WAV file already in memory; `path` only names the file in errors.
pub fn decode_wav(path: &Path, bytes: &[u8]) -> Result<Audio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::NotWav { path: path.to_owned(), message: "the file is empty".into() });
    }
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| header_error(path, e))?;
    let spec = reader.spec();
    let samples = reader.len() as usize;
    let channels = usize::from(spec.channels);
    // hound leaves the reader just past the data chunk's header, whose last four bytes are the
    // chunk's length; hound has checked it is a whole number of samples.
    let start = reader.into_inner().position() as usize;
    let data_len = start
        .checked_sub(4)
        .and_then(|at| bytes.get(at..start))
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize);
    if samples == 0 {
        return Err(AudioError::malformed(path, "contains no audio samples"));
    }
    let width = data_len / samples;
    if width == 0 {
        return Err(AudioError::malformed(path, "is damaged: its data chunk is shorter than its sample count"));
    }
    let available = bytes.len() - start;
    if available < data_len {
        return Err(AudioError::malformed(
            path,
            format!("is truncated: the header announces {data_len} bytes of audio but only {available} follow"),
        ));
    }
    let block = width * channels;
    if !data_len.is_multiple_of(block) {
        return Err(AudioError::malformed(
            path,
            format!("is damaged: {data_len} bytes of audio is not a whole number of {block}-byte frames"),
        ));
    }
    let frames = data_len / block;
    let data = &bytes[start..start + data_len];
    let planar = match (spec.sample_format, spec.bits_per_sample, width) {
        (SampleFormat::Int, 8, 1) => deinterleave::<1>(data, channels, |b| (f32::from(b[0]) - 128.0) / 128.0),
        (SampleFormat::Int, 16, 2) => {
            deinterleave::<2>(data, channels, |b| f32::from(i16::from_le_bytes(b)) * (1.0 / 32_768.0))
        }
        (SampleFormat::Int, 24, 3) => deinterleave::<3>(data, channels, |b| {
            // Place the three bytes in the top of an i32 and shift back, extending the sign.
            let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
            v as f32 * (1.0 / 8_388_608.0)
        }),
        (SampleFormat::Int, 32, 4) => {
            deinterleave::<4>(data, channels, |b| i32::from_le_bytes(b) as f32 * (1.0 / 2_147_483_648.0))
        }
        (SampleFormat::Float, 32, 4) => {
            let planar = deinterleave::<4>(data, channels, f32::from_le_bytes);
            check_finite(path, &planar)?;
            planar
        }
        _ => decode_with_hound(path, bytes, channels, frames)?,
    };
    Ok(Audio { sample_rate: spec.sample_rate, channels: planar })
}

fn header_error(path: &Path, e: hound::Error) -> AudioError {
    let message = match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the header is truncated (the file ends before the audio data starts)".to_owned()
        }
        hound::Error::IoError(io) => io.to_string(),
        hound::Error::FormatError(m) => m.to_owned(),
        hound::Error::Unsupported => {
            "uses an unsupported encoding (compressed, or an unknown sample format); convert it to PCM".to_owned()
        }
        other => other.to_string(),
    };
    AudioError::NotWav { path: path.to_owned(), message }
}

/// Splits interleaved frames of `B`-byte samples into one vector per channel.
fn deinterleave<const B: usize>(data: &[u8], channels: usize, convert: impl Fn([u8; B]) -> f32) -> Vec<Vec<f32>> {
    let block = B * channels;
    let frames = data.len() / block;
    if channels == 2 {
        // The common case, in one pass over the data.
        let (mut left, mut right) = (vec![0.0; frames], vec![0.0; frames]);
        for ((frame, l), r) in data.chunks_exact(block).zip(&mut left).zip(&mut right) {
            let (a, b) = frame.split_at(B);
            *l = convert(a.try_into().unwrap_or([0; B]));
            *r = convert(b.try_into().unwrap_or([0; B]));
        }
        return vec![left, right];
    }
    (0..channels)
        .map(|c| {
            data.chunks_exact(block)
                .map(|frame| convert(frame[c * B..(c + 1) * B].try_into().unwrap_or([0; B])))
                .collect()
        })
        .collect()
}

/// The slow, general path: hound's per-sample reader, for layouts such as 24 valid bits in
/// 4-byte containers.
fn decode_with_hound(path: &Path, bytes: &[u8], channels: usize, frames: usize) -> Result<Vec<Vec<f32>>, AudioError> {
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| header_error(path, e))?;
    let spec = reader.spec();
    let mut planar = vec![Vec::with_capacity(frames); channels];
    let unsupported = |e: hound::Error| {
        AudioError::malformed(
            path,
            format!(
                "has an unsupported sample layout ({} {}-bit samples: {e}); convert it to 16-bit PCM",
                if spec.sample_format == SampleFormat::Float { "float" } else { "integer" },
                spec.bits_per_sample
            ),
        )
    };
    if spec.sample_format == SampleFormat::Float {
        for (i, s) in reader.samples::<f32>().enumerate() {
            planar[i % channels].push(s.map_err(unsupported)?);
        }
        check_finite(path, &planar)?;
    } else {
        let scale = 1.0 / 2f64.powi(i32::from(spec.bits_per_sample) - 1);
        for (i, s) in reader.samples::<i32>().enumerate() {
            planar[i % channels].push((f64::from(s.map_err(unsupported)?) * scale) as f32);
        }
    }
    Ok(planar)
}

fn check_finite(path: &Path, planar: &[Vec<f32>]) -> Result<(), AudioError> {
    for (c, channel) in planar.iter().enumerate() {
        if let Some(n) = channel.iter().position(|x| !x.is_finite()) {
            return Err(AudioError::malformed(path, format!("channel {c} has a non-finite sample at frame {n}")));
        }
    }
    Ok(())
}

/// What a WAV file must look like to be used, and how to make near misses fit.
///
/// ```yaml
/// channels: 2            # default 2
/// sample_rate: 16000     # default 16000; files at other rates are an error (no resampling)
/// duration: 6.1          # seconds; absent: any length
/// length: pad_or_crop    # exact (default) | pad | crop | pad_or_crop
/// mono: duplicate        # error (default) | duplicate
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WavExpect {
    /// Channels the features need (2: stereo).
    #[schemars(range(min = 1, max = 2))]
    pub channels: u16,
    /// Samples per second every file must have.
    #[schemars(range(min = 1))]
    pub sample_rate: u32,
    /// Length in seconds; `round(duration * sample_rate)` samples. Absent: any length.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub duration: Option<f64>,
    /// What to do with a file whose length differs from `duration`.
    pub length: LengthPolicy,
    /// What to do with a mono file when more channels are expected.
    pub mono: MonoPolicy,
}

impl Default for WavExpect {
    fn default() -> Self {
        Self { channels: 2, sample_rate: 16_000, duration: None, length: LengthPolicy::Exact, mono: MonoPolicy::Error }
    }
}

/// How a file whose length differs from the expected `duration` is treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LengthPolicy {
    /// Any other length is an error.
    #[default]
    Exact,
    /// Shorter files get zeros appended at the end; longer files are an error.
    Pad,
    /// Longer files keep their first `duration` seconds; shorter files are an error.
    Crop,
    /// Shorter files are padded and longer ones cropped, as above.
    PadOrCrop,
}

/// How a mono file is treated when more channels are expected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonoPolicy {
    /// A mono file is an error.
    #[default]
    Error,
    /// The one channel is copied to every expected channel (left and right).
    Duplicate,
}

impl WavExpect {
    /// Records every problem with these settings (paths relative to this block).
    pub fn check(&self, issues: &mut Issues) {
        issues.require(self.channels >= 1, "channels", "must be at least 1");
        issues.require(self.sample_rate >= 1, "sample_rate", "must be a positive number of samples per second");
        match self.duration {
            Some(d) if !(d.is_finite() && d > 0.0) => {
                issues.push("duration", format!("must be a positive number of seconds, got {d}"));
            }
            Some(_) if self.target_frames() == Some(0) => {
                issues.push("duration", "is shorter than one sample at this sample rate");
            }
            None if self.length != LengthPolicy::Exact => {
                issues.push("length", "pads or crops to `duration`, which is not set");
            }
            _ => {}
        }
    }

    /// Samples per channel every file ends up with, when `duration` is set.
    pub fn target_frames(&self) -> Option<usize> {
        self.duration.map(|d| (d * f64::from(self.sample_rate)).round() as usize)
    }

    /// Reads `path` and makes it fit (see [`WavExpect::conform`]).
    pub fn read(&self, path: &Path) -> Result<Audio, AudioError> {
        self.conform(path, read_wav(path)?)
    }

    /// Decodes `bytes` (the content of `path`) and makes it fit.
    pub fn decode(&self, path: &Path, bytes: &[u8]) -> Result<Audio, AudioError> {
        self.conform(path, decode_wav(path, bytes)?)
    }

    /// Checks channels, sample rate and length, duplicating a mono channel, padding or cropping
    /// where the settings allow it; anything else is an error that names `path`.
    pub fn conform(&self, path: &Path, mut audio: Audio) -> Result<Audio, AudioError> {
        let want = usize::from(self.channels);
        let have = audio.channels.len();
        if have != want {
            if have == 1 && self.mono == MonoPolicy::Duplicate {
                let mono = audio.channels.remove(0);
                audio.channels = vec![mono; want];
            } else if have == 1 {
                return Err(AudioError::mismatch(
                    path,
                    format!("is mono, expected {want} channels (set `mono: duplicate` to copy it to every channel)"),
                ));
            } else {
                return Err(AudioError::mismatch(path, format!("has {have} channels, expected {want}")));
            }
        }
        if audio.sample_rate != self.sample_rate {
            return Err(AudioError::mismatch(
                path,
                format!(
                    "has a sample rate of {} Hz, expected {} Hz (resample it first; files are not resampled)",
                    audio.sample_rate, self.sample_rate
                ),
            ));
        }
        if let Some(target) = self.target_frames() {
            let frames = audio.frames();
            let (pad, crop) = match self.length {
                LengthPolicy::Exact => (false, false),
                LengthPolicy::Pad => (true, false),
                LengthPolicy::Crop => (false, true),
                LengthPolicy::PadOrCrop => (true, true),
            };
            if (frames < target && !pad) || (frames > target && !crop) {
                let hint = if frames < target { "pad" } else { "crop" };
                return Err(AudioError::mismatch(
                    path,
                    format!(
                        "lasts {:.4} s ({frames} samples), expected {} s ({target} samples); set `length: {hint}` or \
                         `length: pad_or_crop` to accept other lengths",
                        audio.duration(),
                        self.duration.unwrap_or_default(),
                    ),
                ));
            }
            for channel in &mut audio.channels {
                channel.resize(target, 0.0);
            }
        }
        Ok(audio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TempDir, write_float_wav, write_int_wav};

    /// Writes interleaved stereo ramps at `bits`, reads them back and compares with `expected`.
    fn check_roundtrip(bits: u16, raw: &[i32], expected: &[f32]) {
        let dir = TempDir::new("wav-bits");
        let path = dir.join("x.wav");
        write_int_wav(&path, 1, 8000, bits, raw);
        let audio = read_wav(&path).unwrap();
        assert_eq!(audio.sample_rate, 8000);
        assert_eq!(audio.channels.len(), 1);
        assert_eq!(audio.channels[0], expected, "{bits}-bit");
    }

    #[test]
    fn integer_depths_scale_to_unit_range() {
        check_roundtrip(8, &[-128, 0, 64, 127], &[-1.0, 0.0, 0.5, 127.0 / 128.0]);
        check_roundtrip(16, &[-32768, 0, 16384, 32767], &[-1.0, 0.0, 0.5, 32767.0 / 32768.0]);
        check_roundtrip(
            24,
            &[-8_388_608, -1, 4_194_304, 8_388_607],
            &[-1.0, -1.0 / 8_388_608.0, 0.5, 8_388_607.0 / 8_388_608.0],
        );
        check_roundtrip(32, &[i32::MIN, 0, 1 << 30], &[-1.0, 0.0, 0.5]);
    }

    #[test]
    fn stereo_is_split_per_channel_and_matches_hound() {
        let dir = TempDir::new("wav-stereo");
        for bits in [8u16, 16, 24, 32] {
            let path = dir.join(&format!("s{bits}.wav"));
            let max = (1i64 << (bits - 1)) - 1;
            let raw: Vec<i32> = (0..200i64).map(|i| ((i * 7919) % (2 * max) - max) as i32).collect();
            write_int_wav(&path, 2, 16_000, bits, &raw);
            let audio = read_wav(&path).unwrap();
            let mut reader = hound::WavReader::open(&path).unwrap();
            let via_hound: Vec<i32> = reader.samples::<i32>().map(Result::unwrap).collect();
            let scale = (1i64 << (bits - 1)) as f32;
            for (i, &s) in via_hound.iter().enumerate() {
                assert_eq!(audio.channels[i % 2][i / 2], s as f32 / scale, "{bits}-bit sample {i}");
            }
        }
    }

    #[test]
    fn float_samples_pass_through_and_non_finite_ones_are_refused() {
        let dir = TempDir::new("wav-float");
        let path = dir.join("f.wav");
        write_float_wav(&path, 2, 22_050, &[0.25, -0.5, 1.5, -2.0]);
        let audio = read_wav(&path).unwrap();
        assert_eq!(audio.sample_rate, 22_050);
        assert_eq!(audio.channels, vec![vec![0.25, 1.5], vec![-0.5, -2.0]]);
        write_float_wav(&path, 1, 22_050, &[0.0, f32::NAN]);
        let err = read_wav(&path).unwrap_err().to_string();
        assert!(err.contains("f.wav") && err.contains("non-finite"), "{err}");
    }

    #[test]
    fn hound_path_reads_24_bits_in_4_byte_containers() {
        let dir = TempDir::new("wav-24in32");
        let path = dir.join("x.wav");
        let spec =
            hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 24, sample_format: SampleFormat::Int };
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut w = hound::WavWriter::new_with_spec_ex(file, hound::WavSpecEx { spec, bytes_per_sample: 4 }).unwrap();
        for s in [4_194_304, -8_388_608] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(read_wav(&path).unwrap().channels, vec![vec![0.5, -1.0]]);
    }

    /// Expects an error whose message names the file and contains every word of `expected`.
    fn check_error(result: Result<Audio, AudioError>, path: &Path, expected: &[&str]) {
        let err = result.expect_err("an error");
        assert_eq!(err.path(), Some(path));
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        for word in expected {
            assert!(message.contains(word), "`{message}` lacks `{word}`");
        }
    }

    #[test]
    fn bad_files_are_errors_naming_the_file_never_panics() {
        let dir = TempDir::new("wav-bad");
        let good = dir.join("good.wav");
        write_int_wav(&good, 2, 16_000, 16, &(0..2000).collect::<Vec<_>>());
        let bytes = std::fs::read(&good).unwrap();

        let empty = dir.join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        check_error(read_wav(&empty), &empty, &["empty"]);

        let garbage = dir.join("garbage.wav");
        std::fs::write(&garbage, b"this is a text file, not audio at all").unwrap();
        check_error(read_wav(&garbage), &garbage, &["not a readable WAV", "RIFF"]);

        let missing = dir.join("missing.wav");
        check_error(read_wav(&missing), &missing, &[]);

        // Every truncation point: inside the header, and inside the data.
        let cut = dir.join("cut.wav");
        for len in (1..bytes.len()).step_by(7) {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            check_error(read_wav(&cut), &cut, &[]);
        }
        std::fs::write(&cut, &bytes[..bytes.len() - 2]).unwrap();
        check_error(read_wav(&cut), &cut, &["truncated"]);

        // Random damage anywhere in the header gives an error or a file, never a panic.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = bytes.clone();
            let at = (state % 64) as usize;
            damaged[at] = (state >> 32) as u8;
            let _ = decode_wav(&cut, &damaged);
        }

        let no_samples = dir.join("nothing.wav");
        write_int_wav(&no_samples, 2, 16_000, 16, &[]);
        check_error(read_wav(&no_samples), &no_samples, &["no audio samples"]);
    }

    #[test]
    fn expectations_check_channels_rate_and_length() {
        let dir = TempDir::new("wav-expect");
        let expect = WavExpect { duration: Some(0.01), ..WavExpect::default() };
        assert_eq!(expect.target_frames(), Some(160));

        let mono = dir.join("mono.wav");
        write_int_wav(&mono, 1, 16_000, 16, &vec![100; 160]);
        check_error(expect.read(&mono), &mono, &["mono", "mono: duplicate"]);
        let dup = WavExpect { mono: MonoPolicy::Duplicate, ..expect.clone() }.read(&mono).unwrap();
        assert_eq!(dup.channels.len(), 2);
        assert_eq!(dup.channels[0], dup.channels[1]);

        let quad = dir.join("quad.wav");
        write_int_wav(&quad, 4, 16_000, 16, &vec![0; 640]);
        check_error(expect.read(&quad), &quad, &["4 channels", "expected 2"]);

        let rate = dir.join("rate.wav");
        write_int_wav(&rate, 2, 44_100, 16, &vec![0; 320]);
        check_error(expect.read(&rate), &rate, &["44100 Hz", "16000 Hz"]);

        let short = dir.join("short.wav");
        write_int_wav(&short, 2, 16_000, 16, &vec![1000; 100]);
        check_error(expect.read(&short), &short, &["50 samples", "160 samples", "length: pad"]);
        let padded = WavExpect { length: LengthPolicy::Pad, ..expect.clone() }.read(&short).unwrap();
        assert_eq!(padded.frames(), 160);
        assert!(padded.channels[0][..50].iter().all(|&x| x > 0.0));
        assert!(padded.channels[0][50..].iter().all(|&x| x == 0.0));

        let long = dir.join("long.wav");
        let ramp: Vec<i32> = (0..400).collect();
        write_int_wav(&long, 2, 16_000, 16, &ramp);
        check_error(WavExpect { length: LengthPolicy::Pad, ..expect.clone() }.read(&long), &long, &["length: crop"]);
        let cropped = WavExpect { length: LengthPolicy::PadOrCrop, ..expect.clone() }.read(&long).unwrap();
        assert_eq!(cropped.frames(), 160);
        // Cropping keeps the start.
        assert_eq!(cropped.channels[0][0], 0.0);
        assert_eq!(cropped.channels[1][0], 1.0 / 32768.0);
    }

    #[test]
    fn settings_parse_strictly_and_check_every_field() {
        let parsed: WavExpect = serde_json::from_str(
            r#"{"channels": 2, "sample_rate": 16000, "duration": 6.1, "length": "pad_or_crop", "mono": "duplicate"}"#,
        )
        .unwrap();
        assert_eq!(parsed.target_frames(), Some(97_600));
        assert_eq!(parsed.length, LengthPolicy::PadOrCrop);
        assert!(serde_json::from_str::<WavExpect>(r#"{"chanels": 2}"#).is_err());
        assert!(serde_json::from_str::<WavExpect>(r#"{"length": "stretch"}"#).is_err());

        let bad = WavExpect { channels: 0, sample_rate: 0, duration: Some(-1.0), ..WavExpect::default() };
        let mut issues = Issues::under("wav");
        bad.check(&mut issues);
        let messages: Vec<String> = issues.into_vec().iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[2].starts_with("wav.duration"));
        let mut issues = Issues::default();
        WavExpect { length: LengthPolicy::Pad, ..WavExpect::default() }.check(&mut issues);
        assert_eq!(issues.into_vec()[0].path, "length");
    }
}
