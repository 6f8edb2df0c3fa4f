//! A worked example of a Kindling plugin crate: the `csv_dataset` stage, which reads tabular
//! data from CSV files into the same [`Dataset`] artifact the image stages produce, so the
//! `model` and `train` stages Kindling ships train on it unchanged.
//!
//! A plugin is a plain value, [`plugin`], listing stage definitions. This crate's binary
//! (`src/main.rs`) adds it to `kindling_cli::default_plugins()` and hands the list to
//! `kindling_cli::main_with`: the result is the whole `kindling` command (`run`, `validate`,
//! `sweep`, `stages`, ...) with one more stage.
//!
//! Writing a stage takes four pieces, all below:
//!
//! - a configuration struct (its `with:` block) implementing [`StageConfig`]: serde reads it,
//!   schemars describes it for `kindling schema` (with its range, `valid_fraction`),
//!   `KEY_DOCS` documents each key for `kindling stages`, `check` rejects values that parse
//!   but make no sense;
//! - a [`StageDef`] naming the stage and the artifacts it needs and produces (`"dataset"`
//!   here), so the pipeline checks the wiring before any compute;
//! - [`Stage::plan`], run by `kindling validate` and before every run: cheap checks that
//!   report every problem as a configuration issue, and the facts later stages need (the
//!   [`DataSpec`] the `model` stage checks its layers against);
//! - [`Stage::run`], which does the work and inserts the artifact.
//!
//! # The file format
//!
//! A header row of column names, then one sample per line: numeric feature columns and one
//! label column whose values (words or integers) are the class names. Fields are separated by
//! commas and trimmed; blank lines are skipped. This is deliberately a small reader, not a
//! full CSV parser: quoted fields (`"a, b"`), escaped quotes and missing values are not
//! supported, and each is reported as an error naming the file and line rather than read
//! wrongly. The files are read whole into memory.
//!
//! Classes are numbered in sorted order of their names (numerically when every label is an
//! integer), as scikit-learn's `LabelEncoder` numbers them, so the order does not depend on
//! the order of the rows. A row of `F` features becomes a sample of shape `[1, 1, F]`: the
//! `train` stage batches samples as `[channels, height, width]`, so a model starts with
//! `flatten` and continues with `linear` layers.
//!
//! ```
//! use kindling_example_custom_stage::parse_table;
//!
//! let text = "sepal_length,petal_width,species\n5.1,0.2,setosa\n6.3,abc,virginica\n";
//! let err = parse_table("iris.csv", text, "species", None).unwrap_err();
//! assert_eq!(err.to_string(), "iris.csv:3: column `petal_width` is not a number: `abc`");
//! ```
//!
//! (Over 450 lines: a worked example meant to be read top to bottom in one file; 198 of its
//! lines are tests.)

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use kindling_core::{
    DataSpec, Dataset, Issues, PlanCx, Plugin, Split, Stage, StageConfig, StageDef, StageError, StageIo, Summary,
    closest, stratified_split,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// This crate's plugin: the `csv_dataset` stage. Add it to `kindling_cli::default_plugins()`
/// and pass the list to `kindling_cli::main_with` (see `src/main.rs`).
pub fn plugin() -> Plugin {
    Plugin { name: "custom-stage", stages: vec![csv_dataset()] }
}

/// The name of the file the stage writes into the run directory when it standardises: one
/// row per feature with the training split's mean and standard deviation, what new data must
/// be scaled with before it meets the trained model.
pub const STANDARDIZE_FILE: &str = "standardize.csv";

/// Configuration of `csv_dataset` (its `with:` block). Relative paths are resolved against
/// the pipeline file's directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
// `check` requires these; a schema can say so (serde's `default` lets them be absent).
#[schemars(extend("required" = ["file"]))]
#[serde(deny_unknown_fields, default)]
pub struct CsvDatasetConfig {
    /// The training file: a header row, then one sample per line (required). Its rows are
    /// split into the training and validation splits.
    pub file: String,
    /// The name of the label column.
    pub label: String,
    /// The feature columns, in the order the model sees them; absent means every column but
    /// the label, in the file's order.
    pub features: Option<Vec<String>>,
    /// Share of each class of `file` held out for validation, in [0, 1).
    #[schemars(range(min = 0))]
    #[schemars(extend("exclusiveMaximum" = 1))]
    pub valid_fraction: f64,
    /// A test file with the same columns (in any order), evaluated once after training. Its
    /// classes must all occur in `file`.
    pub test_file: Option<String>,
    /// Standardise every feature to mean 0 and standard deviation 1 with the statistics of
    /// the training split only (scikit-learn's `StandardScaler`), applied to every split.
    pub standardize: bool,
}

impl Default for CsvDatasetConfig {
    fn default() -> Self {
        Self {
            file: String::new(),
            label: "label".to_owned(),
            features: None,
            valid_fraction: 0.2,
            test_file: None,
            standardize: true,
        }
    }
}

impl StageConfig for CsvDatasetConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("file", "CSV file with a header row: numeric feature columns and one label column (required)"),
        ("label", "name of the label column; its values (words or integers) are the classes"),
        ("features", "feature columns in the order the model sees them (default: every column but the label)"),
        ("valid_fraction", "share of each class held out for validation, in [0, 1)"),
        ("test_file", "CSV file with the same columns, evaluated once after training"),
        ("standardize", "z-score every feature with the training split's mean and std (StandardScaler)"),
    ];

    fn check(&self, issues: &mut Issues) {
        issues.require(!self.file.is_empty(), "file", "is required");
        issues.require(!self.label.is_empty(), "label", "must name a column");
        issues.require(
            (0.0..1.0).contains(&self.valid_fraction),
            "valid_fraction",
            format!("must be in [0, 1), got {}", self.valid_fraction),
        );
        if let Some(features) = &self.features {
            issues.require(
                !features.is_empty(),
                "features",
                "list at least one column, or leave the key out for every column but the label",
            );
            for (i, name) in features.iter().enumerate() {
                let at = format!("features[{i}]");
                if *name == self.label {
                    issues.push(&at, format!("`{name}` is the label column"));
                } else if features[..i].contains(name) {
                    issues.push(&at, format!("`{name}` is listed twice"));
                }
            }
        }
    }
}

