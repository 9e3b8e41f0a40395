//! Prints, per allocation site, what dhat-rs and the recorder counted for
//! the same program (see `tracemalloc_tests::dhat_compare`), as a Markdown
//! table. Used by scripts/compare_dhat.sh.
//!
//! ```text
//! compare_dhat DHAT_HEAP_JSON TRACEMALLOC_TMSNAP
//! ```

use std::process::ExitCode;

use tracemalloc_format::Snapshot;
use tracemalloc_tests::dhat_compare::{dhat_sites, our_sites, table};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dhat, ours] = args.as_slice() else {
        eprintln!("usage: compare_dhat DHAT_HEAP_JSON TRACEMALLOC_TMSNAP");
        return ExitCode::from(2);
    };
    let sites = std::fs::read(dhat)
        .map_err(|e| e.to_string())
        .and_then(|bytes| dhat_sites(&bytes).map_err(|e| e.to_string()))
        .map_err(|e| format!("{dhat}: {e}"))
        .and_then(|d| {
            Snapshot::load(ours)
                .map_err(|e| e.to_string())
                .and_then(|s| our_sites(&s).map_err(|e| e.to_string()))
                .map_err(|e| format!("{ours}: {e}"))
                .map(|o| (d, o))
        });
    match sites {
        Ok((d, o)) => {
            print!("{}", table(&d, &o));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compare_dhat: {e}");
            ExitCode::FAILURE
        }
    }
}
