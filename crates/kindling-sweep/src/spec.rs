//! The `sweep:` block: what varies, how it is drawn, what is compared, and the trials it
//! expands to.
//!
//! (Over 450 lines: the `sweep:` block's parsing, its distributions and the expansion into trials
//! read as one contract; 101 of its lines are its tests.)

use std::path::{Path, PathBuf};

use kindling_core::{ConfigIssue, rng_from_seed};
use kindling_pipeline::PlanError;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A sweep as written: the pipeline it varies and the `sweep:` block.
#[derive(Clone, Debug)]
pub struct SweepSource {
    /// The pipeline file every trial runs.
    pub pipeline: PathBuf,
    /// The pipeline's text, as read when the sweep was loaded.
    pub pipeline_src: String,
    /// The parsed `sweep:` block.
    pub spec: SweepSpec,
}

/// The `sweep:` block of a pipeline (or of a sweep file that names a pipeline).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepSpec {
    /// Dotted keys and the values each takes; the trials are their cartesian product, in the
    /// order written, the last key varying fastest (as `itertools.product`).
    pub grid: Vec<(String, Vec<Value>)>,
    /// Dotted keys drawn at random from a distribution, `trials` times per grid point.
    pub random: Vec<(String, Distribution)>,
    /// Random draws per grid point (1 when nothing is random).
    pub trials: usize,
    /// Every point is repeated once per seed (the pipeline's `seed` is set); results are then
    /// reported as mean +- std over seeds. Empty: the pipeline's own seed, once.
    pub seeds: Vec<u64>,
    /// What trials are compared by: `valid.accuracy` (default), `valid.loss`, `test.accuracy`,
    /// `train.loss`, ...
    pub metric: Metric,
    /// Whether a larger metric is better (`max`) or a smaller one (`min`).
    pub mode: Mode,
    /// Stop unpromising trials early, judged on the per-epoch validation metric. Off unless set.
    pub prune: Option<Prune>,
    /// Seed of the random draws (default: the pipeline's seed).
    pub seed: u64,
    /// How `random:` keys are searched: independent draws (`random`, the default) or the
    /// Tree-structured Parzen Estimator (`tpe`), which decides each trial's values when it
    /// starts from the results so far.
    #[serde(default)]
    pub search: Search,
}

/// How the values of `random:` keys are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// `trials` independent seeded draws per grid point, all decided up front.
    #[default]
    Random,
    /// `trials` trials, each decided when it is claimed by the Tree-structured Parzen
    /// Estimator from the results recorded so far (see [`crate::tpe`]).
    Tpe,
}

/// A distribution a random key is drawn from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// One of the listed values, each equally likely.
    Choice(Vec<Value>),
    /// A real number uniform in `[low, high)`.
    Uniform([f64; 2]),
    /// A real number whose logarithm is uniform: `[1e-5, 1e-1]` spreads draws evenly over the
    /// four decades (for learning rates and weight decay).
    Loguniform([f64; 2]),
    /// An integer uniform in `[low, high]`, both ends included.
    Int([i64; 2]),
}

/// The metric trials are compared by: a split and a quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Metric {
    /// `train`, `valid` or `test`.
    pub split: String,
    /// `loss` or `accuracy`.
    pub name: String,
}

impl TryFrom<String> for Metric {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (split, name) = s.split_once('.').unwrap_or(("", &s));
        if !["train", "valid", "test"].contains(&split) || !["loss", "accuracy"].contains(&name) {
            return Err(format!(
                "`{s}` is not a metric: write <split>.<quantity> with split train, valid or test and quantity \
                 loss or accuracy (e.g. valid.accuracy)"
            ));
        }
        Ok(Self { split: split.to_owned(), name: name.to_owned() })
    }
}

impl From<Metric> for String {
    fn from(m: Metric) -> String {
        m.to_string()
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.split, self.name)
    }
}

/// Whether larger or smaller metric values are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Larger is better (accuracy).
    Max,
    /// Smaller is better (loss).
    Min,
}

