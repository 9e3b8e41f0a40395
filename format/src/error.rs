//! Errors of reading and writing snapshot files.

use std::path::{Path, PathBuf};

use crate::dhat::DhatError;
use crate::model::BuildError;
use crate::pickle::PickleError;
use crate::tmsnap::TmsnapError;

/// A snapshot file could not be read or written: which file, and why.
///
/// Displays as `path: problem`, e.g.
/// `old.pickle: not a tracemalloc snapshot: the pickle references os.system`.
///
/// The message is complete: these errors include their cause in their
/// text and do not also return it from `source()`, so that printing the
/// whole chain (anyhow's `{:#}`, as the CLI and the viewer do) says each
/// thing once.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// The problem.
    pub kind: ErrorKind,
}

impl Error {
    /// Attaches the file name to a problem.
    pub fn new(path: &Path, kind: ErrorKind) -> Error {
        Error {
            path: path.to_owned(),
            kind,
        }
    }
}

/// What went wrong with a snapshot file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// The file could not be written.
    #[error("cannot write: {0}")]
    Write(std::io::Error),
    /// The content is not a format this crate reads.
    #[error("not a snapshot file: {0}")]
    UnknownFormat(String),
    /// A `.tmsnap` file that cannot be decoded.
    #[error(transparent)]
    Tmsnap(#[from] TmsnapError),
    /// A pickle that is not a readable tracemalloc snapshot.
    #[error(transparent)]
    Pickle(#[from] PickleError),
    /// A DHAT profile that cannot be read.
    #[error(transparent)]
    Dhat(#[from] DhatError),
    /// The content is valid but too large to hold.
    #[error(transparent)]
    Build(#[from] BuildError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Snapshot;

    /// The message and its `source()` chain, as anyhow's `{:#}` prints it.
    fn chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }

    #[test]
    fn the_whole_chain_says_each_thing_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.tmsnap");
        let err = Snapshot::load(&missing).unwrap_err();
        assert_eq!(chain(&err), err.to_string());
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read: ", missing.display())),
            "{err}"
        );
        let json = dir.path().join("dhat.json");
        std::fs::write(&json, b"{\"dhatFileVersion\":2,\"mode\":\"heap\",\"pps\":[").unwrap();
        let err = Snapshot::load(&json).unwrap_err();
        assert_eq!(chain(&err), err.to_string());
        assert_eq!(
            err.to_string().matches("not a valid DHAT profile").count(),
            1
        );
        let write = Error::new(
            &missing,
            ErrorKind::Write(std::io::Error::other("disk full")),
        );
        assert_eq!(
            chain(&write),
            format!("{}: cannot write: disk full", missing.display())
        );
    }
}
