# Sourced by scripts/bench_snapshot_ripgrep.sh and
# scripts/make_ripgrep_history.sh: builds ripgrep with the recorder as its
# global allocator.
#
# build_traced_ripgrep SRC WORK REPO
#   Copies the ripgrep source tree SRC (e.g. the crates.io package that
#   `cargo fetch` leaves in ~/.cargo/registry/src/*/ripgrep-14.1.1) to
#   WORK/rg, adds the recorder of the checkout REPO as a path dependency and
#   a `#[global_allocator]`, and builds ripgrep's release profile (line
#   tables) with frame pointers, as the README recommends (RUSTFLAGS
#   overrides). The binary is WORK/target/release/rg. Only crates are
#   downloaded (by cargo).
build_traced_ripgrep() {
    local src=$1 work=$2 repo=$3
    rm -rf "$work/rg"
    mkdir -p "$work"
    cp -r "$src" "$work/rg"
    # The crates.io package's manifest is normalized: dependencies are
    # tables.
    cat >>"$work/rg/Cargo.toml" <<TOML

[dependencies.tracemalloc]
path = "$repo/recorder"

[workspace]
TOML
    cat >>"$work/rg/crates/core/main.rs" <<'RS'

#[cfg(not(all(target_env = "musl", target_pointer_width = "64")))]
#[global_allocator]
static TRACEMALLOC_ALLOC: tracemalloc::TracingAllocator<std::alloc::System> =
    tracemalloc::TracingAllocator::system();
RS
    (cd "$work/rg" && RUSTFLAGS=${RUSTFLAGS:--C force-frame-pointers=yes} \
        CARGO_TARGET_DIR="$work/target" cargo build --release --quiet)
}