/// A problem in a CSV file, naming the file and, where there is one, the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    /// The file, as the pipeline's directory and the configured name join to.
    pub file: String,
    /// The 1-based line, when the problem is on one.
    pub line: Option<usize>,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl CsvError {
    fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Self { file: file.to_owned(), line, message: message.into() }
    }
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for CsvError {}

/// A CSV file as read for training: the chosen feature columns as numbers and the label
/// column as written, one entry per data row.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file, as errors name it.
    pub file: String,
    /// The feature columns' names, in the order of each row's values in `x`.
    pub features: Vec<String>,
    /// Feature values, row-major: `features.len()` values per row.
    pub x: Vec<f32>,
    /// Each row's label, as written (trimmed).
    pub labels: Vec<String>,
    /// Each row's 1-based line number in the file, for errors about the row.
    pub lines: Vec<usize>,
}

/// Reads the CSV file at `path` (see [`parse_table`]); errors name the file as
/// `path.display()` shows it.
pub fn read_table(path: &Path, label: &str, features: Option<&[String]>) -> Result<Table, CsvError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CsvError::new(&file, None, "no such file"),
        std::io::ErrorKind::InvalidData => CsvError::new(&file, None, "is not UTF-8 text"),
        _ => CsvError::new(&file, None, format!("cannot read the file: {e}")),
    })?;
    parse_table(&file, &text, label, features)
}

