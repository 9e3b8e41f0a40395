//! The whole-process benchmark's baseline: the same workload with the
//! plain system allocator (see `scripts/bench_recorder.sh`); also the
//! program heaptrack runs.
//!
//! ```text
//! bench_workload_system [THREADS] [SCALE]
//! ```

#[path = "support/workload.rs"]
mod workload;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    let scale: u32 = args.next().map_or(Ok(1), |a| a.parse())?;
    let (checksum, elapsed) = workload::run_on_threads(threads, scale)?;
    println!(
        "mode=system threads={threads} workload_s={:.3} checksum={checksum}",
        elapsed.as_secs_f64()
    );
    Ok(())
}
