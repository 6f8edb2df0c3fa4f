//! Listing a labelled audio data set: a folder of class folders (`root/<class>/**/*.wav`), or
//! a `path,label` CSV manifest, with the rules of [`kindling_core::LabelledFiles`]: classes
//! sorted by name as torchvision's `ImageFolder` sorts them, names starting with `.` skipped,
//! relative manifest paths resolved against the manifest's folder.
//!
//! Either way, every problem is an error naming the folder, or the manifest and its line.

use std::path::{Path, PathBuf};

use kindling_core::LabelledFiles;
use serde::Serialize;

use crate::AudioError;

/// One labelled file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AudioItem {
    /// The WAV file.
    pub path: PathBuf,
    /// Index into [`AudioDataset::classes`].
    pub label: u32,
}

/// A labelled list of WAV files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AudioDataset {
    /// Class names; a label is an index into this list.
    pub classes: Vec<String>,
    /// The files, sorted by class then path for folders, in manifest order for manifests.
    pub items: Vec<AudioItem>,
}

impl AudioDataset {
    /// Lists `root/<class>/**/*.wav`.
    pub fn from_folder(root: &Path) -> Result<Self, AudioError> {
        let (files, _) = LabelledFiles::from_folder(root, &["wav"], false)?;
        Ok(files.into())
    }

    /// Reads a `path,label` CSV manifest.
    pub fn from_manifest(csv: &Path) -> Result<Self, AudioError> {
        Ok(LabelledFiles::from_manifest(csv)?.into())
    }

    /// Every item's label, in item order.
    pub fn labels(&self) -> Vec<u32> {
        self.items.iter().map(|i| i.label).collect()
    }

    /// Every item's path, in item order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.items.iter().map(|i| i.path.clone()).collect()
    }

    /// Items per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for item in &self.items {
            if let Some(n) = counts.get_mut(item.label as usize) {
                *n += 1;
            }
        }
        counts
    }

    /// Item indices `(train, valid)`: `round(valid_fraction * n)` of each class's `n` items go
    /// to valid, chosen by `seed` ([`kindling_core::stratified_split`]); both lists sorted.
    pub fn split(&self, valid_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>), AudioError> {
        if !(0.0..=1.0).contains(&valid_fraction) {
            return Err(AudioError::Config(vec![kindling_core::ConfigIssue::new(
                "valid_fraction",
                format!("must be between 0 and 1, got {valid_fraction}"),
            )]));
        }
        Ok(kindling_core::stratified_split(&self.labels(), valid_fraction, seed))
    }
}

