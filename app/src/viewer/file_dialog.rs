//! File > Open, Open folder and the exports' Save: the desktop's native
//! dialog (rfd, through the XDG portal on Linux) on a background thread,
//! and an in-app file browser (egui_file) where there is no native dialog.
//!
//! rfd answers "no file" both when the user cancels and when no dialog
//! could be shown (no portal, a bare X server): an answer faster than a
//! person can cancel is taken to mean the latter, and the in-app browser
//! opens instead, for this and every later Open. The UI thread never waits
//! for the dialog.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::export::ExportKind;
use super::loader::Notify;

/// A native dialog that answers "nothing" faster than this did not show.
const NO_DIALOG_THRESHOLD: Duration = Duration::from_millis(400);

/// Extensions the dialogs offer first.
pub const SNAPSHOT_EXTENSIONS: &[&str] = &["tmsnap", "pickle", "pkl", "json"];

/// Which dialog File > Open uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogKind {
    /// The desktop's dialog, falling back to the in-app browser.
    Native,
    /// Always the in-app browser.
    InApp,
}

/// What a dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialogPurpose {
    /// Choose snapshot files to open.
    Open,
    /// Choose a folder of snapshots.
    OpenFolder,
    /// Choose where to save an export.
    Save(ExportKind),
}

/// What the dialogs produced this frame.
#[derive(Debug, Default)]
pub struct DialogOutput {
    /// Files or a folder the user chose to open.
    pub chosen: Vec<PathBuf>,
    /// Where the user chose to save an export.
    pub save: Option<(ExportKind, PathBuf)>,
}

/// A native dialog being shown: when it opened, what for, and where its
/// answer (the chosen paths, or none) arrives.
type NativeDialog = (Instant, DialogPurpose, Receiver<Option<Vec<PathBuf>>>);

/// The open dialogs.
pub struct FileDialogs {
    kind: DialogKind,
    native: Option<NativeDialog>,
    browser: Option<(DialogPurpose, egui_file::FileDialog)>,
    /// Where the in-app browser starts: the folder of the last opened file.
    pub start_dir: Option<PathBuf>,
}

impl std::fmt::Debug for FileDialogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDialogs")
            .field("kind", &self.kind)
            .field("native_open", &self.native.is_some())
            .field("browser_open", &self.browser.is_some())
            .finish()
    }
}

impl FileDialogs {
    /// Dialogs of this kind.
    pub fn new(kind: DialogKind) -> FileDialogs {
        FileDialogs {
            kind,
            native: None,
            browser: None,
            start_dir: None,
        }
    }

    /// Whether a native dialog is open (the status bar says so).
    pub fn waiting_for_native(&self) -> bool {
        self.native.is_some()
    }

    /// Whether the in-app browser is open.
    pub fn browser_open(&self) -> bool {
        self.browser.is_some()
    }

    /// Shows a dialog to open snapshots.
    pub fn open(&mut self, notify: Notify) -> Result<()> {
        self.show(DialogPurpose::Open, notify)
    }

