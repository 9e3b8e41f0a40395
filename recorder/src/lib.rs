//! The tracemalloc recorder (being written).
