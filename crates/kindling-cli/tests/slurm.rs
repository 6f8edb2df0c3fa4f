//! The Slurm launcher against a real single-node Slurm cluster (`.ci/slurm-up.sh` starts one;
//! CI does, and sets `KINDLING_REQUIRE_SLURM=1`). Without a cluster the test says so and
//! passes, unless `KINDLING_REQUIRE_SLURM=1`, when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kindling(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kindling"))
        .args(args)
        .current_dir(root())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn cluster_up() -> bool {
    let up = std::env::var_os("SLURM_CONF").is_some()
        && Command::new("sinfo")
            .args(["-h", "-o", "%t"])
            .output()
            .is_ok_and(|o| o.status.success() && ["idle", "mix", "alloc"].contains(&text(&o.stdout).trim()));
    if !up {
        assert!(
            std::env::var_os("KINDLING_REQUIRE_SLURM").is_none(),
            "KINDLING_REQUIRE_SLURM is set but no Slurm cluster answers (SLURM_CONF, sinfo)"
        );
        eprintln!("skipped: no Slurm cluster (start one with `eval \"$(.ci/slurm-up.sh)\"`)");
    }
    up
}

/// A 6-trial sweep (3 learning rates x 2 seeds) of the tiny pipeline, written next to `dir`.
fn pipeline(dir: &Path, preset: &str) -> PathBuf {
    let src = std::fs::read_to_string(root().join("tests/sweeps/tiny.yaml"))
        .unwrap()
        .replace("base_dir: ../..", &format!("base_dir: {}", root().display()))
        .replace("[0.001, 0.01]", "[0.001, 0.003, 0.01]")
        .replace("preset: mlp", &format!("preset: {preset}"));
    let file = dir.with_extension("yaml");
    std::fs::write(&file, src).unwrap();
    file
}

/// Trial id -> number of "done" events.
fn completions(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(dir.join("events.log")).unwrap_or_default().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f[3] == "done" {
            *out.entry(f[4].to_owned()).or_default() += 1;
        }
    }
    out
}

fn job_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("submitted Slurm job "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no job id in: {stdout}"))
        .to_owned()
}

#[test]
fn a_slurm_array_runs_every_trial_once_and_a_cancelled_one_resumes() {
    if !cluster_up() {
        return;
    }
    // Six trials through a job array with at most two tasks at once.
    let dir = std::env::temp_dir().join(format!("kindling-slurm-a-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = pipeline(&dir, "mlp");
    let d = dir.to_str().unwrap();
    let out = kindling(&[
        "sweep",
        file.to_str().unwrap(),
        "--launcher",
        "slurm",
        "--max-concurrent",
        "2",
        "--dir",
        d,
        "--wait",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("6 done, 0 pruned, 0 failed"), "{stdout}");
    let job = job_id(&stdout);
    let script = std::fs::read_to_string(dir.join("slurm/submit-1.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-5%2\n"), "{script}");
    let done = completions(&dir);
    assert_eq!(done.len(), 6, "{done:?}");
    assert!(done.values().all(|&n| n == 1), "every trial completed exactly once: {done:?}");
    // The claims name the array tasks that ran them.
    let status = text(&kindling(&["sweep", "--status", d]).stdout);
    assert!(status.contains(&format!("slurm jobs: {job}")), "{status}");
    assert!(status.contains("6 done"), "{status}");

    // A slower sweep, cancelled after its first trials, then resumed.
    let dir2 = std::env::temp_dir().join(format!("kindling-slurm-b-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir2);
    let file2 = pipeline(&dir2, "mnist_cnn");
    let d2 = dir2.to_str().unwrap();
    let out =
        kindling(&["sweep", file2.to_str().unwrap(), "--launcher", "slurm", "--max-concurrent", "2", "--dir", d2]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job2 = job_id(&text(&out.stdout));
    let start = Instant::now();
    while completions(&dir2).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(180), "no progress: {:?}", completions(&dir2));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(Command::new("scancel").arg(&job2).status().unwrap().success());
    // Wait for the array to leave the queue.
    let start = Instant::now();
    loop {
        let q = Command::new("squeue").args(["-h", "-j", &job2]).output().unwrap();
        if text(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "scancel left tasks: {}", text(&q.stdout));
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = completions(&dir2);
    assert!(before.len() < 6, "cancelled before the end: {before:?}");
    let status = text(&kindling(&["sweep", "--status", d2]).stdout);
    assert!(status.contains(&format!("{} done", before.len())) && status.contains(" 0 running"), "{status}");

    let out = kindling(&["sweep", "--resume", "--launcher", "slurm", "--max-concurrent", "2", "--dir", d2, "--wait"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("{} trial(s) to run", 6 - before.len())), "{stdout}");
    let after = completions(&dir2);
    assert_eq!(after.len(), 6, "{after:?}");
    assert!(after.values().all(|&n| n == 1), "no trial completed twice: {after:?}");
    let script = std::fs::read_to_string(dir2.join("slurm/submit-2.sbatch")).unwrap();
    assert!(script.contains(&format!("#SBATCH --array=0-{}%2\n", 5 - before.len())), "{script}");
    let jobs = text(&kindling(&["sweep", "--status", d2]).stdout);
    assert!(jobs.contains(&format!("slurm jobs: {job2}, ")), "{jobs}");

    for d in [dir, dir2] {
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_file(d.with_extension("yaml")).unwrap();
    }
}
