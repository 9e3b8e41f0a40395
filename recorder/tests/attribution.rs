//! Each common allocation construct is attributed to the user's line that
//! wrote it, not to the standard library or the recorder.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use common::{at_line, describe};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/attribution.rs";

#[test]
// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn constructs_are_grouped_under_the_users_line() {
    let _serial = common::serial();
    tracemalloc::start(8).unwrap();
    tracemalloc::clear_traces();

    let (zeroed, vec_line) = (vec![0u8; 4096], line!());
    let (formatted, format_line) = (format!("{}-{}", black_box(12345), black_box("abc")), line!());
    let mut grown = Vec::new();
    let push_line = line!(); for i in 0..1000u64 { grown.push(black_box(i)); }
    let (with_capacity, with_capacity_line) = (String::with_capacity(black_box(1000)), line!());
    let (boxed, box_line) = (Box::new(black_box([7u8; 512])), line!());
    let mut map = HashMap::new();
    let insert_line = line!(); for i in 0..100u32 { map.insert(black_box(i), i); }
    let mut tree = BTreeMap::new();
    let btree_line = line!(); for i in 0..100u32 { tree.insert(black_box(i), i); }
    let (collected, collect_line) = ((0..1000u32).map(black_box).collect::<Vec<u32>>(), line!());
    let (strings, map_line) = ((0..10).map(|i| format!("item {i}")).collect::<Vec<String>>(), line!());
    let (from_thread, thread_line) = (std::thread::spawn(|| vec![1u8; 3000]).join().unwrap(), line!());

    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = describe(&snapshot);
    let check = |what: &str, line: u32, min_size: u64| {
        let (size, count) = at_line(&snapshot, FILE, line);
        assert!(
            size >= min_size && count >= 1,
            "{what} on line {line}: {size} B in {count} blocks; the snapshot:\n{report}"
        );
    };
    check("vec!", vec_line, 4096);
    check("format!", format_line, 9);
    check("Vec::push growth", push_line, 8000);
    check("String::with_capacity", with_capacity_line, 1000);
    check("Box::new", box_line, 512);
    check("HashMap::insert", insert_line, 100 * 8);
    check("BTreeMap::insert", btree_line, 100 * 8);
    check("collect", collect_line, 4000);
    check("map(format!).collect", map_line, 10 * 6 + 10 * 24);
    check("a spawned thread", thread_line, 3000);

    // Exact sizes where the construct makes them exact.
    assert_eq!(at_line(&snapshot, FILE, vec_line), (4096, 1));
    assert_eq!(at_line(&snapshot, FILE, box_line), (512, 1));
    assert_eq!(at_line(&snapshot, FILE, collect_line), (4000, 1));
    assert_eq!(at_line(&snapshot, FILE, push_line), (1024 * 8, 1));

    // Nothing of this test is attributed to the standard library, the
    // allocator shim or the recorder: a traceback that passes through this
    // file starts in it. (The test harness's own allocations, from its
    // threads, have only standard-library frames.)
    let stats = snapshot
        .statistics(tracemalloc_format::KeyType::Traceback, false)
        .unwrap();
    for s in &stats {
        let ours = s
            .traceback
            .frames
            .iter()
            .any(|f| f.filename.ends_with(FILE));
        let frame = &s.traceback.frames[0];
        assert!(
            !ours || frame.filename.ends_with(FILE),
            "{}:{} is not the user's; the snapshot:\n{report}",
            frame.filename,
            frame.lineno
        );
        assert!(
            !frame.filename.contains("recorder/src/"),
            "the recorder appears in its own snapshot:\n{report}"
        );
        if ours {
            assert!(
                std::path::Path::new(&*frame.filename).is_absolute(),
                "{}",
                frame.filename
            );
        }
    }

    black_box((zeroed, formatted, grown, with_capacity, boxed, map, tree));
    black_box((collected, strings, from_thread));
    tracemalloc::stop();
}

#[inline(never)]
fn leaf() -> Vec<u8> {
    vec![0u8; 100]
}

#[inline(never)]
fn middle() -> Vec<u8> {
    let v = leaf();
    black_box(v)
}

#[test]
fn tracebacks_keep_callers_most_recent_first_and_respect_the_limit() {
    let _serial = common::serial();
    tracemalloc::start(2).unwrap();
    tracemalloc::clear_traces();
    let v = middle();
    let tb = tracemalloc::get_object_traceback(v.as_ptr()).expect("the block is traced");
    let names: Vec<_> = tb.frames.iter().map(|f| f.function.clone()).collect();
    assert_eq!(tb.frames.len(), 2, "{names:?}");
    assert!(
        tb.frames[0]
            .function
            .as_deref()
            .unwrap_or("")
            .contains("leaf"),
        "{names:?}"
    );
    assert!(
        tb.frames[1]
            .function
            .as_deref()
            .unwrap_or("")
            .contains("middle"),
        "{names:?}"
    );
    assert!(
        tb.total_nframe.is_none_or(|n| n >= 3),
        "{:?}",
        tb.total_nframe
    );

    // A larger limit reaches this test function.
    tracemalloc::start(4).unwrap();
    let (w, call_line) = (middle(), line!());
    let tb = tracemalloc::get_object_traceback(w.as_ptr()).unwrap();
    assert!(tb.frames.len() >= 3);
    assert_eq!(tb.frames[2].lineno, call_line);
    assert!(tb.frames[2].filename.ends_with(FILE));

    // With internal frames kept, the standard library and the recorder
    // show up above the user's frames.
    tracemalloc::Config::new(64)
        .keep_internal_frames(true)
        .start()
        .unwrap();
    let x = middle();
    let tb = tracemalloc::get_object_traceback(x.as_ptr()).unwrap();
    assert!(!tb.frames[0].filename.ends_with(FILE));
    assert!(tb.frames.iter().any(|f| f.filename.starts_with("/rustc/")));
    assert!(tb.frames.iter().any(|f| f.filename.ends_with(FILE)));
    tracemalloc::stop();
    black_box((v, w, x));
}
