//! The whole-process benchmark's workload under dhat-rs's heap profiler,
//! for comparison (see `scripts/bench_recorder.sh`).
//!
//! ```text
//! bench_workload_dhat [THREADS] [SCALE]
//! ```

#[path = "support/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    let scale: u32 = args.next().map_or(Ok(1), |a| a.parse())?;
    let out = std::env::temp_dir().join(format!("dhat-bench-{}.json", std::process::id()));
    let profiler = dhat::Profiler::builder().file_name(&out).build();
    let (checksum, elapsed) = workload::run_on_threads(threads, scale)?;
    drop(profiler);
    let _ = std::fs::remove_file(&out);
    println!(
        "mode=dhat threads={threads} workload_s={:.3} checksum={checksum}",
        elapsed.as_secs_f64()
    );
    Ok(())
}
