//! Input that is not a click on a widget: keyboard shortcuts, the mouse's
//! side buttons and dropped files, turned into [`Command`]s.

use std::sync::Arc;

use egui::{Event, Key, KeyboardShortcut, Modifiers, PointerButton};

use super::ViewerApp;
use crate::viewer::command::Command;

impl ViewerApp {
    /// Keyboard shortcuts, mouse side buttons and dropped files.
    pub(super) fn handle_input(&mut self, ctx: &egui::Context, commands: &mut Vec<Command>) {
        let typing = ctx.egui_wants_keyboard_input();
        ctx.input_mut(|i| {
            let ctrl = |key| KeyboardShortcut::new(Modifiers::COMMAND, key);
            let alt = |key| KeyboardShortcut::new(Modifiers::ALT, key);
            if i.consume_shortcut(&ctrl(Key::O)) {
                commands.push(Command::OpenDialog);
            }
            if i.consume_shortcut(&ctrl(Key::F)) {
                commands.push(Command::FocusSearch);
            }
            if i.consume_key(Modifiers::NONE, Key::F5) {
                commands.push(Command::Reload);
            }
            if i.consume_shortcut(&alt(Key::ArrowLeft))
                || i.pointer.button_clicked(PointerButton::Extra1)
            {
                commands.push(Command::Back);
            }
            if i.consume_shortcut(&alt(Key::ArrowRight))
                || i.pointer.button_clicked(PointerButton::Extra2)
            {
                commands.push(Command::Forward);
            }
            if !typing {
                if i.events.iter().any(|e| matches!(e, Event::Copy)) {
                    commands.push(Command::CopySelectedRow);
                }
                for (key, delta) in [
                    (Key::ArrowDown, 1),
                    (Key::ArrowUp, -1),
                    (Key::PageDown, 20),
                    (Key::PageUp, -20),
                    (Key::End, isize::MAX / 2),
                    (Key::Home, -(isize::MAX / 2)),
                ] {
                    if i.consume_key(Modifiers::NONE, key) {
                        commands.push(Command::MoveSelection(delta));
                    }
                }
                if i.consume_key(Modifiers::NONE, Key::Enter)
                    && let Some(position) = self.state.selected_position()
                {
                    commands.push(Command::DrillDown(position));
                }
            }
            let mut paths = Vec::new();
            for file in std::mem::take(&mut i.raw.dropped_files) {
                let path = file.path();
                if !path.as_os_str().is_empty() {
                    paths.push(path.to_owned());
                    continue;
                }
                // No path (not the desktop's way, but possible): the bytes.
                match file.bytes() {
                    Ok(bytes) => commands.push(Command::OpenBytes {
                        name: "dropped file".to_owned(),
                        bytes: Arc::from(bytes),
                    }),
                    Err(err) => commands.push(Command::ShowError(format!(
                        "cannot read the dropped file: {err}"
                    ))),
                }
            }
            if !paths.is_empty() {
                commands.push(Command::OpenPaths(paths));
            }
        });
    }
}