/// Parses CSV `text` (named `file` in errors): the column named `label` and the columns named
/// in `features` (every other column when `None`), in that order. Every feature value must be
/// a finite number. Errors name the file, the line and the column, as in
/// ``iris.csv:14: column `petal_width` is not a number: `abc` ``.
pub fn parse_table(file: &str, text: &str, label: &str, features: Option<&[String]>) -> Result<Table, CsvError> {
    let mut rows = text.lines().enumerate().map(|(i, row)| (i + 1, row)).filter(|&(_, row)| !row.trim().is_empty());
    let Some((header_line, header)) = rows.next() else {
        return Err(CsvError::new(file, None, "is empty: expected a header row of column names"));
    };
    let header = header.strip_prefix('\u{feff}').unwrap_or(header);
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            return Err(CsvError::new(file, Some(header_line), format!("column {} of the header has no name", i + 1)));
        }
        if columns[..i].contains(name) {
            return Err(CsvError::new(file, Some(header_line), format!("column `{name}` appears twice in the header")));
        }
    }
    let find = |name: &str, what: &str| -> Result<usize, CsvError> {
        columns.iter().position(|c| *c == name).ok_or_else(|| {
            let hint = match closest(name, columns.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("the columns are {}", columns.join(", ")),
            };
            CsvError::new(file, Some(header_line), format!("no {what} column `{name}` in the header ({hint})"))
        })
    };
    let label_at = find(label, "label")?;
    let feature_at: Vec<usize> = match features {
        Some(names) => names.iter().map(|n| find(n.as_str(), "feature")).collect::<Result<_, _>>()?,
        None => (0..columns.len()).filter(|&i| i != label_at).collect(),
    };
    if feature_at.is_empty() {
        return Err(CsvError::new(
            file,
            Some(header_line),
            format!("no feature columns: the header holds only the label column `{label}`"),
        ));
    }

    let mut table = Table {
        file: file.to_owned(),
        features: feature_at.iter().map(|&i| columns[i].to_owned()).collect(),
        x: Vec::new(),
        labels: Vec::new(),
        lines: Vec::new(),
    };
    let mut fields: Vec<&str> = Vec::with_capacity(columns.len());
    for (line, row) in rows {
        fields.clear();
        fields.extend(row.split(',').map(str::trim));
        if fields.len() != columns.len() {
            let quoted = if row.contains('"') { " (quoted fields are not supported)" } else { "" };
            return Err(CsvError::new(
                file,
                Some(line),
                format!("{} fields where the header has {} columns{quoted}", fields.len(), columns.len()),
            ));
        }
        for &i in &feature_at {
            let value = number(fields[i])
                .map_err(|why| CsvError::new(file, Some(line), format!("column `{}` {why}", columns[i])))?;
            table.x.push(value);
        }
        if fields[label_at].is_empty() {
            return Err(CsvError::new(file, Some(line), format!("the label column `{}` is empty", columns[label_at])));
        }
        table.labels.push(fields[label_at].to_owned());
        table.lines.push(line);
    }
    if table.labels.is_empty() {
        return Err(CsvError::new(file, None, "holds a header but no rows"));
    }
    Ok(table)
}

/// One feature value, or why it is not one (the end of a sentence starting with its column).
fn number(field: &str) -> Result<f32, String> {
    if field.is_empty() {
        return Err("is empty (missing values are not supported)".to_owned());
    }
    match field.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("is not a finite number: `{field}`")),
        Err(_) => Err(format!("is not a number: `{field}`")),
    }
}

/// The class names of `table`'s labels in index order: sorted numerically when every label is
/// an integer, else alphabetically. Fewer than two classes is an error.
fn class_names(table: &Table) -> Result<Vec<String>, CsvError> {
    let distinct: BTreeSet<&str> = table.labels.iter().map(String::as_str).collect();
    let mut names: Vec<String> = distinct.into_iter().map(str::to_owned).collect();
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().unwrap_or_default());
    }
    if names.len() < 2 {
        return Err(CsvError::new(
            &table.file,
            None,
            format!("every row has the label `{}`: classification needs at least two classes", names.join(", ")),
        ));
    }
    Ok(names)
}

