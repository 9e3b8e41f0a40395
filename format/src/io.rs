//! Loading and saving snapshot files: content detection and atomic writes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dhat::{self, DhatPoint};
use crate::error::{Error, ErrorKind};
use crate::model::Snapshot;
use crate::{pickle, tmsnap};

/// The kinds of file [`Snapshot::load`] reads, told apart by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A `.tmsnap` file (starts with [`tmsnap::MAGIC`]).
    Tmsnap,
    /// A pickle (starts with the PROTO opcode), e.g. from CPython's
    /// `tracemalloc.Snapshot.dump()`.
    Pickle,
    /// A DHAT heap profile (JSON with `dhatFileVersion`), from dhat-rs or
    /// Valgrind's DHAT (see [`dhat`]).
    Dhat,
}

impl SnapshotKind {
    /// What the kind is called in messages: `.tmsnap`, `CPython pickle`,
    /// `DHAT JSON`.
    pub fn name(self) -> &'static str {
        match self {
            SnapshotKind::Tmsnap => ".tmsnap",
            SnapshotKind::Pickle => "CPython pickle",
            SnapshotKind::Dhat => "DHAT JSON",
        }
    }
}

/// Choices for reading formats that hold more than one snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Which moment of a DHAT profile becomes the snapshot.
    pub dhat_point: DhatPoint,
}

/// Tells the kind of a snapshot file from its first bytes.
pub fn detect_kind(bytes: &[u8]) -> Result<SnapshotKind, ErrorKind> {
    if tmsnap::has_magic(bytes) {
        Ok(SnapshotKind::Tmsnap)
    } else if pickle::has_pickle_header(bytes) {
        Ok(SnapshotKind::Pickle)
    } else if dhat::looks_like_dhat(bytes) {
        Ok(SnapshotKind::Dhat)
    } else if dhat::is_json_object(bytes) {
        Err(ErrorKind::UnknownFormat(
            "it is a JSON document, but not a DHAT profile (no \"dhatFileVersion\" near its start)"
                .into(),
        ))
    } else if bytes.is_empty() {
        Err(ErrorKind::UnknownFormat("the file is empty".into()))
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(ErrorKind::UnknownFormat(format!(
            "it is neither a .tmsnap file nor a pickle nor a DHAT profile (it starts with bytes {})",
            head.join(" ")
        )))
    }
}

impl Snapshot {
    /// Reads a snapshot file: a `.tmsnap` file, a CPython tracemalloc
    /// pickle or a DHAT heap profile (at its global peak), whatever its
    /// extension (CPython's `Snapshot.load`).
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot, Error> {
        Snapshot::load_with(path, &LoadOptions::default())
    }

    /// [`Snapshot::load`] with choices for multi-snapshot formats.
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Snapshot, Error> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| Error::new(path, ErrorKind::Read(e)))?;
        Snapshot::from_bytes_with(&bytes, options).map_err(|kind| Error::new(path, kind))
    }

    /// Decodes a snapshot from the bytes of a file (see [`Snapshot::load`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, ErrorKind> {
        Snapshot::from_bytes_with(bytes, &LoadOptions::default())
    }

    /// [`Snapshot::from_bytes`] with choices for multi-snapshot formats.
    pub fn from_bytes_with(bytes: &[u8], options: &LoadOptions) -> Result<Snapshot, ErrorKind> {
        match detect_kind(bytes)? {
            SnapshotKind::Tmsnap => Ok(tmsnap::decode(bytes)?),
            SnapshotKind::Pickle => Ok(pickle::decode(bytes)?),
            SnapshotKind::Dhat => Ok(dhat::decode(bytes, options.dhat_point)?),
        }
    }

    /// The snapshot as the bytes of a `.tmsnap` file.
    pub fn to_tmsnap_bytes(&self) -> Vec<u8> {
        tmsnap::encode(self)
    }

    /// Writes the snapshot as a `.tmsnap` file (CPython's `Snapshot.dump`),
    /// atomically: a crash mid-write leaves the previous file, never a
    /// truncated one.
    pub fn dump(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        write_atomically(path, &self.to_tmsnap_bytes())
            .map_err(|e| Error::new(path, ErrorKind::Write(e)))
    }
}

/// Writes `bytes` to `path` atomically: into a new temporary file in the
/// same directory, flushed to disk, then renamed over `path`, and the
/// directory flushed so the rename itself survives a crash.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (tmp_path, mut file) = create_temp_beside(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp_path, path));
    if let Err(e) = written {
        // Best effort: the temporary file is ours and useless now.
        let _ = fs::remove_file(&tmp_path);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        // Some platforms and filesystems cannot open or sync a directory; the
        // data itself is already safe, so this is best effort.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Creates a fresh temporary file next to `path`, named after it so that a
/// leftover (after a crash) says where it came from.
fn create_temp_beside(path: &Path) -> std::io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot::from_raw_traces(1, [(0, 30, &[("a.py", 2)][..], Some(1))]).unwrap()
    }

    #[test]
    fn dump_then_load_whatever_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.pickle");
        snapshot().dump(&path).unwrap();
        let back = Snapshot::load(&path).unwrap();
        assert_eq!(back.totals().size, 30);
        // Only the target is left: no temporary file.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("snap.pickle")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep.tmsnap");
        fs::write(&path, b"old").unwrap();
        // A directory in the way of the rename makes the write fail late.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        assert!(snapshot().dump(&blocked).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "the temporary file was removed");
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.tmsnap");
        let err = Snapshot::load(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );

        let text = dir.path().join("notes.txt");
        fs::write(&text, b"hello world").unwrap();
        let err = Snapshot::load(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: not a snapshot file: it is neither a .tmsnap file nor a pickle nor a \
                 DHAT profile (it starts with bytes 68 65 6c 6c 6f 20 77 6f)",
                text.display()
            )
        );
        let json = dir.path().join("other.json");
        fs::write(&json, b" {\"pps\": []}").unwrap();
        let err = Snapshot::load(&json).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "not a snapshot file: it is a JSON document, but not a DHAT profile \
                 (no \"dhatFileVersion\" near its start)"
            ),
            "{err}"
        );
        let dhat = dir.path().join("dhat-heap.json");
        fs::write(&dhat, b"{\"dhatFileVersion\":2,\"mode\":\"heap\",\"pps\":[").unwrap();
        let err = Snapshot::load(&dhat).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a valid DHAT profile: EOF while parsing",
                dhat.display()
            )),
            "{err}"
        );
        let empty = dir.path().join("empty");
        fs::write(&empty, b"").unwrap();
        let err = Snapshot::load(&empty).unwrap_err().to_string();
        assert!(
            err.ends_with("not a snapshot file: the file is empty"),
            "{err}"
        );
    }
}
