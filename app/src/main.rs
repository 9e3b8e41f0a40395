//! `tracemalloc-viewer`: parses arguments, then starts the headless CLI or
//! the viewer window. Nothing else happens here.

use clap::Parser;
use tracemalloc_viewer::{cli, viewer};

fn main() {
    let args = cli::Args::parse();
    let code = match &args.command {
        Some(command) => cli::main(command),
        None => viewer::main(args.files),
    };
    std::process::exit(code);
}