/// The class index of each row of `table`. A label not among `classes` (those of the training
/// file `origin`) is an error naming its row.
fn class_indices(table: &Table, classes: &[String], origin: &str) -> Result<Vec<u32>, CsvError> {
    let index: HashMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
    table
        .labels
        .iter()
        .zip(&table.lines)
        .map(|(label, &line)| {
            index.get(label.as_str()).copied().ok_or_else(|| {
                CsvError::new(&table.file, Some(line), format!("class `{label}` does not occur in {origin}"))
            })
        })
        .collect()
}

/// The sample shape of a row of `features` values: `[1, 1, features]`, because the `train`
/// stage batches samples as `[channels, height, width]`.
fn sample_shape(features: usize) -> Vec<usize> {
    vec![1, 1, features]
}

/// Per-feature mean and standard deviation: fitted on the training rows as scikit-learn's
/// `StandardScaler` fits (population standard deviation; a constant feature keeps a scale of
/// 1), or the identity when the stage does not standardise.
#[derive(Clone, Debug, PartialEq)]
struct Scaler {
    features: Vec<String>,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Scaler {
    /// Leaves values as they are.
    fn identity(features: &[String]) -> Self {
        Self { features: features.to_vec(), mean: vec![0.0; features.len()], std: vec![1.0; features.len()] }
    }

    /// Fits the rows `rows` of `x` (`features.len()` values per row).
    fn fit(features: &[String], x: &[f32], rows: &[usize]) -> Self {
        let per = features.len();
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0_f64; per];
        for &r in rows {
            for (m, &v) in mean.iter_mut().zip(&x[r * per..(r + 1) * per]) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0_f64; per];
        for &r in rows {
            for ((s, &v), m) in var.iter_mut().zip(&x[r * per..(r + 1) * per]).zip(&mean) {
                let d = f64::from(v) - m;
                *s += d * d;
            }
        }
        let std = var
            .into_iter()
            .map(|s| {
                let sd = (s / n).sqrt();
                if sd > 0.0 { sd } else { 1.0 }
            })
            .collect();
        Self { features: features.to_vec(), mean, std }
    }

    /// The split of rows `idx` of `x`, scaled, with their labels from `y`.
    fn split(&self, x: &[f32], y: &[u32], idx: &[usize]) -> Split {
        let per = self.mean.len();
        let mut out = Vec::with_capacity(idx.len() * per);
        for &i in idx {
            let row = &x[i * per..(i + 1) * per];
            out.extend(row.iter().zip(&self.mean).zip(&self.std).map(|((&v, m), s)| ((f64::from(v) - m) / s) as f32));
        }
        Split::new(out, idx.iter().map(|&i| y[i]).collect())
    }

    /// `feature,mean,std` rows, for [`STANDARDIZE_FILE`].
    fn to_csv(&self) -> String {
        let mut out = String::from("feature,mean,std\n");
        for ((name, m), s) in self.features.iter().zip(&self.mean).zip(&self.std) {
            out += &format!("{name},{m},{s}\n");
        }
        out
    }
}

fn csv_dataset() -> StageDef {
    StageDef::new::<CsvDatasetConfig>(
        "csv_dataset",
        "CSV table (numeric feature columns, one label column) -> standardised train/valid/test splits",
        &[],
        &["dataset"],
        |config| Box::new(CsvDataset { config }),
    )
}

#[derive(Debug)]
struct CsvDataset {
    config: CsvDatasetConfig,
}

impl CsvDataset {
    /// Reads the files and builds the data set, with the scaler its splits went through.
    fn load(&self, base: &Path, seed: u64) -> Result<(Dataset, Scaler), CsvError> {
        let c = &self.config;
        let train = read_table(&base.join(&c.file), &c.label, c.features.as_deref())?;
        let classes = class_names(&train)?;
        let y = class_indices(&train, &classes, &train.file)?;
        let test = match &c.test_file {
            Some(f) => {
                let table = read_table(&base.join(f), &c.label, Some(train.features.as_slice()))?;
                let labels = class_indices(&table, &classes, &train.file)?;
                Some((table, labels))
            }
            None => None,
        };
        let (train_idx, valid_idx) = stratified_split(&y, c.valid_fraction, seed);
        let scaler = if c.standardize {
            Scaler::fit(&train.features, &train.x, &train_idx)
        } else {
            Scaler::identity(&train.features)
        };
        let test = test.map(|(table, labels)| {
            let all: Vec<usize> = (0..labels.len()).collect();
            scaler.split(&table.x, &labels, &all)
        });
        let data = Dataset {
            shape: sample_shape(train.features.len()),
            classes,
            train: scaler.split(&train.x, &y, &train_idx),
            valid: scaler.split(&train.x, &y, &valid_idx),
            test,
        };
        Ok((data, scaler))
    }
}