impl Mode {
    /// Whether `a` is better than `b`; NaN is never better.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Mode::Max => a > b,
            Mode::Min => a < b,
        }
    }

    /// `values` sorted best first.
    pub fn sort(self, values: &mut [f64]) {
        values.sort_by(|a, b| match self {
            Mode::Max => b.total_cmp(a),
            Mode::Min => a.total_cmp(b),
        });
    }
}

/// Early termination of unpromising trials, on the per-epoch metric (its split must be
/// `train` or `valid`, which are measured every epoch).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Prune {
    /// Optuna's median rule: after `warmup_epochs`, a trial whose best value so far is worse
    /// than the median of finished trials at the same epoch stops. Needs `min_trials`
    /// finished trials before it judges anyone.
    Median {
        /// Epochs every trial runs before it can be stopped.
        #[serde(default = "one")]
        warmup_epochs: usize,
        /// Finished trials needed before the rule applies.
        #[serde(default = "three")]
        min_trials: usize,
    },
    /// Asynchronous successive halving: rungs at `min_epochs * reduction_factor^k` epochs; a
    /// trial reaching a rung continues only if its value there is in the best
    /// `1/reduction_factor` of the values recorded at that rung so far (the best one always
    /// continues).
    Asha {
        /// The first rung.
        #[serde(default = "one")]
        min_epochs: usize,
        /// The fraction kept at each rung is 1 / this.
        #[serde(default = "three")]
        reduction_factor: usize,
    },
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}

/// The `sweep:` block as written, before checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    grid: serde_json::Map<String, Value>,
    #[serde(default)]
    random: serde_json::Map<String, Value>,
    trials: Option<usize>,
    #[serde(default)]
    seeds: Vec<u64>,
    metric: Option<Metric>,
    mode: Option<Mode>,
    prune: Option<Prune>,
    seed: Option<u64>,
    search: Option<Search>,
}

/// One trial as the spec defines it: the values it sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Position in the expansion (0-based), for stable ordering in reports.
    pub index: usize,
    /// The swept keys and their values, in the spec's order (grid, then random).
    pub params: Vec<(String, Value)>,
    /// The seed this trial runs with, when `seeds:` is given.
    pub seed: Option<u64>,
}

impl TrialSpec {
    /// The trial as `--set` overrides of its pipeline.
    pub fn overrides(&self) -> Vec<String> {
        let mut out: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(s) = self.seed {
            out.push(format!("seed={s}"));
        }
        out
    }

    /// A short label: `lr=0.001 weight_decay=0.005 seed=1`, each key by its last segment.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> =
            self.params.iter().map(|(k, v)| format!("{}={}", short_key(k), display_value(v))).collect();
        if let Some(s) = self.seed {
            parts.push(format!("seed={s}"));
        }
        if parts.is_empty() { "(base)".to_owned() } else { parts.join(" ") }
    }

    /// The label without the seed: trials that differ only by seed share it.
    pub fn point_label(&self) -> String {
        Self { seed: None, ..self.clone() }.label()
    }

    /// This trial's value of a swept key (`seed` included).
    pub fn value(&self, key: &str) -> Option<Value> {
        if key == "seed" {
            return self.seed.map(Value::from);
        }
        self.params.iter().find(|(k, _)| k == key || short_key(k) == key).map(|(_, v)| v.clone())
    }
}

