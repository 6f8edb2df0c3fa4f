//! Run directories and atomic file writes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary sibling is written and synced, then renamed
/// over `path`. A reader never sees a half-written file, and an interrupted write leaves the
/// previous content (or nothing) in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the temporary file is ours and incomplete.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// This host's name (the kernel's, else `localhost`), read once per process: it names event
/// files and records which machine ran a sweep's trial.
pub fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// This machine's physical memory in bytes (Linux: `MemTotal` of `/proc/meminfo`), or `None`
/// where it cannot be read. Stages compare what a model or a batch would need with it before
/// allocating, so a configuration that cannot fit is an error rather than an abort.
pub fn physical_memory() -> Option<u64> {
    proc_bytes("/proc/meminfo", "MemTotal:")
}

/// This process's peak resident memory in bytes (Linux `VmHWM`), or `None` where it cannot be
/// read: what benchmarks report, and what corruption tests bound.
pub fn peak_memory() -> Option<u64> {
    proc_bytes("/proc/self/status", "VmHWM:")
}

/// The `key:   123 kB` line of a `/proc` file, in bytes.
fn proc_bytes(file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// One run's directory, `runs/<pipeline>/<run-id>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory under `root/<pipeline>/`. The run id is the UTC time
    /// (`20261123-075512`), with a numeric suffix when two runs start in the same second.
    pub fn create(root: &Path, pipeline: &str) -> io::Result<Self> {
        let base = root.join(pipeline);
        fs::create_dir_all(&base)?;
        let stamp = utc_stamp(std::time::SystemTime::now());
        for n in 0..1000 {
            let id = if n == 0 { stamp.clone() } else { format!("{stamp}-{n}") };
            let path = base.join(id);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "too many runs started this second"))
    }

    /// Uses an existing directory as the run directory (creating it if needed).
    pub fn at(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what writes interrupted by a crash or a kill left behind in the run directory
    /// and its subdirectories: [`write_atomic`]'s `.NAME.tmp-PID` and burn's
    /// `NAME.PID-N.tmp`, when process `PID` is not running here. Returns what it removed.
    /// `kindling run --resume` calls it first, so a resumed run ends as clean as one that was
    /// never interrupted.
    pub fn remove_interrupted_writes(&self) -> io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        let mut dirs = vec![self.path.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if kind.is_dir() && dir == self.path {
                    dirs.push(entry.path());
                } else if kind.is_file() && temporary_of(name).is_some_and(|pid| !writer_running(pid)) {
                    fs::remove_file(entry.path())?;
                    removed.push(entry.path());
                }
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// Writes `name` inside the run directory atomically and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.path.join(name);
        write_atomic(&path, bytes)?;
        Ok(path)
    }
}

/// Whether the writer of a temporary file may still be writing it. Where that cannot be told
/// only this process's own files are kept (resuming a run directory that another live
/// process is writing is not supported anyway).
fn writer_running(pid: u32) -> bool {
    pid == std::process::id() || process_alive(pid).unwrap_or(false)
}

/// The writer's pid when `name` is a temporary file of an atomic write: [`write_atomic`]'s
/// `.NAME.tmp-PID`, or burn's `NAME.PID-N.tmp`.
fn temporary_of(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix('.')
        && let Some((_, pid)) = rest.rsplit_once(".tmp-")
    {
        return pid.parse().ok();
    }
    let (_, tag) = name.strip_suffix(".tmp")?.rsplit_once('.')?;
    let (pid, n) = tag.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether process `pid` exists on this host: `Some` on Linux (`/proc/<pid>/stat`; a zombie,
/// exited but not yet reaped, counts as gone), `None` where it cannot be told. The sweep's
/// claims and a resume's clean-up both ask it.
pub fn process_alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    Some(match fs::read_to_string(stat) {
        // The state follows the parenthesised command name: `123 (kindling) Z ...`.
        Ok(s) => s.rsplit_once(')').is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    })
}

/// Formats a time as `YYYYMMDD-HHMMSS` in UTC (civil-from-days, no time-zone database needed).
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Present among a run's artifacts when the run continues an interrupted one in the same
/// directory (`kindling run --resume`): stages that keep checkpoints pick up from theirs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_civil_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_420_512);
        assert_eq!(utc_stamp(t), "20261123-075512");
        assert_eq!(utc_stamp(std::time::UNIX_EPOCH), "19700101-000000");
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("kindling-core-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "left behind: {names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn interrupted_writes_are_recognised_and_removed_but_live_ones_kept() {
        assert_eq!(temporary_of(".last.ckpt.tmp-4242"), Some(4242));
        assert_eq!(temporary_of("model.safetensors.4242-0.tmp"), Some(4242));
        for name in ["model.safetensors", "last.ckpt", ".tmp-x", "a.tmp", "a.b-c.tmp", "history.csv"] {
            assert_eq!(temporary_of(name), None, "{name}");
        }
        let root = std::env::temp_dir().join(format!("kindling-core-debris-{}", std::process::id()));
        let run = RunDir::at(&root).unwrap();
        fs::create_dir_all(root.join("checkpoints")).unwrap();
        // A pid that cannot be running: above the kernel's pid_max ceiling.
        let dead = 4_194_305;
        let mine = std::process::id();
        for name in [
            format!("checkpoints/.last.ckpt.tmp-{dead}"),
            format!("model.safetensors.{dead}-0.tmp"),
            format!(".metrics.json.tmp-{mine}"),
            "checkpoints/last.ckpt".to_owned(),
            "history.csv".to_owned(),
        ] {
            fs::write(root.join(name), b"x").unwrap();
        }
        let removed = run.remove_interrupted_writes().unwrap();
        assert_eq!(
            removed,
            vec![
                root.join(format!("checkpoints/.last.ckpt.tmp-{dead}")),
                root.join(format!("model.safetensors.{dead}-0.tmp"))
            ]
        );
        assert!(root.join(format!(".metrics.json.tmp-{mine}")).exists(), "a live writer's file stays");
        assert!(root.join("checkpoints/last.ckpt").exists() && root.join("history.csv").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn runs_started_together_get_distinct_directories() {
        let root = std::env::temp_dir().join(format!("kindling-core-runs-{}", std::process::id()));
        let a = RunDir::create(&root, "p").unwrap();
        let b = RunDir::create(&root, "p").unwrap();
        assert_ne!(a.path(), b.path());
        fs::remove_dir_all(&root).unwrap();
    }
}
