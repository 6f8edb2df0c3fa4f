//! Listing a labelled data set of files: a folder of class folders, or a CSV manifest.
//!
//! - Folder: `root/<class>/**/<file>`, like torchvision's `ImageFolder`: classes are the
//!   sub-folders of `root` sorted by name (class `i` is the `i`-th name), files are found
//!   recursively and sorted by path, and only files whose extension is one of the accepted
//!   ones (in any case) count. Unlike `ImageFolder`, names starting with `.` are skipped
//!   (editor and OS litter such as `.ipynb_checkpoints` or `._x.png` would otherwise become a
//!   class or a sample), and symbolic links to folders below the class level are not followed.
//! - Manifest: a CSV file whose header names the columns `path` and `label` (others are
//!   ignored; fields may be double-quoted). Relative paths are resolved against the CSV's
//!   folder. Classes are the distinct labels sorted by name, as for folders.
//!
//! Either way, every problem is an error naming the folder, or the manifest and its line.
//! The audio and image data sets both list their files here.

use std::fmt;
use std::path::{Path, PathBuf};

/// Labelled files: class names, and each file with the index of its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledFiles {
    /// Class names; a label is an index into this list.
    pub classes: Vec<String>,
    /// `(file, label)`, sorted by class then path for folders, in manifest order for manifests.
    pub items: Vec<(PathBuf, u32)>,
}

/// Why a data set could not be listed. Every variant names the folder or file.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// A folder or file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The folder or manifest does not describe a usable data set (no classes, an empty class).
    #[error("{}: {message}", path.display())]
    Empty {
        /// The folder or manifest.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// Lines of a CSV manifest that could not be used, each with its line number.
    #[error("{}", ManifestLines { path, lines })]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// `(1-based line, problem)` for every bad line.
        lines: Vec<(usize, String)>,
    },
}

impl LabelledFiles {
    /// Lists `root/<class>/**/*.<ext>` for the `extensions` given (lower case, without the
    /// dot). A class folder without such files is an error unless `allow_empty`; the empty
    /// classes are returned either way (they keep their place, so labels stay stable).
    pub fn from_folder(
        root: &Path,
        extensions: &[&str],
        allow_empty: bool,
    ) -> Result<(Self, Vec<PathBuf>), ListingError> {
        let wanted = extensions.iter().map(|e| format!("*.{e}")).collect::<Vec<_>>().join(", ");
        let mut classes: Vec<(String, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(root).map_err(|e| io(root, e))? {
            let entry = entry.map_err(|e| io(root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !name.starts_with('.') && path.is_dir() {
                classes.push((name, path));
            }
        }
        if classes.is_empty() {
            return Err(empty(root, format!("has no class folders (expected root/<class>/{{{wanted}}})")));
        }
        classes.sort();
        let mut items = Vec::new();
        let mut empty_classes = Vec::new();
        for (label, (_, dir)) in classes.iter().enumerate() {
            let mut files = Vec::new();
            collect(dir, extensions, &mut files)?;
            if files.is_empty() {
                if !allow_empty {
                    return Err(empty(dir, format!("is a class folder with no {wanted} files")));
                }
                empty_classes.push(dir.clone());
            }
            files.sort();
            items.extend(files.into_iter().map(|path| (path, label as u32)));
        }
        if items.is_empty() {
            return Err(empty(root, format!("holds no {wanted} files in its class folders")));
        }
        Ok((Self { classes: classes.into_iter().map(|(name, _)| name).collect(), items }, empty_classes))
    }

    /// Reads a `path,label` CSV manifest; every listed path must be a file.
    pub fn from_manifest(csv: &Path) -> Result<Self, ListingError> {
        let bytes = std::fs::read(csv).map_err(|e| io(csv, e))?;
        let text = String::from_utf8(bytes).map_err(|_| empty(csv, "is not UTF-8 text"))?;
        let base = csv.parent().unwrap_or(Path::new(""));
        let bad = |lines: Vec<(usize, String)>| ListingError::Manifest { path: csv.to_owned(), lines };

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
            return Err(empty(csv, "lists no files"));
        }
        let mut classes: Vec<String> = rows.iter().map(|(_, l)| l.clone()).collect();
        classes.sort();
        classes.dedup();
        let items = rows
            .into_iter()
            .map(|(path, label)| {
                let index = classes.binary_search(&label).unwrap_or(0) as u32;
                (path, index)
            })
            .collect();
        Ok(Self { classes, items })
    }

    /// Every item's label, in item order.
    pub fn labels(&self) -> Vec<u32> {
        self.items.iter().map(|(_, l)| *l).collect()
    }

    /// Every item's path, in item order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.items.iter().map(|(p, _)| p.clone()).collect()
    }

    /// Items per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &(_, label) in &self.items {
            if let Some(n) = counts.get_mut(label as usize) {
                *n += 1;
            }
        }
        counts
    }
}

