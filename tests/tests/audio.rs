//! The audio path end to end on a tiny stereo direction set made the way the real one is
//! (`kindling data spatialize`), with synthetic HRIRs: WAV -> cached STFT features -> the
//! stereo CNN -> a run directory; the cache serves the second run; a damaged file is named.

use std::path::{Path, PathBuf};

/// A 3-direction set of 4 one-second samples each, and a pipeline over it.
fn tiny_set(root: &Path) -> PathBuf {
    tests::tiny_stereo_set(root, 3, 4);
    let pipeline = root.join("audio.yaml");
    std::fs::write(
        &pipeline,
        "name: tiny-audio\nseed: 3\ndevice: cpu\nstages:\n  - stage: audio_dataset\n    with:\n      \
         manifest: set/manifest.csv\n      valid_fraction: 0.25\n      features:\n        \
         wav: {channels: 2, sample_rate: 16000, duration: 1.0, length: pad_or_crop}\n        \
         stft: {n_fft: 512, hop_length: 256}\n      cache_dir: cache\n  - stage: model\n    with: {preset: stereo_cnn}\n  \
         - stage: train\n    with: {epochs: 1, batch_size: 4, optimizer: {name: adam, lr: 0.001}}\n",
    )
    .unwrap();
    pipeline
}

/// Plans `pipeline`, checks that its data are 4 planes of 1 s (1 + 16000/256 = 63 frames, 257
/// bins) in 3 classes, runs it under `root/runs` and returns the run and its `metrics.json`.
fn run_four_planes_of_three_classes(
    pipeline: &Path,
    registry: &kindling_core::Registry,
    root: &Path,
) -> (kindling_pipeline::RunOutcome, serde_json::Value) {
    let plan = kindling_pipeline::load(pipeline, registry, &[]).unwrap_or_else(|e| panic!("{e}"));
    let spec = plan.facts.get::<kindling_core::DataSpec>().unwrap();
    assert_eq!((spec.shape.clone(), spec.classes), (vec![4, 257, 63], 3));
    let out = kindling_pipeline::run(plan, &root.join("runs")).unwrap_or_else(|e| panic!("{e}"));
    let metrics = serde_json::from_str(&std::fs::read_to_string(out.run_dir.join("metrics.json")).unwrap()).unwrap();
    (out, metrics)
}

fn cache_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("cache")).map_or(0, |d| {
        d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "kfeat"))).count()
    })
}

