//! Source files for the details pane and the tooltips, read on a
//! background thread (a file on a slow or unreachable disk must not stall a
//! frame) and cached.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use anyhow::{Context as _, Result};

use super::loader::Notify;

/// Files larger than this are not shown (a generated file, a minified
/// bundle): reading and laying them out is not worth a frame.
const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// A source file's text, split into lines.
#[derive(Debug)]
pub struct SourceFile {
    /// Where it was found (the recorded path may be relative).
    pub path: PathBuf,
    /// The lines, without their line breaks.
    pub lines: Vec<String>,
}

impl SourceFile {
    /// Line `lineno` (1-based), if the file has it.
    pub fn line(&self, lineno: u32) -> Option<&str> {
        let index = usize::try_from(lineno).ok()?.checked_sub(1)?;
        self.lines.get(index).map(String::as_str)
    }
}

/// What is known about one recorded file name.
#[derive(Clone, Debug)]
pub enum SourceState {
    /// Being read.
    Loading,
    /// Read.
    Found(Arc<SourceFile>),
    /// Not on this machine, or not readable: why, in a few words.
    Missing(String),
}

/// The cache, and the thread that fills it.
pub struct Sources {
    files: HashMap<String, SourceState>,
    requests: Sender<(String, Vec<PathBuf>)>,
    results: Receiver<(String, SourceState)>,
    /// Folders where relative file names are looked up, besides the
    /// working directory: those of the opened snapshot files.
    pub roots: Vec<PathBuf>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("files", &self.files.len())
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl Sources {
    /// Starts the reader thread.
    pub fn start(notify: Notify) -> Result<Sources> {
        let (request_tx, request_rx) = channel::<(String, Vec<PathBuf>)>();
        let (result_tx, result_rx) = channel();
        std::thread::Builder::new()
            .name("source-reader".to_owned())
            .spawn(move || {
                while let Ok((name, roots)) = request_rx.recv() {
                    let state = read_source(&name, &roots);
                    if result_tx.send((name, state)).is_err() {
                        return;
                    }
                    notify();
                }
            })
            .context("cannot start the source reader thread")?;
        Ok(Sources {
            files: HashMap::new(),
            requests: request_tx,
            results: result_rx,
            roots: Vec::new(),
        })
    }

    /// Takes the files read since the last call.
    pub fn poll(&mut self) {
        while let Ok((name, state)) = self.results.try_recv() {
            self.files.insert(name, state);
        }
    }

    /// The state of a recorded file name, asking for it to be read the
    /// first time.
    pub fn get(&mut self, filename: &str) -> SourceState {
        if let Some(state) = self.files.get(filename) {
            return state.clone();
        }
        if is_pseudo_filename(filename) {
            let state = SourceState::Missing("no source file: generated code".to_owned());
            self.files.insert(filename.to_owned(), state.clone());
            return state;
        }
        self.files.insert(filename.to_owned(), SourceState::Loading);
        // The thread only stops when `Sources` is dropped.
        let _ = self
            .requests
            .send((filename.to_owned(), self.roots.clone()));
        SourceState::Loading
    }

    /// Forgets every file, so they are read again (Reload).
    pub fn clear(&mut self) {
        self.files.clear();
    }

    /// Whether a file is being read.
    pub fn is_busy(&self) -> bool {
        self.files
            .values()
            .any(|s| matches!(s, SourceState::Loading))
    }
}

/// Names that are not files: `<unknown>`, `<frozen importlib._bootstrap>`,
/// `<string>`.
fn is_pseudo_filename(name: &str) -> bool {
    name.is_empty() || (name.starts_with('<') && name.ends_with('>'))
}

/// Where a recorded file name may be on this machine. An absolute name is
/// itself; a relative one is looked up next to the snapshot files and in
/// their parent folders first (the traced program ran near where its
/// snapshots were written), then in the working directory.
fn candidates(name: &str, roots: &[PathBuf]) -> Vec<PathBuf> {
    let path = Path::new(name);
    let mut out = Vec::new();
    if path.is_relative() {
        for root in roots {
            for dir in root.ancestors() {
                out.push(dir.join(path));
            }
        }
    }
    out.push(path.to_owned());
    out
}

fn read_source(name: &str, roots: &[PathBuf]) -> SourceState {
    let mut last_error = None;
    for path in candidates(name, roots) {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                if meta.len() > MAX_SOURCE_BYTES {
                    return SourceState::Missing(format!(
                        "{} is too large to show ({} bytes)",
                        path.display(),
                        meta.len()
                    ));
                }
                return match std::fs::read(&path) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes);
                        SourceState::Found(Arc::new(SourceFile {
                            lines: text.lines().map(str::to_owned).collect(),
                            path,
                        }))
                    }
                    Err(err) => {
                        SourceState::Missing(format!("cannot read {}: {err}", path.display()))
                    }
                };
            }
            Ok(_) => last_error = Some(format!("{} is not a file", path.display())),
            Err(_) => {}
        }
    }
    SourceState::Missing(last_error.unwrap_or_else(|| "not on this machine".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait(sources: &mut Sources, name: &str) -> SourceState {
        let start = Instant::now();
        loop {
            sources.poll();
            match sources.get(name) {
                SourceState::Loading => {}
                state => return state,
            }
            assert!(start.elapsed() < Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn relative_names_are_found_under_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "fn a() {}\nfn b() {}\n").unwrap();
        let mut sources = Sources::start(Arc::new(|| {})).unwrap();
        // The snapshot is in a subfolder; the source is relative to its parent.
        sources.roots = vec![dir.path().join("snapshots")];
        let SourceState::Found(file) = wait(&mut sources, "src/lib.rs") else {
            panic!("not found");
        };
        assert_eq!(file.line(2), Some("fn b() {}"));
        assert_eq!(file.line(0), None);
        assert_eq!(file.line(3), None);
        assert!(matches!(
            wait(&mut sources, "src/missing.rs"),
            SourceState::Missing(m) if m == "not on this machine"
        ));
        assert!(matches!(
            sources.get("<frozen importlib._bootstrap>"),
            SourceState::Missing(_)
        ));
    }
}
