//! Tells the recorder whether this build asked for frame pointers.
//!
//! The recorder decides at `start()` by checking frame-pointer walks
//! against the DWARF unwinder; this only improves the message it prints
//! when it falls back, and warns at build time for path dependencies.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tracemalloc_fp_flag)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    // `-C force-frame-pointers=yes` arrives as one or two arguments.
    let mut has_fp = false;
    for (i, flag) in flags.iter().enumerate() {
        let value = if let Some(v) = flag.strip_prefix("-Cforce-frame-pointers") {
            Some(v)
        } else if *flag == "-C" {
            flags
                .get(i + 1)
                .and_then(|next| next.strip_prefix("force-frame-pointers"))
        } else {
            None
        };
        if let Some(value) = value {
            has_fp = matches!(value, "" | "=yes" | "=y" | "=on" | "=true" | "=always");
        }
    }
    if has_fp {
        println!("cargo::rustc-cfg=tracemalloc_fp_flag");
    }
}
