//! Listing a labelled audio data set: a folder of class folders, or a CSV manifest.
//!
//! - Folder: `root/<class>/**/*.wav`, like torchvision's `ImageFolder`: classes are the
//!   sub-folders of `root` sorted by name (class `i` is the `i`-th name), files are found
//!   recursively and sorted by path; the `.wav` extension matches in any case. Unlike
//!   `ImageFolder`, names starting with `.` are skipped (editor and OS litter such as
//!   `.ipynb_checkpoints` or `._x.wav` would otherwise become a class or a sample), and
//!   symbolic links to folders below the class level are not followed.
//! - Manifest: a CSV file whose header names the columns `path` and `label` (others are
//!   ignored; fields may be double-quoted). Relative paths are resolved against the CSV's
//!   folder. Classes are the distinct labels sorted by name, as for folders.
//!
//! Either way, every problem is an error naming the folder, or the manifest and its line.

use std::path::{Path, PathBuf};

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
        let mut classes: Vec<(String, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(root).map_err(|e| AudioError::io(root, e))? {
            let entry = entry.map_err(|e| AudioError::io(root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !name.starts_with('.') && path.is_dir() {
                classes.push((name, path));
            }
        }
        if classes.is_empty() {
            return Err(AudioError::dataset(root, "has no class folders (expected root/<class>/*.wav)"));
        }
        classes.sort();
        let mut items = Vec::new();
        for (label, (_, dir)) in classes.iter().enumerate() {
            let mut files = Vec::new();
            collect_wavs(dir, &mut files)?;
            if files.is_empty() {
                return Err(AudioError::dataset(dir, "is a class folder with no .wav files"));
            }
            files.sort();
            items.extend(files.into_iter().map(|path| AudioItem { path, label: label as u32 }));
        }
        Ok(Self { classes: classes.into_iter().map(|(name, _)| name).collect(), items })
    }

    /// Reads a `path,label` CSV manifest.
    pub fn from_manifest(csv: &Path) -> Result<Self, AudioError> {
        let bytes = std::fs::read(csv).map_err(|e| AudioError::io(csv, e))?;
        let text = String::from_utf8(bytes).map_err(|_| AudioError::malformed(csv, "is not UTF-8 text"))?;
        let base = csv.parent().unwrap_or(Path::new(""));
        let bad = |lines: Vec<(usize, String)>| AudioError::Manifest { path: csv.to_owned(), lines };

        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
        let Some((_, header)) = lines.next() else {
            return Err(bad(vec![(1, "the file is empty; expected a header line `path,label`".into())]));
        };
        let header = split_csv(header).unwrap_or_default();
        let column = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
        let (Some(path_col), Some(label_col)) = (column("path"), column("label")) else {
            return Err(bad(vec![(
                1,
                format!("the header must name the columns `path` and `label`, found {header:?}"),
            )]));
        };

        let mut rows = Vec::new();
        let mut problems = Vec::new();
        for (line, raw) in lines {
            if raw.trim().is_empty() {
                continue;
            }
            let Some(fields) = split_csv(raw) else {
                problems.push((line, "has an unterminated quoted field".to_owned()));
                continue;
            };
            if fields.len() != header.len() {
                problems.push((line, format!("has {} fields, the header has {}", fields.len(), header.len())));
                continue;
            }
            let (path, label) = (fields[path_col].trim(), fields[label_col].trim());
            if path.is_empty() || label.is_empty() {
                problems.push((line, "has an empty path or label".to_owned()));
                continue;
            }
            let resolved = base.join(path);
            if !resolved.is_file() {
                problems.push((line, format!("{} is not a file", resolved.display())));
                continue;
            }
            rows.push((resolved, label.to_owned()));
        }
        if !problems.is_empty() {
            return Err(bad(problems));
        }
        if rows.is_empty() {
            return Err(AudioError::dataset(csv, "lists no files"));
        }
        let mut classes: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
        classes.sort();
        classes.dedup();
        let items = rows
            .into_iter()
            .map(|(path, label)| AudioItem { path, label: classes.binary_search(&label).unwrap_or(0) as u32 })
            .collect();
        Ok(Self { classes, items })
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

fn collect_wavs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), AudioError> {
    for entry in std::fs::read_dir(dir).map_err(|e| AudioError::io(dir, e))? {
        let entry = entry.map_err(|e| AudioError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| AudioError::io(&path, e))?;
        if kind.is_dir() {
            collect_wavs(&path, out)?;
        } else if name.len() > 4 && name[name.len() - 4..].eq_ignore_ascii_case(".wav") && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Splits one CSV line into fields; `None` for an unterminated quote.
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
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
        assert!(err.to_string().contains("no .wav files"));
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
        let AudioError::Manifest { lines, .. } = &err else { panic!("{err}") };
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
