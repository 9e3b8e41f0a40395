//! The viewer window (being written).

use std::path::PathBuf;

/// Opens the viewer on `files` and returns the process exit code.
pub fn main(files: Vec<PathBuf>) -> i32 {
    eprintln!(
        "tracemalloc-viewer: the viewer window is not built yet ({} files given)",
        files.len()
    );
    2
}
