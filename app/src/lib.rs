//! # tracemalloc-viewer
//!
//! The desktop viewer and the headless CLI for tracemalloc snapshots. A thin
//! view over `tracemalloc-format`, which does all the computing: this crate
//! holds UI state, draws it, and prints.

pub mod cli;
pub mod viewer;
