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
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// The problem.
    #[source]
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
    Read(#[source] std::io::Error),
    /// The file could not be written.
    #[error("cannot write: {0}")]
    Write(#[source] std::io::Error),
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
