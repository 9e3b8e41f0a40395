//! Known allocations under dhat-rs, for the reader's fixture: at the end,
//! three boxed 1000-byte slices and the 48-byte vector holding them are
//! still live; at the global peak, also eight 4096-byte vectors, the
//! 192-byte vector holding them and a 1024-byte table.
//!
//! Usage: make_dhat_rs OUT.json

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    // Read before profiling starts, so the profile holds only what follows.
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "dhat-rs-heap.json".to_owned());
    let profiler = dhat::Profiler::builder().file_name(&out).build();
    let kept = keep();
    peak();
    drop(profiler);
    drop(kept);
}

fn keep() -> Vec<Box<[u8]>> {
    let mut kept = Vec::with_capacity(3);
    for _ in 0..3 {
        kept.push(vec![7u8; 1000].into_boxed_slice());
    }
    kept
}

#[inline(never)]
fn peak() {
    let buffers: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8; 4096]).collect();
    let table = vec![0u64; 128];
    std::hint::black_box((&buffers, &table));
}