impl From<LabelledFiles> for AudioDataset {
    fn from(files: LabelledFiles) -> Self {
        let items = files.items.into_iter().map(|(path, label)| AudioItem { path, label }).collect();
        Self { classes: files.classes, items }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{TempDir, stereo_tone_wav};

    fn touch_wav(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        stereo_tone_wav(path, 16_000, 16, 0);
    }

    #[test]
    fn folder_classes_are_sorted_and_files_found_recursively() {
        let dir = TempDir::new("dataset-folder");
        for rel in ["right/b.wav", "right/a.WAV", "left/x.wav", "left/deeper/y.wav", "center/c.wav"] {
            touch_wav(&dir.join(rel));
        }
        std::fs::write(dir.join("left/notes.txt"), "not audio").unwrap();
        std::fs::write(dir.join("stray.wav"), "ignored: not in a class folder").unwrap();
        std::fs::create_dir_all(dir.join(".ipynb_checkpoints")).unwrap();
        touch_wav(&dir.join("left/._x.wav"));
        let ds = AudioDataset::from_folder(dir.path()).unwrap();
        assert_eq!(ds.classes, ["center", "left", "right"]);
        let names: Vec<String> =
            ds.items.iter().map(|i| i.path.strip_prefix(dir.path()).unwrap().display().to_string()).collect();
        assert_eq!(names, ["center/c.wav", "left/deeper/y.wav", "left/x.wav", "right/a.WAV", "right/b.wav"]);
        assert_eq!(ds.labels(), [0, 1, 1, 2, 2]);
        assert_eq!(ds.class_counts(), [1, 2, 2]);
    }

    #[test]
    fn empty_folders_are_errors_naming_the_path() {
        let dir = TempDir::new("dataset-empty");
        let err = AudioDataset::from_folder(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()) && err.contains("no class folders"), "{err}");
        touch_wav(&dir.join("a/1.wav"));
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("b/readme.txt"), "").unwrap();
        let err = AudioDataset::from_folder(dir.path()).unwrap_err();
        assert_eq!(err.path(), Some(dir.join("b").as_path()));
        assert!(err.to_string().contains("is a class folder with no *.wav files"));
        assert!(AudioDataset::from_folder(&dir.join("missing")).unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn manifest_resolves_relative_paths_and_reports_bad_lines() {
        let dir = TempDir::new("dataset-csv");
        touch_wav(&dir.join("audio/a.wav"));
        touch_wav(&dir.join("audio/b, c.wav"));
        let absolute = dir.join("abs.wav");
        touch_wav(&absolute);
        let csv = dir.join("list.csv");
        std::fs::write(
            &csv,
            format!(
                "label,path,gain\r\nup,audio/a.wav,1\r\n\ndown,\"audio/b, c.wav\",2\nup,{},3\n",
                absolute.display()
            ),
        )
        .unwrap();
        let ds = AudioDataset::from_manifest(&csv).unwrap();
        assert_eq!(ds.classes, ["down", "up"]);
        assert_eq!(ds.labels(), [1, 0, 1]);
        assert_eq!(ds.items[0].path, dir.join("audio/a.wav"));
        assert_eq!(ds.items[1].path, dir.join("audio/b, c.wav"));
        assert_eq!(ds.items[2].path, absolute);

        std::fs::write(&csv, "path,label\naudio/a.wav,up\naudio/missing.wav,up\naudio/a.wav\n,up\n\"open,up\n")
            .unwrap();
        let err = AudioDataset::from_manifest(&csv).unwrap_err();
        let AudioError::Listing(kindling_core::ListingError::Manifest { lines, .. }) = &err else { panic!("{err}") };
        assert_eq!(lines.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [3, 4, 5, 6]);
        let text = err.to_string();
        assert!(
            text.contains(&format!("{}:3: ", csv.display())) && text.contains("missing.wav is not a file"),
            "{text}"
        );
        assert!(text.contains(":4: has 1 fields, the header has 2"), "{text}");

        std::fs::write(&csv, "file,class\na.wav,up\n").unwrap();
        assert!(AudioDataset::from_manifest(&csv).unwrap_err().to_string().contains(":1: the header must name"));
        std::fs::write(&csv, "path,label\n").unwrap();
        assert!(AudioDataset::from_manifest(&csv).unwrap_err().to_string().contains("lists no files"));
        std::fs::write(&csv, "").unwrap();
        assert!(AudioDataset::from_manifest(&csv).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn split_is_stratified_and_seeded() {
        let dir = TempDir::new("dataset-split");
        for class in ["a", "b"] {
            for i in 0..10 {
                touch_wav(&dir.join(&format!("{class}/{i}.wav")));
            }
        }
        let ds = AudioDataset::from_folder(dir.path()).unwrap();
        let (train, valid) = ds.split(0.2, 42).unwrap();
        assert_eq!((train.len(), valid.len()), (16, 4));
        assert_eq!(valid.iter().filter(|&&i| ds.items[i].label == 0).count(), 2);
        assert_eq!(ds.split(0.2, 42).unwrap(), (train, valid.clone()));
        assert_ne!(ds.split(0.2, 43).unwrap().1, valid);
        assert!(ds.split(1.5, 0).is_err());
    }
}
