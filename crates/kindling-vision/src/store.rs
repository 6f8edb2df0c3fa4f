//! Decoded images held for training, and the [`SampleSource`] that turns them into tensors
//! through a transform pipeline.
//!
//! An [`ImageStore`] decodes every file once, in parallel, when the data set is opened: that
//! finds every undecodable file before training starts, and keeps the pixels in memory when
//! they fit the cache budget (Fashion-MNIST as RGB is 165 MB), so later epochs never decode
//! again. Sets larger than the budget are decoded again from their files on every read.

use std::path::PathBuf;
use std::sync::Arc;

use kindling_augment::{Image, Pipeline, rng_for, to_tensor};
use kindling_core::SampleSource;
use rayon::prelude::*;

use crate::decode::{Pixels, decode_file};

/// Images by index: in memory, or re-decoded from their files.
#[derive(Debug)]
pub struct ImageStore {
    channels: usize,
    /// Where each image came from, for error messages (a path, or `file#record`).
    names: Vec<String>,
    memory: Option<Memory>,
    /// The files, when the images are decoded on every read.
    files: Vec<PathBuf>,
}

/// Interleaved 8-bit pixels of every image, back to back.
#[derive(Debug)]
struct Memory {
    /// `(height, width)` of each image.
    sizes: Vec<(usize, usize)>,
    /// Start of each image in `data`.
    offsets: Vec<usize>,
    data: Vec<u8>,
}

/// A file that could not be decoded, and why.
pub type Skipped = (PathBuf, String);

impl ImageStore {
    /// `count` images of `height x width x channels` bytes each, back to back in `pixels`
    /// (IDX and CIFAR sets); `name(i)` says where image `i` came from.
    pub fn from_pixels(
        pixels: Vec<u8>,
        count: usize,
        [height, width, channels]: [usize; 3],
        name: impl Fn(usize) -> String,
    ) -> Self {
        let per = height * width * channels;
        debug_assert_eq!(pixels.len(), count * per);
        let memory = Memory {
            sizes: vec![(height, width); count],
            offsets: (0..count).map(|i| i * per).collect(),
            data: pixels,
        };
        Self { channels, names: (0..count).map(name).collect(), memory: Some(memory), files: Vec::new() }
    }

    /// Decodes `files` to `channels` in parallel. With `skip_errors`, undecodable files are
    /// left out and returned; otherwise the first one (in file order) is the error. The
    /// returned indices say which files the store's images are. Pixels stay in memory when
    /// they total at most `cache_bytes`; past that, the rest are only checked, and the store
    /// decodes from the files on every read. Files are decoded a chunk at a time, so memory
    /// never holds much more than the budget.
    pub fn decode(
        files: &[PathBuf],
        channels: usize,
        cache_bytes: usize,
        skip_errors: bool,
    ) -> Result<(Self, Vec<usize>, Vec<Skipped>), String> {
        const CHUNK: usize = 1024;
        let mut kept = Vec::with_capacity(files.len());
        let mut skipped = Vec::new();
        let mut memory = Some(Memory { sizes: Vec::new(), offsets: Vec::new(), data: Vec::new() });
        for (c, chunk) in files.chunks(CHUNK).enumerate() {
            let decoded: Vec<Result<Pixels, String>> =
                chunk.par_iter().map(|p| decode_file(p, channels).map_err(|e| e.to_string())).collect();
            for (k, d) in decoded.into_iter().enumerate() {
                let i = c * CHUNK + k;
                match d {
                    Ok(px) => {
                        kept.push(i);
                        if memory.as_ref().is_some_and(|m| m.data.len() + px.data.len() > cache_bytes) {
                            memory = None;
                        }
                        if let Some(m) = memory.as_mut() {
                            m.sizes.push((px.height, px.width));
                            m.offsets.push(m.data.len());
                            m.data.extend_from_slice(&px.data);
                        }
                    }
                    Err(e) if skip_errors => skipped.push((files[i].clone(), e)),
                    Err(e) => return Err(e),
                }
            }
        }
        let kept_files: Vec<PathBuf> = kept.iter().map(|&i| files[i].clone()).collect();
        let names = kept_files.iter().map(|p| p.display().to_string()).collect();
        let files = if memory.is_some() { Vec::new() } else { kept_files };
        Ok((Self { channels, names, memory, files }, kept, skipped))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the store holds no image.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the pixels are held in memory.
    pub fn in_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Channels of every image.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Where image `i` came from.
    pub fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", String::as_str)
    }

