//! Times an image folder through a transform pipeline into shuffled training batches of 64 on
//! the CPU device (what `cargo xtask bench images` runs), with and without augmentation:
//!
//! - cold: list the folder, decode every image (`ImageStore::decode`), then one full pass of
//!   `Batches::train` (the background loader fills each batch in parallel);
//! - warm: a second pass (epoch 2) over the images already decoded in memory.
//!
//! Prints one JSON line: images/s of each, and the seconds of each part of the cold figure.
//! `--profile` adds, on stderr, one thread's time per image of decoding, `ToTensor`, seeding and
//! each augmentation step, and the samples alone (every image through the pipeline in
//! parallel, into one buffer, no batches or tensors).
//!
//! `cargo run --release -p kindling-train --example bench_images -- <image-folder> [--profile]`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use kindling_augment::{Image, Pipeline, rng_for};
use kindling_core::{DeviceChoice, LabelledFiles, SampleSource, Split, rng_from_seed};
use kindling_models::device;
use kindling_train::Batches;
use kindling_vision::{IMAGE_EXTENSIONS, ImageSource, ImageStore};
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// torchvision's `Resize(34), CenterCrop(28), RandomHorizontalFlip(), RandomRotation(15),
/// ToTensor(), Normalize(...)`: the sizing steps apply to every split, as they do there.
const AUGMENTED: &str = r#"[
    {"resize": 34, "apply": "all"},
    {"center_crop": 28, "apply": "all"},
    {"random_horizontal_flip": {}},
    {"random_rotation": {"degrees": 15}},
    {"normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
]"#;

/// `ToTensor(), Normalize(...)` only.
const PLAIN: &str = r#"[{"normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}]"#;

const BATCH: usize = 64;
const SHAPE: [usize; 3] = [3, 28, 28];
const SEED: u64 = 0;

/// Seconds of each part of one variant's run.
#[derive(Debug)]
struct Timings {
    images: usize,
    classes: usize,
    list: f64,
    decode: f64,
    first_pass: f64,
    second_pass: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut root = None;
    let mut profile = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--profile" => profile = true,
            _ if root.is_none() => root = Some(PathBuf::from(arg)),
            other => return Err(format!("unexpected argument {other}").into()),
        }
    }
    let root = root.ok_or("usage: bench_images <image-folder> [--profile]")?;
    let augmented: Arc<Pipeline> = Arc::new(serde_json::from_str(AUGMENTED)?);
    let plain: Arc<Pipeline> = Arc::new(serde_json::from_str(PLAIN)?);

    let a = run(&root, &augmented)?;
    let p = run(&root, &plain)?;
    let cold = |t: &Timings| t.images as f64 / (t.list + t.decode + t.first_pass);
    let warm = |t: &Timings| t.images as f64 / t.second_pass;
    println!(
        "{{\"images\": {}, \"classes\": {}, \"batch\": {BATCH}, \"threads\": {}, \
         \"augmented_cold_images_per_s\": {:.1}, \"augmented_warm_images_per_s\": {:.1}, \
         \"plain_cold_images_per_s\": {:.1}, \"plain_warm_images_per_s\": {:.1}, \
         \"augmented_s\": {{\"list\": {:.4}, \"decode\": {:.4}, \"first_pass\": {:.4}, \"second_pass\": {:.4}}}, \
         \"plain_s\": {{\"list\": {:.4}, \"decode\": {:.4}, \"first_pass\": {:.4}, \"second_pass\": {:.4}}}}}",
        a.images,
        a.classes,
        rayon::current_num_threads(),
        cold(&a),
        warm(&a),
        cold(&p),
        warm(&p),
        a.list,
        a.decode,
        a.first_pass,
        a.second_pass,
        p.list,
        p.decode,
        p.first_pass,
        p.second_pass,
    );
    if profile {
        profile_parts(&root, &augmented, &plain)?;
    }
    Ok(())
}