impl Stage for CsvDataset {
    /// Reads both files whole (tabular files are small): every parse error becomes an issue of
    /// `kindling validate`, and the sample shape and class count become the [`DataSpec`] the
    /// `model` stage checks its layers against.
    fn plan(&self, cx: &mut PlanCx<'_>) {
        let c = &self.config;
        let train = match read_table(&cx.base_dir.join(&c.file), &c.label, c.features.as_deref()) {
            Ok(table) => Some(table),
            Err(e) => {
                cx.issues.push("file", e.to_string());
                None
            }
        };
        let classes = train.as_ref().and_then(|table| match class_names(table) {
            Ok(names) => Some(names),
            Err(e) => {
                cx.issues.push("file", e.to_string());
                None
            }
        });
        if let Some(test_file) = &c.test_file {
            let path = cx.base_dir.join(test_file);
            match (&train, &classes) {
                (Some(train), Some(classes)) => {
                    let checked = read_table(&path, &c.label, Some(train.features.as_slice()))
                        .and_then(|test| class_indices(&test, classes, &train.file));
                    if let Err(e) = checked {
                        cx.issues.push("test_file", e.to_string());
                    }
                }
                // Without the training file's columns, only the test file's presence can be checked.
                _ if !path.is_file() => cx.issues.push("test_file", format!("{}: no such file", path.display())),
                _ => {}
            }
        }
        if let (Some(train), Some(classes)) = (&train, &classes) {
            cx.facts.insert(DataSpec { shape: sample_shape(train.features.len()), classes: classes.len() });
        }
    }

