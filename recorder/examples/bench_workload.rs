//! The whole-process benchmark's program with the recorder installed
//! (see `scripts/bench_recorder.sh` and docs/BENCHMARKS.md, "Recorder").
//!
//! ```text
//! bench_workload MODE [THREADS] [SCALE]
//! MODE: off | trace:NFRAME | trace:NFRAME:history | trace:NFRAME:notrailers
//!       | trace:NFRAME:history:notrailers
//!       | sampled:NFRAME:MEAN_BYTES | sampled:NFRAME:MEAN_BYTES:history
//! ```
//!
//! Prints the workload's own time; the script times the whole process.

#[path = "support/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "off".into());
    let threads: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    let scale: u32 = args.next().map_or(Ok(1), |a| a.parse())?;
    let parts: Vec<&str> = mode.split(':').collect();
    match parts[..] {
        ["off"] => {}
        ["trace", n] => tracemalloc::start(n.parse()?)?,
        ["trace", n, "history"] => tracemalloc::Config::new(n.parse()?).history(true).start()?,
        // Block trailers are the default; these measure the hash tables.
        ["trace", n, "notrailers"] => tracemalloc::Config::new(n.parse()?)
            .block_trailers(false)
            .start()?,
        ["trace", n, "history", "notrailers"] => tracemalloc::Config::new(n.parse()?)
            .history(true)
            .block_trailers(false)
            .start()?,
        ["sampled", n, mean] => tracemalloc::start_sampled(n.parse()?, mean.parse()?)?,
        ["sampled", n, mean, "history"] => tracemalloc::Config::new(n.parse()?)
            .sampled(mean.parse()?)
            .history(true)
            .start()?,
        _ => return Err(format!("unknown mode {mode}").into()),
    }
    let (checksum, elapsed) = workload::run_on_threads(threads, scale)?;
    let (current, peak) = tracemalloc::get_traced_memory();
    println!(
        "mode={mode} threads={threads} workload_s={:.3} checksum={checksum} traced_current={current} traced_peak={peak} recorder_memory={}",
        elapsed.as_secs_f64(),
        tracemalloc::get_tracemalloc_memory()
    );
    Ok(())
}