/// Lists and decodes `root`, then makes two shuffled training passes through `pipeline`.
fn run(root: &Path, pipeline: &Arc<Pipeline>) -> Result<Timings, Box<dyn std::error::Error>> {
    let dev = device::resolve(DeviceChoice::Cpu)?.device;
    let start = Instant::now();
    let (listed, _empty) = LabelledFiles::from_folder(root, &IMAGE_EXTENSIONS, false)?;
    let list = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let (store, kept, skipped) = ImageStore::decode(&listed.paths(), 3, 1 << 30, false)?;
    let decode = start.elapsed().as_secs_f64();
    assert!(skipped.is_empty() && store.in_memory());
    let labels: Vec<u32> = kept.iter().map(|&i| listed.items[i].1).collect();
    let n = labels.len();
    let source = ImageSource::new(Arc::new(store), (0..n).collect(), Arc::clone(pipeline), SEED, SHAPE);
    let split = Split { x: Vec::new(), y: labels, source: Some(Arc::new(source)) };

    let pass = |epoch: usize| -> Result<f64, String> {
        let start = Instant::now();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng_from_seed(SEED, &format!("shuffle/{epoch}")));
        let mut seen = 0;
        for batch in Batches::train(&split, SHAPE, order, BATCH, epoch, &dev) {
            let (images, labels) = batch?;
            let [b, c, h, w] = images.dims();
            assert_eq!([c, h, w], SHAPE);
            assert_eq!(labels.dims(), [b]);
            seen += b;
        }
        assert_eq!(seen, n);
        Ok(start.elapsed().as_secs_f64())
    };
    let first_pass = pass(1)?;
    let second_pass = pass(2)?;
    Ok(Timings { images: n, classes: listed.classes.len(), list, decode, first_pass, second_pass })
}

/// Where a pass's time goes: the samples alone (in parallel, no batches or tensors), and one
/// thread's microseconds per image for decoding, `ToTensor` and each pipeline.
fn profile_parts(
    root: &Path,
    augmented: &Arc<Pipeline>,
    plain: &Arc<Pipeline>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (listed, _) = LabelledFiles::from_folder(root, &IMAGE_EXTENSIONS, false)?;
    let paths = listed.paths();
    let n = paths.len();
    let per: usize = SHAPE.iter().product();

    let start = Instant::now();
    for p in &paths {
        kindling_vision::decode_file(p, 3)?;
    }
    let decode_one = start.elapsed().as_secs_f64() / n as f64;
    let (store, _, _) = ImageStore::decode(&paths, 3, 1 << 30, false)?;
    let store = Arc::new(store);
    let start = Instant::now();
    for i in 0..n {
        store.tensor(i)?;
    }
    let to_tensor_one = start.elapsed().as_secs_f64() / n as f64;
    eprintln!("one thread, per image: decode {:.1} us, ToTensor {:.2} us", decode_one * 1e6, to_tensor_one * 1e6);

    // Each augmentation step alone, on what the steps before it made.
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(rng_for(SEED, 1, i));
    }
    eprintln!("  seeding a generator per sample: {:.2} us", start.elapsed().as_secs_f64() / n as f64 * 1e6);
    let mut images: Vec<Image> = (0..n).map(|i| store.tensor(i)).collect::<Result<_, _>>()?;
    let mut rng = rng_for(SEED, 1, 0);
    for step in &augmented.steps {
        let one = Pipeline::new(vec![step.clone()]);
        let start = Instant::now();
        images = images.into_iter().map(|im| one.apply(im, true, &mut rng)).collect();
        eprintln!("  {}: {:.2} us", step.transform.name(), start.elapsed().as_secs_f64() / n as f64 * 1e6);
    }

    for (name, pipeline) in [("augmented", augmented), ("plain", plain)] {
        let source = ImageSource::new(Arc::clone(&store), (0..n).collect(), Arc::clone(pipeline), SEED, SHAPE);
        let mut out = vec![0.0f32; per];
        let start = Instant::now();
        for i in 0..n {
            source.load_train(i, 1, &mut out)?;
        }
        let one = start.elapsed().as_secs_f64() / n as f64;
        // Touched first, so that the timing does not count the pages' first faults.
        let mut all = vec![1.0f32; n * per];
        let start = Instant::now();
        all.par_chunks_mut(per).enumerate().try_for_each(|(i, slot)| source.load_train(i, 1, slot))?;
        let parallel = start.elapsed().as_secs_f64();
        eprintln!(
            "{name}: one thread {:.1} us per image (ToTensor + pipeline); all samples in parallel, no batches: {:.0} images/s",
            one * 1e6,
            n as f64 / parallel
        );
    }
    Ok(())
}
