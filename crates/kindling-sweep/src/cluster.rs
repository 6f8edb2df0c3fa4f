//! Cluster launchers: Slurm (submitted with `sbatch`) and Kubernetes (a rendered Indexed Job).
//!
//! Neither schedules trials itself. Each submits workers, `kindling sweep --worker <dir>`, that
//! run the local launcher's claim loop one trial at a time against the shared store: take the
//! next trial nobody holds, train it, record the result, take another, until none is left.
//! So a worker that dies loses only its current trial (claimable again once its lease expires),
//! and where the workers ran changes nothing in the trials or the report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use kindling_core::write_atomic;

use crate::SweepError;
use crate::local::{LaunchOutcome, Launcher};
use crate::store::{Manifest, Store, TrialState};

/// Submits a sweep to Slurm as a job array whose tasks are workers.
#[derive(Clone, Debug, Default)]
pub struct Slurm {
    /// The `kindling` executable the workers run (on storage every node sees).
    pub exe: PathBuf,
    /// `--partition`.
    pub partition: Option<String>,
    /// At most this many array tasks at once (`--array=0-N%K`).
    pub max_concurrent: Option<usize>,
    /// `--time` per task, in Slurm's formats (`30`, `2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    /// GPUs per task (`--gres=gpu:G`).
    pub gpus_per_trial: usize,
    /// CPUs per task (`--cpus-per-task`); the worker gives its trials that many threads.
    pub cpus_per_trial: Option<usize>,
    /// Further `#SBATCH` lines, verbatim (`--mem=8G`, `--account=lab`).
    pub sbatch_args: Vec<String>,
}

/// The trials a new submission has work for: no result and no live owner.
fn pending(store: &Store, manifest: &Manifest) -> usize {
    let pending = manifest.trials.iter().filter(|t| matches!(store.state(&t.id), TrialState::Pending)).count();
    // A TPE sweep's trials not yet suggested are pending too.
    pending + total(manifest) - manifest.trials.len()
}

