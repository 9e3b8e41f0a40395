//! tracemalloc-viewer (being written).

fn main() {}
