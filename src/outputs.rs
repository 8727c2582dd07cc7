//! The one policy for every file a command writes (`--out`, `--png`, checkpoints, pictures):
//!
//! - Before any work ([`check`]): each target is a regular file or does not exist (never a
//!   folder, a device, a named pipe, a socket, or a link to one of those: writing "into"
//!   `/dev/stdout` used to replace the link with an HDF5 file); no two outputs of the run are the
//!   same file and none is an input; its folder exists and is writable; and the temporary name
//!   it is written under fits the file system's limit on a name.
//! - While writing ([`temporary`]): the file is written under a temporary name beside the target
//!   and renamed into place, with the permissions of any new file (0666 less the umask) whatever
//!   kind of output it is; a temporary is removed when the run is interrupted by SIGINT or
//!   SIGTERM, not only when it fails.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use crate::error::{Error, Result};

/// The longest file name Linux file systems accept (ext4, xfs, btrfs, tmpfs: `NAME_MAX`).
const NAME_MAX: usize = 255;

/// Bytes a temporary name adds to the target's: `.` + name + `.` + 6 random characters + `.tmp`.
const TEMP_EXTRA: usize = 1 + 1 + 6 + 4;

/// `path` with its folder made absolute and links resolved (the file itself need not exist).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(path.file_name()?))
}

fn refuse(option: &str, out: &Path, why: impl std::fmt::Display) -> Error {
    let why = why.to_string();
    let sep = if why.starts_with("is ") { " " } else { ": " };
    Error::Config(format!("{option} {}{sep}{why}", out.display()))
}

/// What is at `target` (links followed), when it is something a file must not replace.
fn not_a_file(target: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(target).ok()?;
    let t = meta.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "is a folder; give a file name"
    } else if t.is_fifo() {
        "is a named pipe (FIFO); outputs are written to regular files"
    } else if t.is_socket() {
        "is a socket; outputs are written to regular files"
    } else if t.is_block_device() || t.is_char_device() {
        "is a device; outputs are written to regular files (write to a file and copy it)"
    } else {
        "is not a regular file"
    })
}

/// Before any work: every output (`(option, path)` pairs, so the error names the option to
/// change) can be written where it is asked for under this module's policy, none is one of the
/// run's `inputs` (a dataset, a labels file, a teacher), and no two are the same file.
pub fn check(outputs: &[(&str, &Path)], inputs: &[PathBuf]) -> Result<()> {
    let inputs: Vec<(PathBuf, &PathBuf)> = inputs
        .iter()
        .filter_map(|p| Some((resolved(p)?, p)))
        .collect();
    let mut seen: Vec<(PathBuf, &str)> = Vec::new();
    for &(option, out) in outputs {
        let target = check_one(option, out)?;
        if let Some((_, given)) = inputs.iter().find(|(p, _)| *p == target) {
            return Err(refuse(
                option,
                out,
                format!(
                    "is an input of this run ({}); writing it would destroy it: choose another \
                     output path",
                    given.display()
                ),
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(p, _)| *p == target) {
            return Err(refuse(
                option,
                out,
                format!("is also this run's {other}; one would overwrite the other"),
            ));
        }
        seen.push((target, option));
    }
    Ok(())
}

/// One output on its own: its resolved path, or why it cannot be written.
fn check_one(option: &str, out: &Path) -> Result<PathBuf> {
    let Some(target) = resolved(out) else {
        let dir = out.parent().unwrap_or(Path::new("."));
        return Err(refuse(
            option,
            out,
            format!("the folder {} does not exist", dir.display()),
        ));
    };
    if let Some(why) = not_a_file(&target) {
        return Err(refuse(option, out, why));
    }
    // /dev/stdout is a link into /proc that is a regular file when stdout is redirected to one:
    // renaming a result over the link would replace the link itself (as root, /dev/stdout).
    if [&out.to_path_buf(), &target]
        .iter()
        .any(|p| p.starts_with("/dev") || p.starts_with("/proc"))
    {
        return Err(refuse(
            option,
            out,
            "is under /dev or /proc: outputs are written to regular files in ordinary folders",
        ));
    }
    let name = target.file_name().unwrap_or_default().len();
    if name + TEMP_EXTRA > NAME_MAX {
        return Err(refuse(
            option,
            out,
            format!(
                "the file name is {name} bytes; it is written under a temporary name {TEMP_EXTRA} \
                 bytes longer, and a name may have at most {NAME_MAX}: use a name of at most {}",
                NAME_MAX - TEMP_EXTRA
            ),
        ));
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    tempfile::tempfile_in(dir).map_err(|e| {
        refuse(
            option,
            out,
            format!("cannot write in {} ({e})", dir.display()),
        )
    })?;
    Ok(target)
}

/// A temporary file beside an output, removed when dropped or when the process gets SIGINT or
/// SIGTERM, and renamed into place by [`Temporary::persist`].
pub struct Temporary {
    path: Option<tempfile::TempPath>,
}

/// A new temporary file for the output `path`: `.NAME.XXXXXX.tmp` in its folder, created with
/// the permissions of any new file (0666 less the umask), as every output of this tool is.
pub fn temporary(path: &Path) -> Result<Temporary> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    remove_temporaries_on_signal();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?
        .into_temp_path();
    live().push(tmp.to_path_buf());
    Ok(Temporary { path: Some(tmp) })
}

impl Temporary {
    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("present until persisted")
    }

    /// Rename the temporary into place as `to`.
    pub fn persist(mut self, to: &Path) -> std::result::Result<(), std::io::Error> {
        let tmp = self.path.take().expect("present until persisted");
        let at = tmp.to_path_buf();
        let done = tmp.persist(to).map_err(|e| e.error);
        forget(&at);
        done
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(tmp) = self.path.take() {
            forget(&tmp);
            // TempPath's own drop removes the file.
        }
    }
}

impl std::ops::Deref for Temporary {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<Path> for Temporary {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// The temporaries now being written, for the signal handler to remove.
fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn forget(path: &Path) {
    live().retain(|p| p != path);
}

/// On SIGINT or SIGTERM: remove the temporaries being written, say so on stderr, then exit as
/// the signal would (128 + its number). A thread waits for the signals (signal-hook), so the
/// removal runs as ordinary code, not in a signal handler. Installed once: by the command line
/// at start (so that every interruption is said the same way), else with the first temporary.
/// The exit skips the atexit handlers (`_exit`): HDF5's would close files another thread may be
/// writing at that moment.
pub fn remove_temporaries_on_signal() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return; // without the handler a signal still ends the run; stale files are swept later
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let removed: Vec<PathBuf> = live().drain(..).collect();
                for path in &removed {
                    let _ = std::fs::remove_file(path);
                }
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                eprintln!(
                    "error: interrupted by {name}: {} unfinished output file(s) removed, nothing \
                     half-written left behind (`distill --resume` takes the classes already \
                     finished)",
                    removed.len()
                );
                // SAFETY: _exit ends the process at once; no Rust state is used after it.
                unsafe { libc::_exit(128 + signal) }
            }
        });
    });
}
