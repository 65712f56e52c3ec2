//! What a simnet directory keeps between runs, and who runs on it now.
//!
//! * `DIR/simnet.toml` (0600) holds the network's secret, the seed it came from (if any) and
//!   how many runs it has had. A restart on the same directory reads it, so the node keys and
//!   the asset stay the same, and counts one more run, so every preimage, payment address and
//!   quote id is drawn afresh (`model::types::Rng`): no run repeats another's, even with a
//!   seed.
//! * `DIR/simnet.lock` is held with an exclusive OS file lock for as long as a simnet runs on
//!   `DIR` and names its pid. A second simnet on the same directory fails at once and names the
//!   first one's pid. The OS drops the lock when the process ends however it ends, so a killed
//!   simnet leaves no lock behind that blocks the next one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::NetworkSecret;
use super::tls::{NodeFilesError, write_file};

/// The state file's name inside `DIR`.
pub const STATE_FILE: &str = "simnet.toml";
/// The lock file's name inside `DIR`.
pub const LOCK_FILE: &str = "simnet.lock";

/// The directory is not usable for this run.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// Another simnet runs on the directory.
    #[error(
        "a simnet is already running on {} (pid {pid}); stop it (Ctrl-C, or kill {pid}) or choose another --dir",
        dir.display()
    )]
    AlreadyRunning {
        /// The directory.
        dir: PathBuf,
        /// The running simnet's pid, as its lock file names it (`?` if unreadable).
        pid: String,
    },
    /// The directory's network was made with another seed (or none).
    #[error(
        "{} holds a network made {made}, not with --seed {asked}; drop --seed to restart it, or choose a new --dir",
        dir.display()
    )]
    SeedMismatch {
        /// The directory.
        dir: PathBuf,
        /// How the existing network was made.
        made: String,
        /// The seed asked for now.
        asked: u64,
    },
    /// The state file is not one this version wrote.
    #[error("{} is damaged ({reason}); delete the directory to start a new network", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The OS had no randomness for a new network's secret.
    #[error("cannot draw a new network's secret from the OS: {0}")]
    Random(#[source] getrandom::Error),
    /// A file could not be read, written or locked.
    #[error("cannot use {}: {source}; check that the simnet directory is writable", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The state file could not be written.
    #[error(transparent)]
    Write(#[from] NodeFilesError),
}

/// `DIR/simnet.toml`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// The network secret, hex.
    secret: String,
    /// The seed the secret came from; absent when it came from the OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// Runs so far, this one included.
    runs: u64,
}

/// Holds `DIR/simnet.lock` for as long as it lives.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the directory's lock and writes this process's pid into it, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, StateDirError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| StateDirError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = match pid.trim() {
                    "" => "?".to_owned(),
                    p => p.to_owned(),
                };
                return Err(StateDirError::AlreadyRunning {
                    dir: dir.to_owned(),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(Self { _file: file })
    }
}

/// The network secret of `dir` and this run's number (0 for a new network), after recording
/// the run. A new directory gets a secret from `seed`, or from the OS without one; an existing
/// one keeps its secret, and refuses a `seed` other than the one it was made with.
pub fn begin_run(dir: &Path, seed: Option<u64>) -> Result<(NetworkSecret, u64), StateDirError> {
    let path = dir.join(STATE_FILE);
    let damaged = |reason: String| StateDirError::Damaged {
        path: path.clone(),
        reason,
    };
    let (state, secret) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let state: StateFile = toml::from_str(&text).map_err(|e| damaged(e.to_string()))?;
            let secret = NetworkSecret::from_hex(&state.secret)
                .ok_or_else(|| damaged("the secret is not 32 bytes of hex".into()))?;
            if let Some(asked) = seed.filter(|s| state.seed != Some(*s)) {
                let made = state.seed.map_or("from OS randomness".to_owned(), |s| {
                    format!("with --seed {s}")
                });
                return Err(StateDirError::SeedMismatch {
                    dir: dir.to_owned(),
                    made,
                    asked,
                });
            }
            (state, secret)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let secret = NetworkSecret::new(seed).map_err(StateDirError::Random)?;
            let state = StateFile {
                secret: secret.to_hex(),
                seed,
                runs: 0,
            };
            (state, secret)
        }
        Err(source) => return Err(StateDirError::Io { path, source }),
    };
    let run = state.runs;
    let next = StateFile {
        runs: run.saturating_add(1),
        ..state
    };
    let text = toml::to_string(&next).map_err(|e| damaged(e.to_string()))?;
    let header = "# tapgate simnet: this network's secret (node keys, asset) and its run count. Keep it private.\n";
    write_file(&path, format!("{header}{text}").as_bytes(), 0o600)?;
    Ok((secret, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_count_up_and_keep_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let (a, run_a) = begin_run(dir.path(), None).unwrap();
        let (b, run_b) = begin_run(dir.path(), None).unwrap();
        assert_eq!((run_a, run_b), (0, 1));
        assert_eq!(a, b);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            begin_run(other.path(), None).unwrap().0,
            a,
            "fresh from the OS"
        );
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(text.contains("runs = 2"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(STATE_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_seed_is_reproducible_and_must_match() {
        let (x, y) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(
            begin_run(x.path(), Some(5)).unwrap().0,
            begin_run(y.path(), Some(5)).unwrap().0
        );
        assert_eq!(begin_run(x.path(), Some(5)).unwrap().1, 1);
        assert_eq!(
            begin_run(x.path(), None).unwrap().1,
            2,
            "no seed: restart as made"
        );
        let e = begin_run(x.path(), Some(6)).unwrap_err();
        assert!(
            e.to_string()
                .contains("made with --seed 5, not with --seed 6"),
            "{e}"
        );
        let os = tempfile::tempdir().unwrap();
        begin_run(os.path(), None).unwrap();
        let e = begin_run(os.path(), Some(1)).unwrap_err();
        assert!(e.to_string().contains("from OS randomness"), "{e}");
    }

    #[test]
    fn a_damaged_state_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "secret = \"zz\"\nruns = 1\n").unwrap();
        let e = begin_run(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("is damaged"), "{e}");
    }

    #[test]
    fn one_lock_per_directory_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let e = DirLock::acquire(dir.path()).unwrap_err();
        let pid = std::process::id().to_string();
        assert!(
            matches!(&e, StateDirError::AlreadyRunning { pid: p, .. } if *p == pid),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("(pid {pid})")));
        drop(held);
        DirLock::acquire(dir.path()).unwrap();
    }
}
