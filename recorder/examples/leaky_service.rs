//! A small "service" with a memory leak, traced while it runs: a request
//! loop with a page cache that never evicts (the leak), string building,
//! a session store that expires entries, a buffer pool, a metrics vector
//! that only grows, and a logging thread. It writes numbered snapshots
//! into a directory as it goes; the viewer's timeline shows the cache
//! growing from one snapshot to the next.
//!
//! ```text
//! cargo run --release --example leaky_service -- --out snapshots --snapshots 5
//! ```
//!
//! The viewer's bundled demo snapshots are made with it by
//! `scripts/make_demo_snapshots.sh`. The run is deterministic (a fixed
//! seed), so the snapshots are the same from one run to the next except
//! for addresses and timestamps.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// A tiny deterministic random number generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Request {
    id: u64,
    path: String,
    user: String,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

/// A rendered page, kept forever: the leak.
struct CachedPage {
    html: String,
    headers: Vec<(String, String)>,
}

struct Session {
    user: String,
    last_seen: u64,
    history: Vec<String>,
}

/// Reuses response buffers instead of allocating one per request.
struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    fn get(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| Vec::with_capacity(4096))
    }

    fn put(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        if self.free.len() < 64 {
            self.free.push(buffer);
        }
    }
}

struct Service {
    cache: HashMap<String, Arc<CachedPage>>,
    sessions: BTreeMap<u64, Session>,
    pool: BufferPool,
    latencies: Vec<u32>,
    log: mpsc::Sender<String>,
    clock: u64,
}

const PRODUCTS: [&str; 8] = [
    "kettle", "teapot", "mug", "saucer", "spoon", "strainer", "cosy", "tray",
];

fn make_request(rng: &mut Rng, id: u64) -> Request {
    let product = PRODUCTS[rng.below(PRODUCTS.len() as u64) as usize];
    // Page ids spread wide enough that the cache keeps seeing new keys.
    let page = rng.below(10_000);
    let path = format!("/shop/{product}/{page}?ref=mail");
    let user = format!("user{}", rng.below(500));
    let body = vec![b'x'; 64 + rng.below(512) as usize];
    Request {
        id,
        path,
        user,
        body,
    }
}

fn render_page(path: &str, product: &str) -> CachedPage {
    let mut html = String::with_capacity(256);
    html.push_str("<html><head><title>");
    html.push_str(product);
    html.push_str("</title></head><body>");
    for i in 0..(path.len() % 7 + 3) {
        let _ = write!(html, "<p>{product} offer #{i} for {path}</p>");
    }
    html.push_str("</body></html>");
    let headers = vec![
        ("content-type".to_string(), "text/html".to_string()),
        ("x-product".to_string(), product.to_string()),
        (
            "etag".to_string(),
            format!("\"{:x}\"", html.len() * 2654435761),
        ),
    ];
    CachedPage { html, headers }
}

