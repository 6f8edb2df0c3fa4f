//! `kindling sweep` and `kindling report` end to end: real trial processes on small data,
//! a kill -9 of the whole sweep and an exact resume, a failing trial among good ones, and
//! pruning.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kindling() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kindling"));
    c.current_dir(root()).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn run(args: &[&str]) -> Output {
    kindling().args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kindling-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `(event, trial id)` of every line of the sweep's events log.
fn events(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("events.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[3].to_owned(), f[4].to_owned())
        })
        .collect()
}

fn count(events: &[(String, String)], what: &str) -> usize {
    events.iter().filter(|(e, _)| e == what).count()
}

#[test]
fn dry_run_counts_trials_and_validates_each_before_anything_runs() {
    let out = run(&["sweep", "tests/sweeps/tiny.yaml", "--dry-run", "--show", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("tests/sweeps/tiny.yaml: 4 trial(s), compared by valid.accuracy"), "{stdout}");
    assert!(stdout.contains("# trial 0 ["), "{stdout}");
    assert!(stdout.contains("lr: 0.001"), "{stdout}");
    assert!(stdout.contains("... and 3 more"), "{stdout}");

    // A typo in a swept key fails every trial: reported once, nothing runs.
    let dir = scratch("typo");
    let out =
        run(&["sweep", "tests/sweeps/tiny.yaml", "--set", "train.optimzer.lr=0.1", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown key `optimzer`"), "{stderr}");
    assert!(stderr.contains("(in every trial)"), "{stderr}");
    assert_eq!(stderr.matches("unknown key").count(), 1, "one problem, reported once: {stderr}");
    assert!(!dir.exists(), "nothing was created");
}

/// `kindling sweep` arguments for the tiny sweep in `dir`, `parallel` trials at once, made
/// slow enough (about a second per trial) that a kill lands while trials run.
fn slow_sweep(dir: &Path, parallel: usize, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        ["sweep", "tests/sweeps/tiny.yaml", "--parallel"].iter().map(|s| (*s).to_owned()).collect();
    a.extend([parallel.to_string(), "--dir".to_owned(), dir.to_str().unwrap().to_owned()]);
    for s in ["model.preset=mnist_cnn", "idx_dataset.train_limit=800", "train.epochs=1"] {
        a.extend(["--set".to_owned(), s.to_owned()]);
    }
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a
}

#[test]
fn a_killed_sweep_resumes_exactly_the_missing_trials() {
    let dir = scratch("resume");
    let args = |extra: &[&str]| slow_sweep(&dir, 1, extra);
    // The sweep and its trial processes share a process group: kill -9 takes them all at once.
    let mut sweep =
        kindling().args(args(&[])).process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while count(&events(&dir), "done") < 1 {
        assert!(start.elapsed() < Duration::from_secs(120), "no trial finished in two minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the second trial start, then kill everything.
    while count(&events(&dir), "claim") < 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", sweep.id())]).status().unwrap();
    assert!(status.success());
    sweep.wait().unwrap();
    let before = events(&dir);
    let done_before = count(&before, "done");
    assert!((1..4).contains(&done_before), "killed mid-way: {before:?}");
    let finished: Vec<String> = before.iter().filter(|(e, _)| e == "done").map(|(_, id)| id.clone()).collect();
    let results_before: Vec<String> = finished
        .iter()
        .map(|id| std::fs::read_to_string(dir.join("trials").join(id).join("result.json")).unwrap())
        .collect();

    let out = kindling().args(args(&["--resume"])).output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("{} done, 0 pruned, 0 failed, {done_before} already finished", 4 - done_before)),
        "{stdout}"
    );

    // Every trial finished exactly once; the ones finished before the kill were not touched.
    let after = events(&dir);
    assert_eq!(count(&after, "done"), 4, "{after:?}");
    let mut ids: Vec<&String> = after.iter().filter(|(e, _)| e == "done").map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no trial finished twice: {after:?}");
    for (id, before) in finished.iter().zip(&results_before) {
        let now = std::fs::read_to_string(dir.join("trials").join(id).join("result.json")).unwrap();
        assert_eq!(&now, before);
    }
    // The trial that was running when the sweep died ran again as attempt 2.
    assert!(std::fs::read_to_string(dir.join("events.log")).unwrap().contains("attempt=2"));

    // A second resume has nothing to do.
    let out = kindling().args(args(&["--resume"])).output().unwrap();
    assert!(text(&out.stdout).contains("0 done, 0 pruned, 0 failed, 4 already finished"), "{}", text(&out.stdout));

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("4 trials: 4 done, 0 pruned, 0 failed"), "{report}");
    assert!(report.contains("## Over seeds (2 each)"), "{report}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for part in ["<h2>Validation accuracy by epoch</h2>", "<h2>Validation confusion matrices by lr</h2>", "<polyline"] {
        assert!(html.contains(part), "missing {part}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// `kill -9` of the sweep alone (its trial processes are not killed with it): the running
/// trial stops by itself as soon as its launcher is gone, and a `--resume` started at once
/// waits for it instead of running the trial beside it. Every trial completes exactly once.
#[test]
fn a_sweep_killed_alone_and_resumed_at_once_runs_each_trial_once() {
    let dir = scratch("orphans");
    let args = |extra: &[&str]| slow_sweep(&dir, 2, extra);
    let mut sweep = kindling().args(args(&[])).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while count(&events(&dir), "claim") < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no trial started in two minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    sweep.kill().unwrap(); // SIGKILL to the sweep only: its children live on for a moment.
    sweep.wait().unwrap();

    let out = kindling().args(args(&["--resume"])).output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let after = events(&dir);
    assert_eq!(count(&after, "done"), 4, "{after:?}");
    let (_, manifest) = kindling_sweep::Store::open(&dir).unwrap();
    let mut stopped = 0;
    for t in &manifest.trials {
        let log = std::fs::read_to_string(dir.join("trials").join(&t.id).join("log.txt")).unwrap();
        assert_eq!(log.matches("done in").count(), 1, "trial {} completed more than once:\n{log}", t.id);
        stopped += log.matches("the sweep that started this trial is gone").count();
    }
    assert!(stopped >= 1, "the killed sweep's trials stopped by themselves");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failing_trial_is_recorded_and_the_others_finish() {
    let dir = scratch("fail");
    // `--set` cannot touch the sweep's own block.
    let out = run(&["sweep", "tests/sweeps/tiny.yaml", "--dir", dir.to_str().unwrap(), "--set", "sweep.seeds=[3]"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the sweep block describes many runs"), "{}", text(&out.stderr));

    // lr 1e30 diverges at once; the sweep goes on and reports it.

    let file = dir.with_extension("yaml");
    let src = std::fs::read_to_string(root().join("tests/sweeps/tiny.yaml"))
        .unwrap()
        .replace("base_dir: ../..", &format!("base_dir: {}", root().display()))
        .replace("train.optimizer.lr: [0.001, 0.01]", "train.optimizer.lr: [0.001, 1.0e30]")
        .replace("seeds: [1, 2]", "seeds: [1]");
    std::fs::write(&file, src).unwrap();
    let out = run(&["sweep", file.to_str().unwrap(), "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("1 done, 0 pruned, 1 failed"), "{stdout}");
    assert!(stderr.contains("FAILED lr=1e30 seed=1"), "{stderr}");
    assert!(stderr.contains("the training loss became"), "{stderr}");
    let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[1].starts_with("1,") && lines[1].contains(",done,0.001,1,"), "{csv}");
    assert!(lines[2].contains(",failed,") && lines[2].contains("the training loss became"), "{csv}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(file).unwrap();
}

#[test]
fn asha_stops_a_trial_that_falls_behind_at_a_rung() {
    let dir = scratch("prune");
    let file = dir.with_extension("yaml");
    // The good learning rate runs first; the hopeless one (lr 1e-7) is judged at epoch 1 against it.
    let src = std::fs::read_to_string(root().join("tests/sweeps/tiny.yaml"))
        .unwrap()
        .replace("base_dir: ../..", &format!("base_dir: {}", root().display()))
        .replace("train.optimizer.lr: [0.001, 0.01]", "train.optimizer.lr: [0.001, 1.0e-7]")
        .replace("seeds: [1, 2]", "prune: {kind: asha, min_epochs: 1, reduction_factor: 2}")
        .replace("preset: mlp", "preset: mnist_cnn")
        .replace("epochs: 2", "epochs: 4");
    std::fs::write(&file, src).unwrap();
    let out = run(&["sweep", file.to_str().unwrap(), "--parallel", "1", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 done, 1 pruned, 0 failed"), "{stdout}\n{}", text(&out.stderr));
    let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    let pruned = csv.lines().find(|l| l.contains(",pruned,")).unwrap();
    let epochs: usize = pruned.split(',').nth(5).unwrap().parse().unwrap();
    assert!(epochs < 4, "stopped before the end: {pruned}");
    assert!(pruned.contains("successive halving"), "{pruned}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(file).unwrap();
}

#[test]
fn report_rejects_a_directory_that_is_not_a_sweep() {
    let out = run(&["report", "tests"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("tests/sweep.json: cannot read"), "{}", text(&out.stderr));
}

/// The tiny sweep searched by TPE: 12 trials (10 random, then 2 from the estimator) of one
/// short epoch each, written next to `dir`.
fn tpe_sweep(dir: &Path) -> PathBuf {
    let file = dir.with_extension("yaml");
    let src = std::fs::read_to_string(root().join("tests/sweeps/tiny.yaml"))
        .unwrap()
        .replace("base_dir: ../..", &format!("base_dir: {}", root().display()))
        .replace("train_limit: 1000", "train_limit: 400")
        .replace("epochs: 2", "epochs: 1")
        .replace(
            "  grid:\n    train.optimizer.lr: [0.001, 0.01]\n  seeds: [1, 2]",
            "  search: tpe\n  random:\n    train.optimizer.lr: {loguniform: [1.0e-4, 3.0e-2]}\n    \
             train.batch_size: {choice: [25, 50]}\n  trials: 12\n  seed: 5",
        );
    assert!(src.contains("search: tpe"));
    std::fs::write(&file, src).unwrap();
    file
}

/// Every recorded suggestion of a sweep directory: `(index, id, values, how)`.
fn suggestions(dir: &Path) -> Vec<(usize, String, String, String)> {
    let mut out: Vec<(usize, String, String, String)> = std::fs::read_dir(dir.join("suggestions"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            (
                v["index"].as_u64().unwrap() as usize,
                v["id"].as_str().unwrap().to_owned(),
                v["params"].to_string(),
                v["how"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_tpe_sweep_killed_and_resumed_suggests_exactly_what_an_uninterrupted_one_does() {
    let whole = scratch("tpe-whole");
    let file = tpe_sweep(&whole);
    let args = |dir: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["sweep".into(), file.to_str().unwrap().into(), "--parallel".into(), "1".into()];
        a.extend(["--dir".into(), dir.to_str().unwrap().into()]);
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let out = kindling().args(args(&whole, &[])).output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let expected = suggestions(&whole);
    assert_eq!(expected.len(), 12);
    assert!(expected[..10].iter().all(|s| s.3.starts_with("random (startup")), "{expected:?}");
    assert_eq!(expected[10].3, "tpe (10 trial(s) recorded, 0 of them running)");
    assert_eq!(expected[11].3, "tpe (11 trial(s) recorded, 0 of them running)");
    let stdout = text(&out.stdout);
    let distinct = {
        let mut ids: Vec<&String> = expected.iter().map(|s| &s.1).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    assert_eq!(count(&events(&whole), "done"), distinct, "{stdout}");

    // The same sweep killed (with its trial) once the first estimator-suggested trial runs.
    let cut = scratch("tpe-cut");
    let mut sweep =
        kindling().args(args(&cut, &[])).process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while count(&events(&cut), "claim") < 11 {
        assert!(start.elapsed() < Duration::from_secs(180), "trial 10 did not start in three minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let status = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", sweep.id())]).status().unwrap();
    assert!(status.success());
    sweep.wait().unwrap();
    let before = suggestions(&cut);
    assert!(before.len() >= 11 && before.len() < 12 + 1, "{before:?}");
    let out = kindling().args(args(&cut, &["--resume"])).output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));

    // The same trials with the same values, each finished exactly once.
    assert_eq!(suggestions(&cut), expected);
    let after = events(&cut);
    assert_eq!(count(&after, "done"), distinct, "{after:?}");
    assert_eq!(count(&after, "suggest"), 12, "each suggestion made once: {after:?}");
    let report = std::fs::read_to_string(cut.join("report.md")).unwrap();
    assert!(report.contains("12 trials: 12 done"), "{report}");
    for d in [&whole, &cut] {
        std::fs::remove_dir_all(d).unwrap();
    }
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_tpe_sweep_with_asha_counts_pruned_trials_in_what_it_learns() {
    let dir = scratch("tpe-asha");
    let file = tpe_sweep(&dir);
    // Four epochs of a CNN (long enough for the supervisor, which looks at the trials' histories
    // every 200 ms, to see the rungs after epochs 1 and 2), and a range whose low end cannot learn.
    let src = std::fs::read_to_string(&file)
        .unwrap()
        .replace("epochs: 1", "epochs: 4")
        .replace("preset: mlp", "preset: mnist_cnn")
        .replace("train_limit: 400", "train_limit: 1000")
        .replace("loguniform: [1.0e-4, 3.0e-2]", "loguniform: [1.0e-7, 3.0e-2]")
        .replace("  trials: 12", "  trials: 12\n  prune: {kind: asha, min_epochs: 1, reduction_factor: 2}");
    assert!(src.contains("prune: {kind: asha") && src.contains("preset: mnist_cnn") && src.contains("epochs: 4"));
    std::fs::write(&file, src).unwrap();
    let out = run(&["sweep", file.to_str().unwrap(), "--parallel", "1", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    let pruned = csv.lines().filter(|l| l.contains(",pruned,")).count();
    assert!(pruned >= 1, "ASHA stopped no trial:\n{csv}");
    assert!(csv.lines().filter(|l| l.contains(",failed,")).count() == 0, "{csv}");
    // The estimator's suggestions count every ended trial, the pruned ones with the value
    // they reached (failed ones would be left out; there are none).
    let s = suggestions(&dir);
    assert_eq!(s.len(), 12);
    assert_eq!(s[10].3, "tpe (10 trial(s) recorded, 0 of them running)", "{s:?}\n{stdout}");
    assert_eq!(s[11].3, "tpe (11 trial(s) recorded, 0 of them running)", "{s:?}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_parallel_tpe_sweep_counts_running_trials_by_the_constant_liar() {
    let dir = scratch("tpe-parallel");
    let file = tpe_sweep(&dir);
    let out = run(&["sweep", file.to_str().unwrap(), "--parallel", "2", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let s = suggestions(&dir);
    assert_eq!(s.len(), 12);
    // Two start at once: the second is suggested while the first runs; the estimator's trials
    // are suggested as a slot frees, while the other one runs.
    assert_eq!(s[1].3, "random (startup, 1 trial(s) recorded)");
    assert!(s[10].3.starts_with("tpe (10 trial(s) recorded"), "{s:?}");
    assert!(s[10..].iter().any(|s| s.3.ends_with(", 1 of them running)")), "{s:?}");
    let out = run(&["sweep", "--status", dir.to_str().unwrap()]);
    assert!(text(&out.stdout).contains("search: tpe: 12 of 12 trials suggested so far"), "{}", text(&out.stdout));
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(file).unwrap();
}

/// Cluster workers (what a Slurm array task or a Kubernetes pod runs) share a TPE sweep
/// through the store: two at once, each trial suggested once and run once.
#[test]
fn tpe_trials_are_suggested_once_among_concurrent_cluster_workers() {
    let dir = scratch("tpe-workers");
    let file = tpe_sweep(&dir);
    // The Kubernetes launcher creates the store and only renders the job.
    let out = run(&["sweep", file.to_str().unwrap(), "--launcher", "kubernetes", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            kindling()
                .args(["sweep", "--worker", dir.to_str().unwrap()])
                .env("SLURM_CPUS_PER_TASK", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    let s = suggestions(&dir);
    assert_eq!(s.len(), 12, "{s:?}");
    let after = events(&dir);
    assert_eq!(count(&after, "suggest"), 12, "{after:?}");
    let mut ids: Vec<&String> = s.iter().map(|s| &s.1).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(count(&after, "done"), ids.len(), "each trial ran once: {after:?}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(file).unwrap();
}