    /// `(height, width)` of image `i` when the pixels are held in memory.
    pub fn size(&self, i: usize) -> Option<(usize, usize)> {
        self.memory.as_ref()?.sizes.get(i).copied()
    }

    /// Image `i` after torchvision's `ToTensor`: CHW, values in [0, 1].
    pub fn tensor(&self, i: usize) -> Result<Image, String> {
        match &self.memory {
            Some(m) => {
                let (h, w) = *m.sizes.get(i).ok_or_else(|| format!("no image {i} in the data set"))?;
                let start = m.offsets[i];
                Ok(to_tensor(&m.data[start..start + h * w * self.channels], h, w, self.channels))
            }
            None => {
                let path = self.files.get(i).ok_or_else(|| format!("no image {i} in the data set"))?;
                let px = decode_file(path, self.channels).map_err(|e| e.to_string())?;
                Ok(to_tensor(&px.data, px.height, px.width, px.channels))
            }
        }
    }
}

/// The samples of one split: images of a store through a transform pipeline.
#[derive(Debug)]
pub struct ImageSource {
    store: Arc<ImageStore>,
    /// Store index of each sample of the split.
    index: Vec<usize>,
    pipeline: Arc<Pipeline>,
    seed: u64,
    shape: [usize; 3],
}

impl ImageSource {
    /// Samples `index` of `store`, transformed by `pipeline` (random draws seeded by `seed`,
    /// the epoch and the store index), each checked to come out as `shape`.
    pub fn new(
        store: Arc<ImageStore>,
        index: Vec<usize>,
        pipeline: Arc<Pipeline>,
        seed: u64,
        shape: [usize; 3],
    ) -> Self {
        Self { store, index, pipeline, seed, shape }
    }

    /// Sample `i` as training sees it in `epoch`, or as evaluation sees it (`None`).
    pub fn sample(&self, i: usize, epoch: Option<usize>) -> Result<Image, String> {
        let k = *self.index.get(i).ok_or_else(|| format!("no sample {i} in the split"))?;
        let image = self.store.tensor(k)?;
        let mut rng = rng_for(self.seed, epoch.unwrap_or(0), k);
        let out = self.pipeline.apply(image, epoch.is_some(), &mut rng);
        let got = [out.channels, out.height, out.width];
        if got != self.shape {
            return Err(format!(
                "{}: is {}x{}x{} after the transforms, but the data set's samples are {}x{}x{} \
                 (add resize and center_crop to the transforms so every image comes out the same size)",
                self.store.name(k),
                got[0],
                got[1],
                got[2],
                self.shape[0],
                self.shape[1],
                self.shape[2]
            ));
        }
        Ok(out)
    }

    fn write(&self, i: usize, epoch: Option<usize>, out: &mut [f32]) -> Result<(), String> {
        let image = self.sample(i, epoch)?;
        if image.data.len() != out.len() {
            return Err(format!("sample {i} has {} values, the batch expects {}", image.data.len(), out.len()));
        }
        out.copy_from_slice(&image.data);
        Ok(())
    }
}

impl SampleSource for ImageSource {
    fn load(&self, i: usize, out: &mut [f32]) -> Result<(), String> {
        self.write(i, None, out)
    }

    fn load_train(&self, i: usize, epoch: usize, out: &mut [f32]) -> Result<(), String> {
        self.write(i, Some(epoch), out)
    }
}