/// How many trials the sweep has: a TPE sweep's `trials`, suggested or not.
fn total(manifest: &Manifest) -> usize {
    if manifest.spec.search == crate::spec::Search::Tpe {
        manifest.spec.trials.max(manifest.trials.len())
    } else {
        manifest.trials.len()
    }
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

impl Slurm {
    /// The sbatch script of an array of `tasks` workers for the sweep in `dir`.
    pub fn render(&self, name: &str, dir: &Path, tasks: usize) -> String {
        let logs = dir.join("slurm");
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(s, "#SBATCH --job-name=kindling-{name}");
        let array = match self.max_concurrent {
            Some(k) => format!("0-{}%{k}", tasks.saturating_sub(1)),
            None => format!("0-{}", tasks.saturating_sub(1)),
        };
        let _ = writeln!(s, "#SBATCH --array={array}");
        let _ = writeln!(s, "#SBATCH --output={}/%A_%a.out", logs.display());
        let _ = writeln!(s, "#SBATCH --ntasks=1");
        if let Some(c) = self.cpus_per_trial {
            let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
        }
        if let Some(p) = &self.partition {
            let _ = writeln!(s, "#SBATCH --partition={p}");
        }
        if let Some(t) = &self.time {
            let _ = writeln!(s, "#SBATCH --time={t}");
        }
        if self.gpus_per_trial > 0 {
            let _ = writeln!(s, "#SBATCH --gres=gpu:{}", self.gpus_per_trial);
        }
        for a in &self.sbatch_args {
            let _ = writeln!(s, "#SBATCH {a}");
        }
        let _ = write!(
            s,
            "\n# Each task is a worker: it claims the next trial nobody holds in the sweep's store (on shared\n\
             # storage), trains it, records the result, and claims another until none is left.\n\
             exec {} sweep --worker {}\n",
            quote(&self.exe),
            quote(dir)
        );
        s
    }
}

impl Launcher for Slurm {
    /// Writes `slurm/submit-<n>.sbatch` in the sweep directory and submits it with `sbatch`;
    /// records the job id in `slurm/jobs`. Returns at once: `kindling sweep --status` follows
    /// the sweep.
    fn launch(&self, store: &Store, manifest: &Manifest) -> Result<LaunchOutcome, SweepError> {
        let tasks = pending(store, manifest);
        let skipped = total(manifest) - tasks;
        if tasks == 0 {
            return Ok(LaunchOutcome { skipped, ..Default::default() });
        }
        let logs = store.dir().join("slurm");
        std::fs::create_dir_all(&logs).map_err(|e| SweepError::Launch(format!("{}: {e}", logs.display())))?;
        let n = std::fs::read_dir(&logs)
            .map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("submit-")).count());
        let script = logs.join(format!("submit-{}.sbatch", n + 1));
        write_atomic(&script, self.render(&manifest.name, store.dir(), tasks).as_bytes())
            .map_err(|e| SweepError::Launch(format!("{}: {e}", script.display())))?;
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(&script)
            .output()
            .map_err(|e| SweepError::Launch(format!("cannot run sbatch ({e}); is this a Slurm login node?")))?;
        if !out.status.success() {
            return Err(SweepError::Launch(format!(
                "sbatch refused {}: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        // `--parsable` prints `<job id>[;<cluster>]`.
        let job = stdout.trim().split(';').next().unwrap_or_default().to_owned();
        let line = format!("{job} {tasks} {}\n", script.display());
        let jobs = logs.join("jobs");
        let mut all = std::fs::read_to_string(&jobs).unwrap_or_default();
        all += &line;
        write_atomic(&jobs, all.as_bytes()).map_err(|e| SweepError::Launch(format!("{}: {e}", jobs.display())))?;
        store.event("submit", "-", &format!("slurm job {job}, {tasks} tasks"));
        Ok(LaunchOutcome { skipped, submitted: Some(job), ..Default::default() })
    }
}

/// The Slurm job ids submitted for the sweep in `dir`, oldest first.
pub fn slurm_jobs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("slurm").join("jobs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect()
}

/// Renders a Kubernetes Indexed Job whose pods are workers; `kubectl apply -f` submits it.
/// (Rendered only: Kindling does not talk to a Kubernetes API.)
#[derive(Clone, Debug, Default)]
pub struct Kubernetes {
    /// The container image, holding the `kindling` binary on its PATH.
    pub image: String,
    /// A PersistentVolumeClaim (ReadWriteMany) holding the sweep directory, mounted at the same
    /// path in every pod.
    pub volume_claim: String,
    /// Pods at once (`parallelism`).
    pub max_concurrent: Option<usize>,
    /// GPUs per pod (`nvidia.com/gpu`).
    pub gpus_per_trial: usize,
    /// CPUs per pod.
    pub cpus_per_trial: Option<usize>,
}

impl Kubernetes {
    /// The Job manifest for `tasks` workers of the sweep in `dir`.
    pub fn render(&self, name: &str, dir: &Path, tasks: usize) -> String {
        let job =
            format!("kindling-{name}").to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
        let mount = dir.parent().unwrap_or(dir);
        let mut limits = Vec::new();
        if let Some(c) = self.cpus_per_trial {
            limits.push(format!("cpu: \"{c}\""));
        }
        if self.gpus_per_trial > 0 {
            limits.push(format!("nvidia.com/gpu: {}", self.gpus_per_trial));
        }
        let resources = if limits.is_empty() {
            String::new()
        } else {
            format!(
                "          resources:\n            limits:\n{}",
                limits.iter().map(|l| format!("              {l}\n")).collect::<String>()
            )
        };
        format!(
            "# Workers of the Kindling sweep in {dir}: each pod claims trials from the shared store until\n\
             # none is left. Submit with: kubectl apply -f <this file>\n\
             apiVersion: batch/v1\n\
             kind: Job\n\
             metadata:\n  name: {job}\n\
             spec:\n  completionMode: Indexed\n  completions: {tasks}\n  parallelism: {parallel}\n  backoffLimit: {tasks}\n\
             \x20 template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: worker\n\
             \x20         image: {image}\n          command: [\"kindling\", \"sweep\", \"--worker\", \"{dir}\"]\n\
             {resources}\
             \x20         volumeMounts:\n            - name: sweeps\n              mountPath: {mount}\n\
             \x20     volumes:\n        - name: sweeps\n          persistentVolumeClaim:\n            claimName: {claim}\n",
            dir = dir.display(),
            parallel = self.max_concurrent.unwrap_or(tasks).min(tasks),
            image = self.image,
            mount = mount.display(),
            claim = self.volume_claim,
        )
    }
}

impl Launcher for Kubernetes {
    /// Writes `kubernetes/job.yaml` in the sweep directory and says how to submit it.
    fn launch(&self, store: &Store, manifest: &Manifest) -> Result<LaunchOutcome, SweepError> {
        let tasks = pending(store, manifest);
        let skipped = total(manifest) - tasks;
        if tasks == 0 {
            return Ok(LaunchOutcome { skipped, ..Default::default() });
        }
        let dir = store.dir().join("kubernetes");
        std::fs::create_dir_all(&dir).map_err(|e| SweepError::Launch(format!("{}: {e}", dir.display())))?;
        let path = dir.join("job.yaml");
        write_atomic(&path, self.render(&manifest.name, store.dir(), tasks).as_bytes())
            .map_err(|e| SweepError::Launch(format!("{}: {e}", path.display())))?;
        Ok(LaunchOutcome { skipped, submitted: Some(path.display().to_string()), ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sbatch_script_is_an_array_of_workers() {
        let slurm = Slurm {
            exe: "/shared/bin/kindling".into(),
            partition: Some("gpu".into()),
            max_concurrent: Some(2),
            time: Some("1:00:00".into()),
            gpus_per_trial: 1,
            cpus_per_trial: Some(4),
            sbatch_args: vec!["--mem=8G".into()],
        };
        let s = slurm.render("vgg3", Path::new("/shared/runs/it's"), 6);
        let expected = "#!/bin/bash\n#SBATCH --job-name=kindling-vgg3\n#SBATCH --array=0-5%2\n\
                        #SBATCH --output=/shared/runs/it's/slurm/%A_%a.out\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=4\n\
                        #SBATCH --partition=gpu\n#SBATCH --time=1:00:00\n#SBATCH --gres=gpu:1\n#SBATCH --mem=8G\n";
        assert!(s.starts_with(expected), "{s}");
        assert!(s.ends_with("exec '/shared/bin/kindling' sweep --worker '/shared/runs/it'\\''s'\n"), "{s}");
        let plain = Slurm { exe: "k".into(), ..Default::default() }.render("x", Path::new("/d"), 3);
        assert!(plain.contains("#SBATCH --array=0-2\n") && !plain.contains("--gres") && !plain.contains("--time"));
    }

    #[test]
    fn the_kubernetes_job_is_indexed_with_the_store_mounted() {
        let k = Kubernetes {
            image: "kindling:0.1".into(),
            volume_claim: "sweeps".into(),
            max_concurrent: Some(3),
            gpus_per_trial: 1,
            cpus_per_trial: Some(2),
        };
        let text = k.render("VGG3_grid", Path::new("/sweeps/vgg3-grid-sweep/20261123"), 12);
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["kind"].as_str(), Some("Job"));
        assert_eq!(doc["metadata"]["name"].as_str(), Some("kindling-vgg3-grid"));
        let spec = &doc["spec"];
        assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
        assert_eq!((spec["completions"].as_u64(), spec["parallelism"].as_u64()), (Some(12), Some(3)));
        let c = &spec["template"]["spec"]["containers"][0];
        let cmd: Vec<&str> = c["command"].as_sequence().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(cmd, ["kindling", "sweep", "--worker", "/sweeps/vgg3-grid-sweep/20261123"]);
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"].as_u64(), Some(1));
        assert_eq!(c["resources"]["limits"]["cpu"].as_str(), Some("2"));
        assert_eq!(c["volumeMounts"][0]["mountPath"].as_str(), Some("/sweeps/vgg3-grid-sweep"));
        assert_eq!(
            spec["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str(),
            Some("sweeps")
        );
        assert_eq!(spec["template"]["spec"]["restartPolicy"].as_str(), Some("Never"));
    }
}