/// The last segment of a dotted key: `train.optimizer.lr` -> `lr`.
pub fn short_key(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// A value as a person reads it: numbers compactly, strings without quotes.
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format_float(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn format_float(f: f64) -> String {
    if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e5) {
        let s = format!("{f:.4e}");
        // 1.0000e-5 -> 1e-5
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exp}")
    } else {
        let s = format!("{f:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl SweepSpec {
    /// Every trial, in order: grid points (last key fastest) x random draws x seeds.
    pub fn trials(&self) -> Vec<TrialSpec> {
        let mut points: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for (key, values) in &self.grid {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push((key.clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
        let mut rng = rng_from_seed(self.seed, "sweep.random");
        let mut drawn = Vec::new();
        for point in points {
            for _ in 0..self.trials {
                let mut p = point.clone();
                for (key, dist) in &self.random {
                    p.push((key.clone(), dist.draw(&mut rng)));
                }
                drawn.push(p);
            }
        }
        let seeds: Vec<Option<u64>> =
            if self.seeds.is_empty() { vec![None] } else { self.seeds.iter().copied().map(Some).collect() };
        let mut out = Vec::new();
        for params in drawn {
            for &seed in &seeds {
                out.push(TrialSpec { index: out.len(), params: params.clone(), seed });
            }
        }
        out
    }

    /// The swept keys, in order (`seed` last when seeds are swept).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            self.grid.iter().map(|(k, _)| k.clone()).chain(self.random.iter().map(|(k, _)| k.clone())).collect();
        if !self.seeds.is_empty() {
            keys.push("seed".to_owned());
        }
        keys
    }
}

impl Distribution {
    pub(crate) fn draw(&self, rng: &mut impl RngExt) -> Value {
        match self {
            Distribution::Choice(values) => values[rng.random_range(0..values.len())].clone(),
            Distribution::Uniform([lo, hi]) => Value::from(rng.random_range(*lo..*hi)),
            Distribution::Loguniform([lo, hi]) => Value::from(rng.random_range(lo.ln()..hi.ln()).exp()),
            Distribution::Int([lo, hi]) => Value::from(rng.random_range(*lo..=*hi)),
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Distribution::Choice(v) if v.is_empty() => Err("choice needs at least one value".into()),
            Distribution::Uniform([lo, hi]) if !(lo < hi && lo.is_finite() && hi.is_finite()) => {
                Err(format!("uniform needs [low, high] with low < high, got [{lo}, {hi}]"))
            }
            Distribution::Loguniform([lo, hi]) if !(*lo > 0.0 && lo < hi && hi.is_finite()) => {
                Err(format!("loguniform needs [low, high] with 0 < low < high, got [{lo}, {hi}]"))
            }
            Distribution::Int([lo, hi]) if lo > hi => {
                Err(format!("int needs [low, high] with low <= high, got [{lo}, {hi}]"))
            }
            _ => Ok(()),
        }
    }
}

/// Reads a sweep: a pipeline file with a `sweep:` block, or a sweep file with `pipeline:` (a
/// path relative to the sweep file) and `sweep:`.
pub fn load(file: &Path) -> Result<SweepSource, PlanError> {
    let fail = |file: &Path, issues: Vec<ConfigIssue>| PlanError { file: file.to_owned(), issues };
    let read = |path: &Path| kindling_pipeline::read_source(path).map_err(|issue| fail(path, vec![issue]));
    let src = read(file)?;
    let doc = kindling_pipeline::parse_yaml(&src).map_err(|issue| fail(file, vec![issue]))?;
    // A pipeline with a sweep block may build on others: its block (and seed) are those of
    // the composed pipeline, and problems are placed in the file that wrote them.
    let composed = match doc.get("pipeline") {
        Some(_) => None,
        None => Some(kindling_pipeline::compose(file, &src).map_err(|issues| fail(file, issues))?),
    };
    let block = composed.as_ref().map_or(&doc, |c| &c.doc).get("sweep").cloned();
    let (pipeline, pipeline_src) = match doc.get("pipeline") {
        Some(p) => {
            let mut issues = Vec::new();
            if let Some(map) = doc.as_mapping() {
                for key in map.keys().filter_map(|k| k.as_str()).filter(|k| !["pipeline", "sweep"].contains(k)) {
                    let mut issue = ConfigIssue::new(
                        key,
                        "a sweep file holds only `pipeline:` and `sweep:`; other keys belong in the pipeline",
                    );
                    issue.location = kindling_pipeline::locate(&src, key);
                    issues.push(issue);
                }
            }
            let Some(rel) = p.as_str() else {
                issues.push(ConfigIssue::new("pipeline", "expected the path of a pipeline file"));
                return Err(fail(file, issues));
            };
            if !issues.is_empty() {
                return Err(fail(file, issues));
            }
            let path = file.parent().unwrap_or(Path::new("")).join(rel);
            let text = read(&path)?;
            (path, text)
        }
        None => (file.to_owned(), src.clone()),
    };
    let Some(block) = block else {
        return Err(fail(
            file,
            vec![ConfigIssue::new("sweep", "no `sweep:` block: nothing to vary").with_help(
                "add `sweep: {grid: {train.optimizer.lr: [0.001, 0.0005]}}` or run the pipeline with `kindling run`",
            )],
        ));
    };
    let pipeline_seed = kindling_pipeline::compose(&pipeline, &pipeline_src)
        .ok()
        .and_then(|c| c.doc.get("seed").and_then(serde_yaml::Value::as_u64))
        .unwrap_or(0);
    let spec = parse_block(&block, pipeline_seed).map_err(|issues| {
        let issues = issues
            .into_iter()
            .map(|mut i| {
                match &composed {
                    Some(c) => c.place(&mut i),
                    None => i.location = kindling_pipeline::locate(&src, &i.path),
                }
                i
            })
            .collect();
        fail(file, issues)
    })?;
    Ok(SweepSource { pipeline, pipeline_src, spec })
}

/// Checks a `sweep:` block and fills its defaults.
pub fn parse_block(block: &serde_yaml::Value, pipeline_seed: u64) -> Result<SweepSpec, Vec<ConfigIssue>> {
    let json = serde_json::to_value(block)
        .map_err(|e| vec![ConfigIssue::new("sweep", format!("cannot be read as a sweep: {e}"))])?;
    let raw: RawSpec = serde_path_to_error::deserialize(&json).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { "sweep".to_owned() } else { format!("sweep.{path}") };
        vec![ConfigIssue::new(at, e.into_inner().to_string())]
    })?;
    let mut issues = Vec::new();
    let mut grid = Vec::new();
    for (key, values) in raw.grid {
        check_key(&key, "sweep.grid", &mut issues);
        match values {
            Value::Array(v) if !v.is_empty() => grid.push((key, v)),
            _ => issues.push(ConfigIssue::new("sweep.grid", format!("`{key}` needs a non-empty list of values"))),
        }
    }
    let mut random = Vec::new();
    let has_random = !raw.random.is_empty();
    for (key, dist) in raw.random {
        check_key(&key, "sweep.random", &mut issues);
        if grid.iter().any(|(k, _)| *k == key) {
            issues.push(ConfigIssue::new("sweep.random", format!("`{key}` is already in grid:; sweep it one way")));
        }
        match serde_json::from_value::<Distribution>(dist) {
            Ok(d) => match d.check() {
                Ok(()) => random.push((key, d)),
                Err(msg) => issues.push(ConfigIssue::new("sweep.random", format!("`{key}`: {msg}"))),
            },
            Err(e) => issues.push(ConfigIssue::new("sweep.random", format!("`{key}`: {e}")).with_help(
                "write one of {choice: [a, b]}, {uniform: [lo, hi]}, {loguniform: [lo, hi]}, {int: [lo, hi]}",
            )),
        }
    }
    let trials = match (raw.trials, !has_random) {
        (Some(0), _) => {
            issues.push(ConfigIssue::new("sweep.trials", "must be at least 1"));
            1
        }
        (Some(n), false) => n,
        (Some(_), true) => {
            issues.push(ConfigIssue::new("sweep.trials", "counts random draws, but nothing is under random:"));
            1
        }
        (None, false) => {
            issues.push(ConfigIssue::new("sweep.random", "random keys need `trials: N`, the number of draws"));
            1
        }
        (None, true) => 1,
    };
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = raw.seeds.iter().find(|s| !seen.insert(**s)) {
        issues.push(ConfigIssue::new("sweep.seeds", format!("seed {dup} is listed twice")));
    }
    if !raw.seeds.is_empty() && grid.iter().any(|(k, _)| k == "seed") {
        issues.push(ConfigIssue::new("sweep.grid", "`seed` is swept by grid: and seeds:; use seeds:"));
    }
    if grid.is_empty() && !has_random && raw.seeds.is_empty() && issues.is_empty() {
        issues.push(ConfigIssue::new("sweep", "nothing varies: give grid:, random: or seeds:"));
    }
    let metric = raw.metric.unwrap_or(Metric { split: "valid".into(), name: "accuracy".into() });
    let mode = raw.mode.unwrap_or(if metric.name == "loss" { Mode::Min } else { Mode::Max });
    if let Some(prune) = &raw.prune {
        if metric.split == "test" {
            issues.push(ConfigIssue::new(
                "sweep.prune",
                format!("pruning judges the metric every epoch, and {metric} is measured only at the end"),
            ));
        }
        let bad = match prune {
            Prune::Median { min_trials, .. } => (*min_trials == 0).then_some("min_trials must be at least 1"),
            Prune::Asha { min_epochs, reduction_factor } => {
                if *min_epochs == 0 {
                    Some("min_epochs must be at least 1")
                } else if *reduction_factor < 2 {
                    Some("reduction_factor must be at least 2")
                } else {
                    None
                }
            }
        };
        if let Some(msg) = bad {
            issues.push(ConfigIssue::new("sweep.prune", msg));
        }
    }
    let search = raw.search.unwrap_or_default();
    if search == Search::Tpe {
        if !has_random {
            issues.push(ConfigIssue::new("sweep.search", "tpe searches the keys under random:, and there are none"));
        }
        if !grid.is_empty() {
            issues.push(ConfigIssue::new(
                "sweep.grid",
                "search: tpe does not combine with grid: yet; put the keys under random: as {choice: [...]}",
            ));
        }
        if !raw.seeds.is_empty() {
            issues.push(ConfigIssue::new("sweep.seeds", "search: tpe does not repeat trials over seeds: yet"));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(SweepSpec {
        search,
        grid,
        random,
        trials,
        seeds: raw.seeds,
        metric,
        mode,
        prune: raw.prune,
        seed: raw.seed.unwrap_or(pipeline_seed),
    })
}

fn check_key(key: &str, at: &str, issues: &mut Vec<ConfigIssue>) {
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains('=') {
        issues.push(ConfigIssue::new(at, format!("`{key}` is not a dotted key such as train.optimizer.lr")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<SweepSpec, Vec<ConfigIssue>> {
        parse_block(&serde_yaml::from_str(yaml).unwrap(), 7)
    }

    fn messages(r: Result<SweepSpec, Vec<ConfigIssue>>) -> Vec<String> {
        r.unwrap_err().iter().map(|i| format!("{}: {}", i.path, i.message)).collect()
    }

    #[test]
    fn grid_is_a_cartesian_product_with_the_last_key_fastest_then_seeds() {
        let s = spec("grid: {train.optimizer.lr: [0.1, 0.01], model.preset: [a, b, c]}\nseeds: [1, 2]").unwrap();
        let t = s.trials();
        assert_eq!(t.len(), 12);
        assert_eq!(t[0].overrides(), ["train.optimizer.lr=0.1", "model.preset=\"a\"", "seed=1"]);
        assert_eq!(t[1].overrides(), ["train.optimizer.lr=0.1", "model.preset=\"a\"", "seed=2"]);
        assert_eq!(t[2].label(), "lr=0.1 preset=b seed=1");
        assert_eq!(t[11].point_label(), "lr=0.01 preset=c");
        assert!(t.iter().enumerate().all(|(i, t)| t.index == i));
        assert_eq!(s.keys(), ["train.optimizer.lr", "model.preset", "seed"]);
        assert_eq!((s.metric.to_string(), s.mode, s.seed), ("valid.accuracy".into(), Mode::Max, 7));
    }

    #[test]
    fn random_draws_are_seeded_in_range_and_per_grid_point() {
        let yaml = "grid: {train.batch_size: [32, 64]}\nrandom:\n  lr: {loguniform: [1.0e-5, 1.0e-1]}\n  \
                    p: {uniform: [0.1, 0.5]}\n  n: {int: [1, 3]}\n  opt: {choice: [adam, sgd]}\ntrials: 50\nseed: 3";
        let a = spec(yaml).unwrap().trials();
        assert_eq!(a.len(), 100);
        assert_eq!(a, spec(yaml).unwrap().trials(), "same seed, same draws");
        let other = spec(&yaml.replace("seed: 3", "seed: 4")).unwrap().trials();
        assert_ne!(a, other);
        let get = |t: &TrialSpec, k: &str| t.value(k).unwrap();
        let mut decades = [0usize; 4];
        let mut ints = [0usize; 3];
        for t in &a {
            let lr = get(t, "lr").as_f64().unwrap();
            assert!((1e-5..1e-1).contains(&lr));
            decades[((lr.log10() + 5.0).floor() as usize).min(3)] += 1;
            assert!((0.1..0.5).contains(&get(t, "p").as_f64().unwrap()));
            ints[(get(t, "n").as_i64().unwrap() - 1) as usize] += 1;
            assert!(["adam", "sgd"].contains(&get(t, "opt").as_str().unwrap()));
        }
        // Log-uniform: every decade gets draws; both ends of the int range are reached.
        assert!(decades.iter().all(|&d| d >= 10), "{decades:?}");
        assert!(ints.iter().all(|&n| n >= 15), "{ints:?}");
        assert_eq!(get(&a[0], "batch_size"), 32);
        assert_eq!(get(&a[50], "batch_size"), 64);
    }

    #[test]
    fn loss_metrics_default_to_min_and_problems_are_all_reported() {
        assert_eq!(spec("metric: valid.loss\nseeds: [1]").unwrap().mode, Mode::Min);
        let errs = messages(spec(
            "grid: {a.b: [], c: 3}\nrandom: {a.b: {uniform: [1, 0]}, d: {normal: [0, 1]}}\nseeds: [1, 1]",
        ));
        assert_eq!(
            errs,
            [
                "sweep.grid: `a.b` needs a non-empty list of values",
                "sweep.grid: `c` needs a non-empty list of values",
                "sweep.random: `a.b`: uniform needs [low, high] with low < high, got [1, 0]",
                "sweep.random: `d`: unknown variant `normal`, expected one of `choice`, `uniform`, `loguniform`, `int`",
                "sweep.random: random keys need `trials: N`, the number of draws",
                "sweep.seeds: seed 1 is listed twice",
            ]
        );
        assert_eq!(messages(spec("grdi: {a: [1]}"))[0].split(',').next().unwrap(), "sweep.grdi: unknown field `grdi`");
        assert_eq!(
            messages(spec("seeds: [1]\nmetric: valid.acc")),
            [
                "sweep.metric: `valid.acc` is not a metric: write <split>.<quantity> with split train, valid or test and \
              quantity loss or accuracy (e.g. valid.accuracy)"
            ]
        );
        assert_eq!(
            messages(spec("seeds: [1]\nmetric: test.accuracy\nprune: {kind: median}")),
            ["sweep.prune: pruning judges the metric every epoch, and test.accuracy is measured only at the end"]
        );
        assert!(messages(spec("seeds: [1]\nprune: {kind: asha, eta: 3}"))[0].contains("unknown field `eta`"));
        assert_eq!(messages(spec("{}")), ["sweep: nothing varies: give grid:, random: or seeds:"]);
        assert_eq!(
            messages(spec("search: tpe\ngrid: {a: [1]}\nseeds: [1]")),
            [
                "sweep.search: tpe searches the keys under random:, and there are none",
                "sweep.grid: search: tpe does not combine with grid: yet; put the keys under random: as {choice: [...]}",
                "sweep.seeds: search: tpe does not repeat trials over seeds: yet",
            ]
        );
        let s = spec("search: tpe\nrandom: {a: {uniform: [0, 1]}}\ntrials: 30").unwrap();
        assert_eq!((s.search, s.trials), (Search::Tpe, 30));
        assert!(messages(spec("search: bayes\nseeds: [1]"))[0].contains("unknown variant `bayes`"));
    }

    #[test]
    fn prune_defaults_follow_common_practice() {
        let s = spec("seeds: [1]\nprune: {kind: asha}").unwrap();
        assert_eq!(s.prune, Some(Prune::Asha { min_epochs: 1, reduction_factor: 3 }));
        let s = spec("seeds: [1]\nprune: {kind: median}").unwrap();
        assert_eq!(s.prune, Some(Prune::Median { warmup_epochs: 1, min_trials: 3 }));
    }

    #[test]
    fn values_display_compactly() {
        let f = |x: f64| display_value(&Value::from(x));
        assert_eq!([f(0.001), f(0.0005), f(1e-5), f(0.9), f(3.0)], ["0.001", "5e-4", "1e-5", "0.9", "3"]);
        assert_eq!(display_value(&Value::from(64)), "64");
    }
}
