//! Hot reload of `--config FILE`. A mounted ConfigMap changes by an atomic swap of the
//! `..data` symlink, which inotify on the file itself misses; so the file's content is
//! re-read every few seconds and compared by hash (one small read, no watcher threads).
//! A new valid config replaces the old one; an invalid one is refused and the old one
//! stays in force. This module decides nothing else: the caller re-enqueues nodes or
//! emits the Warning.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// The config in force, shared by every worker; swapped whole on reload.
#[derive(Debug, Default)]
pub struct SharedConfig(RwLock<Arc<Config>>);

impl SharedConfig {
    /// Starts with `config` in force.
    pub fn new(config: Config) -> Self {
        SharedConfig(RwLock::new(Arc::new(config)))
    }

    /// The config in force now.
    pub fn current(&self) -> Arc<Config> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, config: Config) {
        match self.0.write() {
            Ok(mut g) => *g = Arc::new(config),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
        }
    }
}

/// What one look at the file found.
#[derive(Debug, PartialEq)]
pub enum Reload {
    /// Same content (or the same error) as last time.
    Unchanged,
    /// New valid content; it is now in force.
    Applied,
    /// New content (or a new read error) that was refused; the old config stays.
    Rejected(String),
}

/// A config file being followed.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    last: u64,
}

fn fingerprint(state: &Result<String, String>) -> u64 {
    let mut h = DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read config file {}: {e}; check the --config path and the ConfigMap mount",
            path.display()
        )
    })
}

impl ConfigFile {
    /// Loads `path` for the first time; an invalid file is an error (the process must not
    /// start on a config it cannot use).
    pub fn open(path: &Path) -> Result<(ConfigFile, Config), String> {
        let state = read(path);
        let last = fingerprint(&state);
        // The error names the file (never the parser's "<input>").
        let config = Config::parse(&state?, Some(path), 0).map_err(|e| e.to_string())?;
        Ok((
            ConfigFile {
                path: path.to_path_buf(),
                last,
            },
            config,
        ))
    }

    /// Re-reads the file; applies a new valid config to `shared`.
    pub fn poll(&mut self, shared: &SharedConfig) -> Reload {
        let state = read(&self.path);
        let print = fingerprint(&state);
        if print == self.last {
            return Reload::Unchanged;
        }
        self.last = print;
        match state {
            Err(e) => Reload::Rejected(e),
            Ok(text) => match Config::parse(&text, Some(&self.path), 0) {
                Ok(config) => {
                    if *shared.current() == config {
                        // Reformatted or re-commented: same meaning, nothing to redo.
                        return Reload::Unchanged;
                    }
                    shared.replace(config);
                    Reload::Applied
                }
                Err(e) => Reload::Rejected(format!(
                    "config rejected, the previous config stays in force: {e}"
                )),
            },
        }
    }
}

/// Re-reads `file` every `interval` until `shutdown` and hands every change (applied or
/// rejected) to `react`, which decides what the rest of the process does about it.
pub async fn watch(
    mut file: ConfigFile,
    shared: Arc<SharedConfig>,
    interval: Duration,
    shutdown: CancellationToken,
    mut react: impl FnMut(Reload),
) {
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = file.changed(&shared, interval) => outcome,
        };
        react(outcome);
    }
}

impl ConfigFile {
    /// Polls every `interval` until the file changes; returns the outcome.
    pub async fn changed(&mut self, shared: &SharedConfig, interval: Duration) -> Reload {
        loop {
            tokio::time::sleep(interval).await;
            let outcome = self.poll(shared);
            if outcome != Reload::Unchanged {
                return outcome;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_change_is_applied_invalid_change_keeps_the_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "instanceType: a\n").unwrap();
        let (mut file, config) = ConfigFile::open(&path).unwrap();
        assert_eq!(config.instance_type, "a");
        let shared = SharedConfig::new(config);

        assert_eq!(file.poll(&shared), Reload::Unchanged);

        std::fs::write(&path, "instanceType: b\n").unwrap();
        assert_eq!(file.poll(&shared), Reload::Applied);
        assert_eq!(shared.current().instance_type, "b");

        std::fs::write(&path, "instanceType: c\nnoSuchKey: 1\n").unwrap();
        let Reload::Rejected(msg) = file.poll(&shared) else {
            panic!("an unknown key must be rejected");
        };
        assert!(msg.contains("previous config stays in force"), "{msg}");
        assert!(
            msg.contains(&format!("invalid config in {}", path.display())),
            "{msg}"
        );
        assert_eq!(shared.current().instance_type, "b");
        // The same bad content is reported once, not on every poll.
        assert_eq!(file.poll(&shared), Reload::Unchanged);

        // A comment-only change means nothing new.
        std::fs::write(&path, "# same\ninstanceType: b\n").unwrap();
        assert_eq!(file.poll(&shared), Reload::Unchanged);
    }

    #[test]
    fn a_config_that_does_not_parse_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "zone: a\nzone: [b\n").unwrap();
        let err = ConfigFile::open(&path).unwrap_err();
        assert!(err.contains(&format!("--> {}:", path.display())), "{err}");
        assert!(!err.contains("<input>"), "{err}");
    }

    #[test]
    fn configmap_symlink_swap_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("v1");
        let v2 = dir.path().join("v2");
        std::fs::create_dir(&v1).unwrap();
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v1.join("config.yaml"), "zone: z1\n").unwrap();
        std::fs::write(v2.join("config.yaml"), "zone: z2\n").unwrap();
        let data = dir.path().join("..data");
        std::os::unix::fs::symlink(&v1, &data).unwrap();
        let path = dir.path().join("config.yaml");
        std::os::unix::fs::symlink(data.join("config.yaml"), &path).unwrap();

        let (mut file, config) = ConfigFile::open(&path).unwrap();
        let shared = SharedConfig::new(config);
        assert_eq!(shared.current().zone, "z1");
        // Swap ..data atomically, as the kubelet does.
        let tmp = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&v2, &tmp).unwrap();
        std::fs::rename(&tmp, &data).unwrap();
        assert_eq!(file.poll(&shared), Reload::Applied);
        assert_eq!(shared.current().zone, "z2");
    }
}