impl Service {
    fn handle(&mut self, request: Request) -> Response {
        self.clock += 1;
        let segments: Vec<String> = request
            .path
            .split(['/', '?'])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let product = segments.get(1).cloned().unwrap_or_default();
        self.touch_session(&request);
        let page = match self.cache.get(&request.path) {
            Some(page) => Arc::clone(page),
            None => {
                let page = Arc::new(render_page(&request.path, &product));
                self.cache.insert(request.path.clone(), Arc::clone(&page));
                page
            }
        };
        let mut buffer = self.pool.get();
        buffer.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for (name, value) in &page.headers {
            buffer.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        buffer.extend_from_slice(page.html.as_bytes());
        buffer.extend_from_slice(&request.body[..request.body.len().min(16)]);
        let response = Response {
            status: 200,
            body: buffer.clone(),
        };
        self.pool.put(buffer);
        self.latencies.push((request.id % 97) as u32 + 3);
        if request.id.is_multiple_of(50) {
            let _ = self.log.send(format!(
                "request {} {} by {} -> {} ({} bytes)",
                request.id,
                request.path,
                request.user,
                response.status,
                response.body.len()
            ));
        }
        response
    }

    fn touch_session(&mut self, request: &Request) {
        let key = request
            .user
            .bytes()
            .fold(0u64, |h, b| h * 31 + u64::from(b));
        let clock = self.clock;
        let session = self.sessions.entry(key).or_insert_with(|| Session {
            user: request.user.clone(),
            last_seen: clock,
            history: Vec::new(),
        });
        session.last_seen = clock;
        session.history.push(request.path.clone());
        if session.history.len() > 8 {
            session.history.remove(0);
        }
        // Sessions idle for a while expire: bounded memory, unlike the cache.
        if clock.is_multiple_of(1000) {
            let log = &self.log;
            self.sessions.retain(|_, s| {
                let keep = clock - s.last_seen < 2000;
                if !keep {
                    let _ = log.send(format!("session of {} expired", s.user));
                }
                keep
            });
        }
    }
}

/// The logging thread: keeps the last lines in a bounded ring.
fn logger(lines: mpsc::Receiver<String>) -> usize {
    let mut ring: Vec<String> = Vec::with_capacity(256);
    let mut total = 0;
    for line in lines {
        total += 1;
        if ring.len() == 256 {
            ring.remove(0);
        }
        ring.push(line.to_uppercase());
    }
    total
}

struct Args {
    out: PathBuf,
    snapshots: u32,
    requests: u64,
    every: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        out: PathBuf::from("leaky_service_snapshots"),
        snapshots: 5,
        requests: 1600,
        every: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => args.out = PathBuf::from(value()?),
            "--snapshots" => args.snapshots = value()?.parse().map_err(|e| format!("{e}"))?,
            "--requests" => args.requests = value()?.parse().map_err(|e| format!("{e}"))?,
            "--every-ms" => {
                let ms: u64 = value()?.parse().map_err(|e| format!("{e}"))?;
                args.every = Some(Duration::from_millis(ms));
            }
            "-h" | "--help" => {
                return Err("usage: leaky_service [--out DIR] [--snapshots N] \
                            [--requests PER_SNAPSHOT] [--every-ms MS]"
                    .into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    tracemalloc::start(16)?;

    let mut builder = tracemalloc::PeriodicSnapshots::builder(&args.out)
        .prefix("leaky_service")
        .digits(2);
    if let Some(every) = args.every {
        builder = builder.interval(every);
    }
    let snapshots = builder.start()?;

    let (log, lines) = mpsc::channel();
    let logger = std::thread::Builder::new()
        .name("logger".into())
        .spawn(move || logger(lines))?;
    let mut service = Service {
        cache: HashMap::new(),
        sessions: BTreeMap::new(),
        pool: BufferPool { free: Vec::new() },
        latencies: Vec::new(),
        log,
        clock: 0,
    };
    let mut rng = Rng(42);
    let mut id = 0;
    let mut served_bytes = 0usize;
    for round in 1..=args.snapshots {
        for _ in 0..args.requests {
            id += 1;
            let request = make_request(&mut rng, id);
            served_bytes += service.handle(request).body.len();
        }
        let path = snapshots.write_now()?;
        let (current, peak) = tracemalloc::get_traced_memory();
        println!(
            "round {round}: {} cached pages, {} sessions, traced {current} B (peak {peak} B) -> {}",
            service.cache.len(),
            service.sessions.len(),
            path.display()
        );
        let own = tracemalloc::get_tracemalloc_memory_usage();
        println!(
            "  recorder memory: address table {} B, per-thread tables {} B, block trailers {} B, tracebacks {} B, symbolizer {} B",
            own.address_table,
            own.thread_tables,
            own.block_trailers,
            own.tracebacks,
            own.symbolizer
        );
    }
    drop(service);
    let logged = logger.join().map_err(|_| "the logger thread panicked")?;
    snapshots.stop()?;
    println!("served {id} requests ({served_bytes} bytes), logged {logged} lines");
    Ok(())
}
