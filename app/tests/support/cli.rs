//! The command line, for the three CLI test files: the real binary (exit
//! codes, stderr, pipes) and the same commands run in process (faster, and
//! errors as values).

use std::path::Path;
use std::process::Command;

use clap::Parser as _;
use tracemalloc_viewer::cli::{Args, run};

/// The real `tracemalloc-viewer` binary, ready for arguments.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracemalloc-viewer"))
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn run_binary(args: &[&str]) -> (i32, String, String) {
    let out = binary().args(args).output().expect("the binary runs");
    (
        out.status.code().expect("the binary exits normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary and returns its output, which must be a success.
pub fn binary_ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = run_binary(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
}

/// Runs a command line in this process, as `main` would parse it; returns
/// its output, or its error message as the binary prints it.
pub fn run_in_process(args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["tracemalloc-viewer"];
    argv.extend_from_slice(args);
    let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
    let command = args.command.expect("a subcommand");
    let mut out = Vec::new();
    run(&command, &mut out).map_err(|e| format!("{e:#}"))?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

/// Runs a command line in this process; its output, which must be a
/// success.
pub fn in_process_ok(args: &[&str]) -> String {
    run_in_process(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