#[test]
fn a_tiny_stereo_set_trains_through_the_feature_cache() {
    let root = tests::scratch("audio");
    let pipeline = tiny_set(&root);
    let registry = tests::registry();
    let (out, metrics) = run_four_planes_of_three_classes(&pipeline, &registry, &root);
    assert_eq!(metrics["final_epoch"]["train"]["samples"], 9);
    assert_eq!(metrics["final_epoch"]["valid"]["samples"], 3);
    assert_eq!(cache_files(&root), 12, "one entry per file");
    // The gallery shows mistaken samples as spectrograms (colour-mapped), not as grey images.
    let gallery = image::open(out.run_dir.join("misclassified.png")).unwrap().to_rgb8();
    if metrics["final_epoch"]["valid"]["accuracy"].as_f64().unwrap() < 1.0 {
        let coloured = gallery.pixels().filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 30).count();
        assert!(coloured > 500, "no spectrogram thumbnails in misclassified.png ({coloured} px)");
    }
    let report = std::fs::read_to_string(out.run_dir.join("report.html")).unwrap();
    assert_eq!(report.matches("<img").count(), 4, "curves, 2 confusions, mistakes");

    // A second run reads the cache; a changed file gets a new entry, a damaged one is named.
    let plan = kindling_pipeline::load(&pipeline, &registry, &[]).unwrap();
    kindling_pipeline::run(plan, &root.join("runs")).unwrap();
    assert_eq!(cache_files(&root), 12, "nothing recomputed");
    let victim = root.join("set/01_az+00/01_az+00_0002.wav");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 3]).unwrap();
    let plan = kindling_pipeline::load(&pipeline, &registry, &[]).unwrap();
    let err = kindling_pipeline::run(plan, &root.join("runs")).unwrap_err().to_string();
    assert!(err.contains("1 of 12 audio files could not be used"), "{err}");
    assert!(err.contains("01_az+00_0002.wav"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn audio_configuration_problems_are_found_before_any_compute() {
    let root = tests::scratch("audio-validate");
    let pipeline = tiny_set(&root);
    let registry = tests::registry();
    let set = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let problem = |sets: &[&str]| kindling_pipeline::load(&pipeline, &registry, &set(sets)).unwrap_err().to_string();
    let err = problem(&["audio_dataset.features.stft.n_fft=0"]);
    assert!(err.contains("stages[0].with.features.stft.n_fft: must be at least 2, got 0"), "{err}");
    let err = problem(&["audio_dataset.manifest=nowhere.csv"]);
    assert!(err.contains("stages[0].with.manifest:") && err.contains("nowhere.csv"), "{err}");
    let err = problem(&["audio_dataset.features.wav={channels: 2, sample_rate: 16000}"]);
    assert!(err.contains("stages[0].with.features.wav.duration: set a duration"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn spec_augment_masks_training_reads_per_epoch_and_leaves_evaluation_alone() {
    let root = tests::scratch("audio-specaugment");
    let pipeline = tiny_set(&root);
    let registry = tests::registry();
    let set = ["audio_dataset.spec_augment={freq_mask_param: 40, time_mask_param: 20, freq_masks: 2, time_masks: 2}"
        .to_owned()];
    let plan = kindling_pipeline::load(&pipeline, &registry, &set).unwrap_or_else(|e| panic!("{e}"));
    let data = kindling_pipeline::load_data(plan).unwrap_or_else(|e| panic!("{e}"));
    let per: usize = data.shape.iter().product();
    let read = |epoch: Option<usize>| {
        let mut out = vec![f32::NAN; per];
        match epoch {
            Some(e) => data.train.train_sample_into(0, e, &mut out),
            None => data.train.sample_into(0, &mut out),
        }
        .unwrap();
        out
    };
    let zeros = |v: &[f32]| v.iter().filter(|&&x| x == 0.0).count();
    let clean = read(None);
    let (one, two) = (read(Some(1)), read(Some(2)));
    assert_eq!(read(Some(1)), one, "the same epoch draws the same masks");
    assert_ne!(one, two, "another epoch draws other masks");
    // Masked cells are zero and every other cell keeps its value.
    assert!(zeros(&one) > zeros(&clean), "nothing was masked");
    assert!(one.iter().zip(&clean).all(|(&a, &c)| a == c || a == 0.0));
    // Validation reads are never masked.
    let mut valid = vec![0.0; per];
    data.valid.sample_into(0, &mut valid).unwrap();
    let mut again = vec![0.0; per];
    data.valid.sample_into(0, &mut again).unwrap();
    assert_eq!(valid, again);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn spatial_training_reports_a_fixed_test_set_on_coherence_weighted_interaural_planes() {
    let root = tests::scratch("audio-spatial");
    tests::tiny_stereo_set(&root, 3, 4);
    let pipeline = root.join("spatial.yaml");
    std::fs::write(
        &pipeline,
        "name: tiny-spatial\nseed: 5\ndevice: cpu\nstages:\n  - stage: spatial_dataset\n    with:\n      \
         hrir: hrirs.wav\n      sources: [source.wav]\n      directions: [-90, 0, 90]\n      per_class: 4\n      \
         snr_db: [0, 20]\n      itd_scale: 0.1\n      valid_manifest: set/manifest.csv\n      \
         test_root: set\n      features:\n        \
         wav: {channels: 2, sample_rate: 16000, duration: 1.0, length: pad_or_crop}\n        \
         stft: {n_fft: 512, hop_length: 256}\n        channels: [ild, ipd_cos, ipd_sin, coherence]\n        \
         coherence_frames: 7\n        coherence_weighting: true\n      cache_dir: cache\n  - stage: model\n    \
         with: {preset: direction_cnn}\n  - stage: train\n    with: {epochs: 1, batch_size: 4}\n",
    )
    .unwrap();
    let registry = tests::registry();
    let (out, metrics) = run_four_planes_of_three_classes(&pipeline, &registry, &root);
    assert_eq!(metrics["final_epoch"]["train"]["samples"], 12, "3 directions x 4 renders");
    assert_eq!(metrics["final_epoch"]["valid"]["samples"], 12);
    // The test set is evaluated once after training, with the direction metrics.
    assert_eq!(metrics["test"]["samples"], 12, "{metrics}");
    assert!(metrics["direction"]["test"]["within_tolerance"].is_number(), "{metrics}");
    assert!(out.run_dir.join("confusion_test.csv").exists());
    // The cached planes are the configured ones: the coherence in [0, 1], the weighted IPD
    // within the coherence's bounds.
    let data = kindling_pipeline::load_data(kindling_pipeline::load(&pipeline, &registry, &[]).unwrap()).unwrap();
    let test = data.test.as_ref().expect("a test split");
    let plane = 257 * 63;
    let mut x = vec![f32::NAN; 4 * plane];
    test.sample_into(0, &mut x).unwrap();
    let (cos, sin, gamma) = (&x[plane..2 * plane], &x[2 * plane..3 * plane], &x[3 * plane..]);
    assert!(gamma.iter().all(|g| (0.0..=1.0).contains(g)) && gamma.iter().any(|&g| g > 0.5));
    for i in 0..plane {
        assert!(cos[i].hypot(sin[i]) <= gamma[i] + 1e-5, "bin {i}");
    }
    // A test class that is not a rendered direction is named before anything runs.
    let set = ["spatial_dataset.directions=[-90, 90, 45]".to_owned()];
    let err = kindling_pipeline::load(&pipeline, &registry, &set).unwrap_err().to_string();
    assert!(err.contains("stages[0].with.test_root: class `01_az+00` is not one of the rendered directions"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}
