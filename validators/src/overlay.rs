//! The configuration file pyright is pointed at when a run sets what pyright has no flag for.
//!
//! It sets `typeCheckingMode` and `include` on top of the project's own configuration:
//! pyright has no flag for the first, and paths on its command line would drop the project's
//! `exclude` with its `include`. It must sit in the root, so that relative paths and imports
//! resolve as in a direct run, which puts it in the user's project; so it never outlives the
//! validator's process. It is removed when dropped; when the validator is stopped by SIGTERM,
//! SIGINT or SIGHUP (a time limit: the coordinator sends SIGTERM and waits its grace period), by
//! the signal's handler before the process ends as the signal says; and when the process was
//! killed outright (a run interrupted by Ctrl-C or SIGTERM kills every validator at once), by
//! the next run's validator, which removes every overlay whose process is gone.

use protocol::sdk::Error;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// What names an overlay: the prefix, the process id, the suffix.
const PREFIX: &str = ".orchestrator-pyright-";
const SUFFIX: &str = ".json";

/// The path of this process's last overlay, for the signal handler, which can neither lock
/// nor free: a path replaced is left allocated (one per root a process serves, in practice
/// one).
static WRITTEN: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// The handler is installed once per process.
static HANDLING: Once = Once::new();

/// The overlay, in place until dropped.
pub struct ConfigOverlay {
    pub path: PathBuf,
}

impl ConfigOverlay {
    /// Extends the project's configuration with `typeCheckingMode` and `include`, as given.
    pub fn write(
        root: &Path,
        mode: Option<&str>,
        include: Option<&[&str]>,
    ) -> Result<ConfigOverlay, Error> {
        remove_orphans(root);
        let base = ["pyrightconfig.json", "pyproject.toml"]
            .into_iter()
            .find(|name| root.join(name).is_file());
        let mut config = serde_json::json!({});
        if let Some(mode) = mode {
            config["typeCheckingMode"] = mode.into();
        }
        if let Some(include) = include {
            config["include"] = include.into();
        }
        if let Some(base) = base {
            config["extends"] = format!("./{base}").into();
        }
        let path = root.join(format!("{PREFIX}{}{SUFFIX}", std::process::id()));
        remove_on_signals(&path);
        std::fs::write(&path, config.to_string())
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(ConfigOverlay { path })
    }
}

impl Drop for ConfigOverlay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the overlays in `root` of processes that no longer exist.
fn remove_orphans(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX)?.strip_suffix(SUFFIX))
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid > 0 && pid != std::process::id() as libc::pid_t && !alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process `pid` exists (one of another user's counts).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Has the signals that stop a validator remove `path` first.
fn remove_on_signals(path: &Path) {
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let current = WRITTEN.load(Ordering::Acquire);
    // SAFETY: a non-null pointer here came from `CString::into_raw` and is never freed.
    let same = !current.is_null() && unsafe { CStr::from_ptr(current) } == path.as_c_str();
    if !same {
        WRITTEN.store(path.into_raw(), Ordering::Release);
    }
    HANDLING.call_once(|| {
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            // SAFETY: the handler calls only async-signal-safe functions (unlink, signal,
            // raise) and reads an atomic pointer to a path that is never freed.
            unsafe {
                libc::signal(signal, remove_then_end as *const () as libc::sighandler_t);
            }
        }
    });
}

/// The handler: removes the overlay, then ends the process as the signal would have.
extern "C" fn remove_then_end(signal: libc::c_int) {
    let path = WRITTEN.load(Ordering::Acquire);
    // SAFETY: unlink reads a NUL-terminated path that is never freed; restoring the default
    // action and raising the signal again ends the process with the status it gives.
    unsafe {
        if !path.is_null() {
            libc::unlink(path);
        }
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_of_processes_gone_are_removed_and_the_others_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut ended = std::process::Command::new("true").spawn().expect("true");
        ended.wait().expect("wait");
        let gone = root.path().join(format!("{PREFIX}{}{SUFFIX}", ended.id()));
        let living = root.path().join(format!("{PREFIX}1{SUFFIX}"));
        let other = root.path().join(".orchestrator-pyright-notes.json");
        for file in [&gone, &living, &other] {
            std::fs::write(file, "{}").expect("write");
        }
        let overlay = ConfigOverlay::write(root.path(), Some("strict"), None).expect("written");
        assert!(!gone.exists(), "its process has ended");
        assert!(living.exists() && other.exists());
        let written = std::fs::read_to_string(&overlay.path).expect("the overlay");
        assert!(
            written.contains("\"typeCheckingMode\":\"strict\""),
            "{written}"
        );
        let path = overlay.path.clone();
        drop(overlay);
        assert!(!path.exists(), "removed when dropped");
    }

    /// The validator's process is played by this test's own binary, run again with
    /// `OVERLAY_TEST_ROOT` set: it writes an overlay there and is stopped by SIGTERM, as the
    /// coordinator stops a validator.
    #[test]
    fn a_validator_stopped_by_a_signal_leaves_no_overlay() {
        use std::os::unix::process::ExitStatusExt;
        const NAME: &str = "overlay::tests::a_validator_stopped_by_a_signal_leaves_no_overlay";
        if let Some(root) = std::env::var_os("OVERLAY_TEST_ROOT") {
            let _overlay =
                ConfigOverlay::write(Path::new(&root), None, Some(&["a.py"])).expect("written");
            // SAFETY: raise only sends a signal to this process, which it ends.
            unsafe {
                libc::raise(libc::SIGTERM);
            }
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new(std::env::current_exe().expect("this test"))
            .args(["--exact", NAME, "--nocapture"])
            .env("OVERLAY_TEST_ROOT", root.path())
            .status()
            .expect("the child");
        assert_eq!(status.signal(), Some(libc::SIGTERM), "ended by the signal");
        let left: Vec<_> = std::fs::read_dir(root.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