fn io(path: &Path, source: std::io::Error) -> ListingError {
    ListingError::Io { path: path.to_owned(), source }
}

fn empty(path: &Path, message: impl Into<String>) -> ListingError {
    ListingError::Empty { path: path.to_owned(), message: message.into() }
}

fn collect(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> Result<(), ListingError> {
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            collect(&path, extensions, out)?;
        } else if has_extension(&name, extensions) {
            if path.is_file() {
                out.push(path);
            } else if kind.is_symlink() {
                // A data set that silently shrinks is worse than one that stops: say which.
                let source = std::fs::metadata(&path).err().unwrap_or_else(|| std::io::ErrorKind::NotFound.into());
                let message =
                    format!("a symbolic link that leads to no file (dangling or looping: {source}); fix or remove it");
                return Err(io(&path, std::io::Error::new(source.kind(), message)));
            }
        }
    }
    Ok(())
}

/// Whether `name` ends in `.<ext>` for one of `extensions`, in any case.
fn has_extension(name: &str, extensions: &[&str]) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && extensions.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// Splits one line of a CSV manifest into fields (`"` quotes a field, `""` inside it is a
/// quote); `None` for an unterminated quote. The rules every manifest Kindling reads follows.
pub fn split_csv(line: &str) -> Option<Vec<String>> {
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

struct ManifestLines<'a> {
    path: &'a Path,
    lines: &'a [(usize, String)],
}

impl fmt::Display for ManifestLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (line, message)) in self.lines.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{line}: {message}", self.path.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_match_in_any_case_and_need_a_stem() {
        let exts = ["png", "jpg"];
        assert!(has_extension("a.PNG", &exts));
        assert!(has_extension("x.y.jpg", &exts));
        assert!(!has_extension(".png", &exts));
        assert!(!has_extension("a.png.txt", &exts));
        assert!(!has_extension("png", &exts));
    }

    #[cfg(unix)]
    #[test]
    fn dangling_and_looping_links_are_named_not_skipped() {
        let root = std::env::temp_dir().join(format!("kindling-core-links-{}", std::process::id()));
        let class = root.join("cat");
        std::fs::create_dir_all(&class).unwrap();
        std::fs::write(class.join("a.png"), b"x").unwrap();
        let (files, _) = LabelledFiles::from_folder(&root, &["png"], false).unwrap();
        assert_eq!(files.items.len(), 1);
        std::os::unix::fs::symlink(class.join("gone.png"), class.join("b.png")).unwrap();
        let e = LabelledFiles::from_folder(&root, &["png"], false).unwrap_err().to_string();
        assert!(e.contains("b.png") && e.contains("dangling or looping"), "{e}");
        std::fs::remove_file(class.join("b.png")).unwrap();
        std::os::unix::fs::symlink(class.join("c.png"), class.join("c.png")).unwrap();
        let e = LabelledFiles::from_folder(&root, &["png"], false).unwrap_err().to_string();
        assert!(e.contains("c.png") && e.contains("dangling or looping"), "{e}");
        // A link to a real file is a file like any other.
        std::fs::remove_file(class.join("c.png")).unwrap();
        std::os::unix::fs::symlink(class.join("a.png"), class.join("d.png")).unwrap();
        assert_eq!(LabelledFiles::from_folder(&root, &["png"], false).unwrap().0.items.len(), 2);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn quoted_fields_and_doubled_quotes_split_as_csv_does() {
        assert_eq!(split_csv(r#""a,b",c"#).unwrap(), ["a,b", "c"]);
        assert_eq!(split_csv(r#""say ""hi""",x"#).unwrap(), [r#"say "hi""#, "x"]);
        assert_eq!(split_csv(r#""open,x"#), None);
    }
}
