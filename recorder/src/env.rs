//! The environment variables, read once at the first allocation (or at
//! the first control call, whichever comes first):
//!
//! - `TRACEMALLOC=N` starts tracing with `N` frames, like
//!   `PYTHONTRACEMALLOC`; `0` or an empty value leaves tracing off.
//! - `TRACEMALLOC_SAMPLE=BYTES` makes that tracing sampled, with a mean of
//!   `BYTES` between samples.
//! - `TRACEMALLOC_HISTORY=1` makes that tracing record allocation history
//!   (`Config::history`).
//! - `TRACEMALLOC_SNAPSHOT=PATH` writes a snapshot to `PATH` at exit (if
//!   tracing then); `{pid}` in the path becomes the process id.
//!
//! An invalid value is reported once on stderr and ignored.

use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::lock::SpinLock;
use crate::state::{EPOCH, Settings};
use crate::tls::{GUARD_UNTRACED, Guard};
use crate::unwind::Unwinder;

static ENV_READ: AtomicBool = AtomicBool::new(false);
static EXIT_PATH: SpinLock<Option<PathBuf>> = SpinLock::new(None);
static ATEXIT_REGISTERED: AtomicBool = AtomicBool::new(false);

/// Reads the environment once. Cheap after the first call.
pub(crate) fn init() {
    if ENV_READ.load(Ordering::Acquire) || ENV_READ.swap(true, Ordering::AcqRel) {
        return;
    }
    // Nothing started yet: the allocation hooks now see "off" instead of
    // "environment not read".
    let _ = EPOCH.compare_exchange(0, 2, Ordering::AcqRel, Ordering::Relaxed);
    let _guard = Guard::enter(GUARD_UNTRACED);
    let settings = read_settings(
        getenv(c"TRACEMALLOC").as_deref(),
        getenv(c"TRACEMALLOC_SAMPLE").as_deref(),
        getenv(c"TRACEMALLOC_HISTORY").as_deref(),
    );
    let settings = match settings {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("tracemalloc: {message}");
            None
        }
    };
    if let Some(path) = getenv(c"TRACEMALLOC_SNAPSHOT").filter(|p| !p.is_empty()) {
        set_exit_path(PathBuf::from(path));
    }
    if let Some(settings) = settings
        && let Err(e) = crate::state::start(settings)
    {
        eprintln!("tracemalloc: cannot start tracing from TRACEMALLOC: {e}");
    }
}

/// A variable's value, read without allocating through the traced
/// allocator's hooks (`std::env` takes a lock the program may hold).
fn getenv(name: &CStr) -> Option<String> {
    // SAFETY: `name` is NUL-terminated; the returned pointer, when not
    // null, is a NUL-terminated string owned by the environment, copied at
    // once.
    unsafe {
        let value = libc::getenv(name.as_ptr());
        if value.is_null() {
            return None;
        }
        Some(CStr::from_ptr(value).to_string_lossy().into_owned())
    }
}

/// The settings the variables ask for: `Ok(None)` when tracing is not
/// requested, `Err` with a message when a value is invalid.
pub(crate) fn read_settings(
    tracemalloc: Option<&str>,
    sample: Option<&str>,
    history: Option<&str>,
) -> Result<Option<Settings>, String> {
    let nframe = match tracemalloc.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(value) => match value.parse::<u32>() {
            Ok(0) => return Ok(None),
            Ok(n) if n <= crate::MAX_NFRAME => n,
            _ => {
                return Err(format!(
                    "ignoring TRACEMALLOC={value:?}: expected a number of frames from 0 to {}",
                    crate::MAX_NFRAME
                ));
            }
        },
    };
    let sample_mean = match sample.map(str::trim) {
        None | Some("") => None,
        Some(value) => match value.parse::<u64>() {
            Ok(m) if m > 0 => Some(m),
            _ => {
                return Err(format!(
                    "ignoring TRACEMALLOC_SAMPLE={value:?}: expected a mean number of bytes \
                     between samples, at least 1 (tracing is not started)"
                ));
            }
        },
    };
    let history = match history.map(str::trim) {
        None | Some("" | "0") => false,
        Some("1") => true,
        Some(value) => {
            return Err(format!(
                "ignoring TRACEMALLOC_HISTORY={value:?}: expected 0 or 1 (tracing is not started)"
            ));
        }
    };
    Ok(Some(Settings {
        nframe,
        sample_mean,
        keep_internal: false,
        unwinder: Unwinder::Auto,
        block_trailers: true,
        history,
    }))
}

/// Makes the process write a snapshot to `path` when it exits.
pub(crate) fn set_exit_path(path: PathBuf) {
    {
        let _guard = Guard::enter(GUARD_UNTRACED);
        *EXIT_PATH.lock() = Some(path);
    }
    if !ATEXIT_REGISTERED.swap(true, Ordering::AcqRel) {
        // SAFETY: `dump_at_exit` is an `extern "C" fn()` that stays valid
        // for the life of the process.
        unsafe {
            libc::atexit(dump_at_exit);
        }
    }
}

/// Replaces `{pid}` with the process id.
pub(crate) fn expand_path(path: &std::path::Path) -> PathBuf {
    let text = path.to_string_lossy();
    if text.contains("{pid}") {
        PathBuf::from(text.replace("{pid}", &std::process::id().to_string()))
    } else {
        path.to_owned()
    }
}

extern "C" fn dump_at_exit() {
    let _guard = Guard::enter(GUARD_UNTRACED);
    let Some(path) = EXIT_PATH.lock().clone() else {
        return;
    };
    if !crate::is_tracing() {
        return;
    }
    let path = expand_path(&path);
    let result = crate::take_snapshot().and_then(|s| s.dump(&path).map_err(crate::Error::from));
    if let Err(e) = result {
        eprintln!("tracemalloc: cannot write the exit snapshot: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_pythontracemalloc() {
        assert!(read_settings(None, None, None).unwrap().is_none());
        assert!(read_settings(Some(""), None, None).unwrap().is_none());
        assert!(read_settings(Some("0"), None, None).unwrap().is_none());
        let s = read_settings(Some(" 16 "), None, None).unwrap().unwrap();
        assert_eq!(s.nframe, 16);
        assert_eq!(s.sample_mean, None);
        let s = read_settings(Some("4"), Some("65536"), None)
            .unwrap()
            .unwrap();
        assert_eq!(s.sample_mean, Some(65536));
        let err = read_settings(Some("lots"), None, None).unwrap_err();
        assert!(err.contains("TRACEMALLOC=\"lots\""), "{err}");
        assert!(read_settings(Some("100000"), None, None).is_err());
        assert!(read_settings(Some("-1"), None, None).is_err());
        assert!(read_settings(Some("8"), Some("0"), None).is_err());
        assert!(
            !read_settings(Some("8"), None, Some("0"))
                .unwrap()
                .unwrap()
                .history
        );
        assert!(
            read_settings(Some("8"), None, Some("1"))
                .unwrap()
                .unwrap()
                .history
        );
        let err = read_settings(Some("8"), None, Some("yes")).unwrap_err();
        assert!(err.contains("TRACEMALLOC_HISTORY=\"yes\""), "{err}");
        // History without tracing asks for nothing.
        assert!(read_settings(None, None, Some("1")).unwrap().is_none());
    }

    #[test]
    fn pid_placeholder_expands() {
        let p = expand_path(std::path::Path::new("/tmp/snap-{pid}.tmsnap"));
        assert_eq!(
            p,
            PathBuf::from(format!("/tmp/snap-{}.tmsnap", std::process::id()))
        );
    }
}