    /// Shows a dialog for `purpose`: the native one, or the in-app browser.
    pub fn show(&mut self, purpose: DialogPurpose, notify: Notify) -> Result<()> {
        if self.native.is_some() || self.browser.is_some() {
            return Ok(());
        }
        match self.kind {
            DialogKind::InApp => {
                self.open_browser_for(purpose);
                Ok(())
            }
            DialogKind::Native => {
                let (tx, rx) = channel();
                let start_dir = self.start_dir.clone();
                std::thread::Builder::new()
                    .name("file-dialog".to_owned())
                    .spawn(move || {
                        let mut dialog = rfd::FileDialog::new();
                        if let Some(dir) = start_dir {
                            dialog = dialog.set_directory(dir);
                        }
                        let answer = match purpose {
                            DialogPurpose::Open => dialog
                                .set_title("Open snapshots")
                                .add_filter(
                                    "Snapshots (.tmsnap, .pickle, DHAT .json)",
                                    SNAPSHOT_EXTENSIONS,
                                )
                                .add_filter("tracemalloc-rs snapshots (.tmsnap)", &["tmsnap"])
                                .add_filter(
                                    "CPython tracemalloc pickles (.pickle)",
                                    &["pickle", "pkl"],
                                )
                                .add_filter("DHAT heap profiles (.json)", &["json"])
                                .add_filter("All files", &["*"])
                                .pick_files(),
                            DialogPurpose::OpenFolder => dialog
                                .set_title("Open a folder of snapshots")
                                .pick_folder()
                                .map(|p| vec![p]),
                            DialogPurpose::Save(kind) => dialog
                                .set_title(kind.title())
                                .set_file_name(kind.default_file_name())
                                .add_filter(kind.filter_name(), &[kind.extension()])
                                .save_file()
                                .map(|p| vec![p]),
                        };
                        let _ = tx.send(answer);
                        notify();
                    })
                    .context("cannot start a thread for the file dialog")?;
                self.native = Some((Instant::now(), purpose, rx));
                Ok(())
            }
        }
    }

    /// Shows the in-app browser to open snapshots, whatever the kind.
    pub fn open_browser(&mut self) {
        self.open_browser_for(DialogPurpose::Open);
    }

    /// Shows the in-app browser for `purpose`.
    fn open_browser_for(&mut self, purpose: DialogPurpose) {
        let start = self
            .start_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let browser = match purpose {
            DialogPurpose::Open => egui_file::FileDialog::open_file()
                .title("Open snapshots")
                .multi_select(true),
            DialogPurpose::OpenFolder => {
                egui_file::FileDialog::select_folder().title("Open a folder of snapshots")
            }
            DialogPurpose::Save(kind) => egui_file::FileDialog::save_file()
                .title(kind.title())
                .default_filename(kind.default_file_name()),
        };
        let mut browser = browser
            .initial_path(start)
            .show_new_folder(false)
            .show_rename(false)
            .default_size([640.0, 480.0]);
        browser.open();
        self.browser = Some((purpose, browser));
        self.native = None;
    }

    /// Closes the in-app browser.
    pub fn close_browser(&mut self) {
        self.browser = None;
    }

    /// Polls the native dialog and draws the in-app browser.
    pub fn ui(&mut self, ctx: &egui::Context) -> DialogOutput {
        let mut output = DialogOutput::default();
        let mut answered: Option<(DialogPurpose, Vec<PathBuf>)> = None;
        if let Some((started, purpose, rx)) = &self.native
            && let Ok(answer) = rx.try_recv()
        {
            let quick = started.elapsed() < NO_DIALOG_THRESHOLD;
            let purpose = *purpose;
            self.native = None;
            match answer {
                Some(paths) => answered = Some((purpose, paths)),
                None if quick => {
                    // No native dialog here: use the browser from now on.
                    self.kind = DialogKind::InApp;
                    self.open_browser_for(purpose);
                }
                None => {}
            }
        }
        if let Some((purpose, browser)) = &mut self.browser {
            browser.show(ctx);
            if browser.selected() {
                let mut chosen: Vec<PathBuf> = browser
                    .selection()
                    .into_iter()
                    .map(Path::to_owned)
                    .collect();
                if chosen.is_empty()
                    && let Some(path) = browser.path()
                {
                    chosen.push(path.to_owned());
                }
                answered = Some((*purpose, chosen));
                self.browser = None;
            } else if !browser.visible() {
                self.browser = None;
            }
        }
        match answered {
            Some((DialogPurpose::Save(kind), paths)) => {
                output.save = paths.into_iter().next().map(|p| (kind, p));
            }
            Some((_, paths)) => output.chosen = paths,
            None => {}
        }
        let remembered = output
            .chosen
            .first()
            .or(output.save.as_ref().map(|(_, p)| p));
        if let Some(dir) = remembered.and_then(|p| p.parent()) {
            self.start_dir = Some(dir.to_owned());
        }
        output
    }
}
