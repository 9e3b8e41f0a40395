//! Reader for CPython `tracemalloc` snapshot pickles (being written).

use crate::model::Snapshot;

/// Why a pickle could not be read as a tracemalloc snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// Placeholder until the reader lands.
    #[error("CPython pickles are not supported yet")]
    Unsupported,
}

/// Whether `bytes` start like a pickle of protocol 2 or later.
pub fn has_pickle_header(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x80)
}

/// Decodes a pickled `tracemalloc.Snapshot`.
pub fn decode(_bytes: &[u8]) -> Result<Snapshot, PickleError> {
    Err(PickleError::Unsupported)
}
