//! What the UI asks for. Drawing code never changes the state: it returns
//! [`Command`]s, which [`super::ViewerApp::apply`] carries out after the
//! frame is drawn (rerun's convention). Tests and the screenshot scenes
//! send the same commands.

use std::path::PathBuf;

use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::flame::FlameWeight;
use tracemalloc_format::rows::SortColumn;
use tracemalloc_format::{Frame, KeyType, Metric, TraceFilter};

use super::export::ExportKind;
use super::session::SnapshotId;
use super::state::{BottomTab, CentralTab};

/// One user action.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// File > Open: the native dialog, or the in-app browser.
    OpenDialog,
    /// File > Open with the built-in browser.
    OpenBrowser,
    /// File > Open folder: a dialog to choose a folder of snapshots.
    OpenFolderDialog,
    /// Open these files, and every snapshot of these folders (command
    /// line, dialogs, drag-and-drop, recent).
    OpenPaths(Vec<PathBuf>),
    /// Watch the last opened folder for new snapshots, or stop.
    SetWatch(bool),
    /// Open bytes dropped without a path.
    OpenBytes {
        /// The dropped file's name.
        name: String,
        /// Its content.
        bytes: std::sync::Arc<[u8]>,
    },
    /// Open the bundled demo snapshots.
    OpenDemo,
    /// Read every snapshot file again (F5).
    Reload,
    /// Stop loading.
    CancelLoading,
    /// Close one snapshot.
    CloseSnapshot(SnapshotId),
    /// Close every snapshot.
    CloseAll,
    /// Forget one load error.
    DismissError(usize),
    /// Show this snapshot.
    SelectSnapshot(SnapshotId),
    /// Compare to this snapshot, or to none.
    CompareTo(Option<SnapshotId>),
    /// Measure live blocks, or blocks allocated, temporary or live at the
    /// peak (the allocation history's metrics).
    SetMetric(Metric),
    /// Group by file, line or traceback.
    SetKeyType(KeyType),
    /// Cumulative mode on or off.
    SetCumulative(bool),
    /// Hide the Rust standard library's and the recorder's frames.
    SetHideStdFrames(bool),
    /// Add a filter.
    AddFilter(TraceFilter),
    /// Remove the filter at this position.
    RemoveFilter(usize),
    /// Remove every filter.
    ClearFilters,
    /// Sort by a column (a second click reverses the order).
    SortBy(SortColumn),
    /// Search the Source column.
    SetSearch(String),
    /// Select a row, by its position in the shown order.
    SelectRow(usize),
    /// Select a group by its key (a chart's bar): the row is found in the
    /// current or the next result.
    SelectGroup(tracemalloc_format::Traceback),
    /// Move the selection by this many rows (arrow keys, Page Up/Down).
    MoveSelection(isize),
    /// The table (and the growth ranking) scrolled to the selected row: do
    /// not pin them there.
    ScrolledToSelected,
    /// Drill down into a row: a file's lines, a line's tracebacks.
    DrillDown(usize),
    /// Back to the previous grouping and filters.
    Back,
    /// Forward again.
    Forward,
    /// Select a frame of the selected traceback (0: most recent).
    SelectFrame(usize),
    /// Put text on the clipboard.
    Copy(String),
    /// Copy the selected row (Ctrl+C).
    CopySelectedRow,
    /// Open a file at a line in the user's editor.
    OpenInEditor {
        /// The file.
        file: String,
        /// The line.
        line: u32,
    },
    /// Show or hide the charts.
    ShowCharts(bool),
    /// Show or hide the details panel.
    ShowDetails(bool),
    /// Show every annotation column beside the source code, or only the
    /// bytes allocated at each line.
    ShowFullSourceGutter(bool),
    /// Bars per chart.
    SetChartTopN(usize),
    /// Put the keyboard focus in the search box (Ctrl+F).
    FocusSearch,
    /// Say what went wrong, in the status bar.
    ShowError(String),
    /// Show the keyboard shortcuts.
    ShowShortcuts(bool),
    /// Show the table or the flame graph.
    ShowCentralTab(CentralTab),
    /// Show the charts or the timeline.
    ShowBottomTab(BottomTab),
    /// Flame graph widths by bytes or blocks.
    SetFlameWeight(FlameWeight),
    /// Zoom the flame graph on the node reached through these frames
    /// (oldest first), or show the whole tree.
    FlameZoom(Option<Vec<Frame>>),
    /// Highlight the flame graph's frames that contain this text.
    SetFlameSearch(String),
    /// Select the group at this position of the growth ranking.
    SelectGrowing(usize),
    /// Read DHAT profiles at this moment (reloads them).
    SetDhatPoint(DhatPoint),
    /// Ask where to save an export.
    ExportDialog(ExportKind),
    /// Save an export.
    Export {
        /// What to save.
        kind: ExportKind,
        /// Where.
        path: PathBuf,
    },
    /// Quit.
    Quit,
}