    fn run(&mut self, io: &mut StageIo<'_>) -> Result<(), StageError> {
        let (data, scaler) = self.load(io.base_dir, io.seed).map_err(StageError::domain)?;
        let line = format!(
            "{} train, {} valid, {} test rows of {} features, {} classes",
            data.train.len(),
            data.valid.len(),
            data.test.as_ref().map_or(0, Split::len),
            scaler.features.len(),
            data.classes.len()
        );
        eprintln!("data: {line}");
        if let Some(summary) = io.artifacts.get_mut::<Summary>() {
            summary.push("data", line);
        }
        if self.config.standardize {
            io.run_dir
                .write(STANDARDIZE_FILE, scaler.to_csv().as_bytes())
                .map_err(|e| StageError::io(io.run_dir.path().join(STANDARDIZE_FILE), e))?;
        }
        io.artifacts.insert(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kindling_core::Facts;

    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
    }

    fn parse_err(text: &str, label: &str, features: Option<&[String]>) -> String {
        parse_table("iris.csv", text, label, features).unwrap_err().to_string()
    }

    fn config() -> CsvDatasetConfig {
        CsvDatasetConfig {
            file: "blobs.csv".into(),
            label: "species".into(),
            test_file: Some("blobs-test.csv".into()),
            ..CsvDatasetConfig::default()
        }
    }

    #[test]
    fn a_bad_number_names_the_file_line_and_column() {
        let text = "sepal_length,petal_width,species\n5.1,0.2,setosa\n\n6.3,abc,virginica\n";
        assert_eq!(parse_err(text, "species", None), "iris.csv:4: column `petal_width` is not a number: `abc`");
        let text = "a,b,label\n1,,x\n";
        assert_eq!(
            parse_err(text, "label", None),
            "iris.csv:2: column `b` is empty (missing values are not supported)"
        );
        let text = "a,b,label\n1,inf,x\n";
        assert_eq!(parse_err(text, "label", None), "iris.csv:2: column `b` is not a finite number: `inf`");
    }

    #[test]
    fn a_wrong_field_count_names_the_line_and_mentions_quotes() {
        let text = "a,b,label\n1,2,x\n1,2\n";
        assert_eq!(parse_err(text, "label", None), "iris.csv:3: 2 fields where the header has 3 columns");
        let text = "a,b,label\n1,2,\"x, y\"\n";
        assert_eq!(
            parse_err(text, "label", None),
            "iris.csv:2: 4 fields where the header has 3 columns (quoted fields are not supported)"
        );
    }

    #[test]
    fn a_missing_label_or_feature_column_is_named_with_a_hint() {
        let text = "a,b,species\n1,2,x\n";
        assert_eq!(
            parse_err(text, "label", None),
            "iris.csv:1: no label column `label` in the header (the columns are a, b, species)"
        );
        assert_eq!(
            parse_err(text, "specis", None),
            "iris.csv:1: no label column `specis` in the header (did you mean `species`?)"
        );
        let wanted = ["a".to_owned(), "c".to_owned()];
        assert_eq!(
            parse_err(text, "species", Some(&wanted[..])),
            "iris.csv:1: no feature column `c` in the header (the columns are a, b, species)"
        );
        assert_eq!(parse_err("", "label", None), "iris.csv: is empty: expected a header row of column names");
        assert_eq!(parse_err("a,label\n", "label", None), "iris.csv: holds a header but no rows");
        assert_eq!(
            parse_err("label\nx\n", "label", None),
            "iris.csv:1: no feature columns: the header holds only the label column `label`"
        );
    }

    #[test]
    fn features_come_in_the_requested_order_and_classes_sort_by_value() {
        let text = "\u{feff}id, label ,b\n1, 10 ,2.5\n\n3,9,4\r\n5,2,6\n";
        let wanted = ["b".to_owned(), "id".to_owned()];
        let table = parse_table("t.csv", text, "label", Some(&wanted[..])).unwrap();
        assert_eq!(table.features, ["b", "id"]);
        assert_eq!(table.x, [2.5, 1.0, 4.0, 3.0, 6.0, 5.0]);
        assert_eq!(table.labels, ["10", "9", "2"]);
        assert_eq!(table.lines, [2, 4, 5]);
        // Integers sort as numbers (scikit-learn's LabelEncoder), words alphabetically.
        let classes = class_names(&table).unwrap();
        assert_eq!(classes, ["2", "9", "10"]);
        assert_eq!(class_indices(&table, &classes, "t.csv").unwrap(), [2, 1, 0]);
        let words = parse_table("w.csv", "x,label\n1,b\n2,a\n3,c\n", "label", None).unwrap();
        assert_eq!(class_names(&words).unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn unknown_test_classes_and_single_classes_are_errors() {
        let train = parse_table("train.csv", "x,label\n1,a\n2,b\n", "label", None).unwrap();
        let classes = class_names(&train).unwrap();
        let test = parse_table("test.csv", "x,label\n1,a\n2,c\n", "label", None).unwrap();
        assert_eq!(
            class_indices(&test, &classes, "train.csv").unwrap_err().to_string(),
            "test.csv:3: class `c` does not occur in train.csv"
        );
        let one = parse_table("one.csv", "x,label\n1,a\n2,a\n", "label", None).unwrap();
        assert_eq!(
            class_names(&one).unwrap_err().to_string(),
            "one.csv: every row has the label `a`: classification needs at least two classes"
        );
    }

    #[test]
    fn the_configuration_documents_its_keys_and_checks_its_values() {
        let def = csv_dataset();
        let documented: Vec<&str> = def.keys().iter().map(|k| k.name).collect();
        assert_eq!(def.serialized_keys(), documented);
        let errors = |v: serde_json::Value| -> Vec<String> {
            def.prepare(v).err().unwrap().iter().map(ToString::to_string).collect()
        };
        assert_eq!(errors(serde_json::Value::Null), ["file: is required"]);
        assert_eq!(
            errors(serde_json::json!({"file": "a.csv", "valid_fraction": 1.0, "features": ["x", "label", "x"]})),
            [
                "valid_fraction: must be in [0, 1), got 1",
                "features[1]: `label` is the label column",
                "features[2]: `x` is listed twice"
            ]
        );
        let ok = def.prepare(serde_json::json!({"file": "a.csv"})).unwrap();
        assert_eq!(ok.resolved["label"], "label");
        assert_eq!(ok.resolved["standardize"], serde_json::json!(true));
    }

    #[test]
    fn plan_records_the_data_spec_and_reports_missing_files() {
        let mut facts = Facts::default();
        let mut issues = Issues::default();
        let stage = CsvDataset { config: config() };
        stage.plan(&mut PlanCx { facts: &mut facts, issues: &mut issues, base_dir: &data_dir() });
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(facts.get::<DataSpec>(), Some(&DataSpec { shape: vec![1, 1, 4], classes: 3 }));

        let mut facts = Facts::default();
        let mut issues = Issues::default();
        let stage = CsvDataset {
            config: CsvDatasetConfig { file: "nope.csv".into(), test_file: Some("gone.csv".into()), ..config() },
        };
        stage.plan(&mut PlanCx { facts: &mut facts, issues: &mut issues, base_dir: &data_dir() });
        let got: Vec<(String, String)> = issues.into_vec().into_iter().map(|i| (i.path, i.message)).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "file");
        assert!(got[0].1.ends_with("nope.csv: no such file"), "{got:?}");
        assert_eq!(got[1].0, "test_file");
        assert!(got[1].1.ends_with("gone.csv: no such file"), "{got:?}");
        assert!(facts.get::<DataSpec>().is_none());
    }

    #[test]
    fn the_shipped_table_loads_split_and_standardised_with_training_statistics() {
        let stage = CsvDataset { config: config() };
        let (d, scaler) = stage.load(&data_dir(), 42).unwrap();
        assert_eq!(d.shape, [1, 1, 4]);
        assert_eq!(d.classes, ["alpha", "beta", "gamma"]);
        // 50 rows a class, 10 of each held out.
        assert_eq!((d.train.len(), d.valid.len()), (120, 30));
        assert_eq!(d.test.as_ref().map(Split::len), Some(60));
        for c in 0..3 {
            assert_eq!(d.valid.y.iter().filter(|&&y| y == c).count(), 10);
        }
        // Every feature of the training split has mean 0 and standard deviation 1.
        for f in 0..4 {
            let col: Vec<f64> = d.train.x.iter().skip(f).step_by(4).map(|&v| f64::from(v)).collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(mean.abs() < 1e-5, "feature {f}: mean {mean}");
            assert!((var.sqrt() - 1.0).abs() < 1e-4, "feature {f}: std {}", var.sqrt());
        }
        let csv = scaler.to_csv();
        assert!(csv.starts_with("feature,mean,std\nheight,"), "{csv}");
        assert_eq!(csv.lines().count(), 5);

        let raw = CsvDataset { config: CsvDatasetConfig { standardize: false, ..config() } };
        let (plain, _) = raw.load(&data_dir(), 42).unwrap();
        // Unscaled, the weights (hundreds of grams) are far from unit scale.
        assert!(plain.train.x.iter().skip(2).step_by(4).all(|&w| w > 100.0));
        assert_eq!(plain.train.y, d.train.y);
    }

    #[test]
    fn a_constant_feature_keeps_unit_scale() {
        let features = ["a".to_owned(), "b".to_owned()];
        let x = [1.0, 5.0, 3.0, 5.0];
        let scaler = Scaler::fit(&features, &x, &[0, 1]);
        assert_eq!(scaler.mean, [2.0, 5.0]);
        assert_eq!(scaler.std, [1.0, 1.0]);
        let split = scaler.split(&x, &[0, 1], &[1, 0]);
        assert_eq!(split.x, [1.0, 0.0, -1.0, 0.0]);
        assert_eq!(split.y, [1, 0]);
    }
}
