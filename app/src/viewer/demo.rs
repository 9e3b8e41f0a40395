//! The demo snapshots bundled in the binary, so that `cargo run --release`
//! shows something from any folder: five snapshots of the recorder's
//! `leaky_service` example, taken one after another while it leaks
//! (scripts/make_demo_snapshots.sh writes them to app/demo/).

use std::sync::Arc;

use super::loader::LoadSource;
use super::session::Origin;

/// The bundled snapshots: file name and content, oldest first.
pub const DEMO_FILES: &[(&str, &[u8])] = &[
    (
        "leaky_service-01.tmsnap",
        include_bytes!("../../demo/leaky_service-01.tmsnap"),
    ),
    (
        "leaky_service-02.tmsnap",
        include_bytes!("../../demo/leaky_service-02.tmsnap"),
    ),
    (
        "leaky_service-03.tmsnap",
        include_bytes!("../../demo/leaky_service-03.tmsnap"),
    ),
    (
        "leaky_service-04.tmsnap",
        include_bytes!("../../demo/leaky_service-04.tmsnap"),
    ),
    (
        "leaky_service-05.tmsnap",
        include_bytes!("../../demo/leaky_service-05.tmsnap"),
    ),
];

/// Where the demo's relative source paths (`recorder/examples/...`) are
/// when the viewer runs from this checkout: the workspace the binary was
/// built in. Elsewhere the sources are simply not found.
pub fn source_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}

/// The demo snapshots, ready to load.
pub fn demo_sources() -> Vec<LoadSource> {
    DEMO_FILES
        .iter()
        .map(|&(name, bytes)| LoadSource::Bytes {
            origin: Origin::Demo(name),
            bytes: Arc::from(bytes),
        })
        .collect()
}
