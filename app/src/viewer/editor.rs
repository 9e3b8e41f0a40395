//! "Open in editor": `$VISUAL` or `$EDITOR`, else VS Code (`code -g`), with
//! each editor's own syntax for jumping to a line.

use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// The program and arguments that open `file` at `line` in `editor` (a
/// command line such as `code --wait` or `vim`; `None` for the default).
pub fn editor_command(
    editor: Option<&str>,
    file: &str,
    line: u32,
) -> Result<(String, Vec<String>)> {
    let editor = editor
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or("code");
    let mut words = editor.split_whitespace().map(str::to_owned);
    let Some(program) = words.next() else {
        bail!("the editor command is empty");
    };
    let mut args: Vec<String> = words.collect();
    let name = std::path::Path::new(&program)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let line = line.max(1);
    match name.as_str() {
        // VS Code and its forks.
        "code" | "code-insiders" | "codium" | "vscodium" | "cursor" => {
            args.push("-g".to_owned());
            args.push(format!("{file}:{line}"));
        }
        // `file:line` editors.
        "subl" | "sublime_text" | "zed" | "hx" | "helix" | "mate" => {
            args.push(format!("{file}:{line}"));
        }
        // JetBrains IDEs.
        "idea" | "pycharm" | "clion" | "rustrover" | "goland" | "webstorm" => {
            args.extend(["--line".to_owned(), line.to_string(), file.to_owned()]);
        }
        "kate" => args.extend(["--line".to_owned(), line.to_string(), file.to_owned()]),
        "gedit" | "gnome-text-editor" | "mousepad" | "pluma" | "xed" => {
            args.extend([format!("+{line}"), file.to_owned()]);
        }
        // vi, vim, nvim, gvim, emacs, nano, micro, kak, joe, ...: `+line`.
        _ => args.extend([format!("+{line}"), file.to_owned()]),
    }
    Ok((program, args))
}

/// The editor command line from the environment: `$VISUAL`, then `$EDITOR`.
pub fn editor_from_env() -> Option<String> {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
}

/// Opens `file` at `line` in the user's editor, without waiting for it.
pub fn open_in_editor(file: &str, line: u32) -> Result<String> {
    let editor = editor_from_env();
    let (program, args) = editor_command(editor.as_deref(), file, line)?;
    let mut child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start the editor {program:?} (set $VISUAL or $EDITOR to choose another)"
            )
        })?;
    // Reap the editor when it exits, so it leaves no zombie behind.
    let reaper = std::thread::Builder::new()
        .name("editor-reaper".to_owned())
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(err) = reaper {
        // Without the thread the child is only reaped at exit: harmless.
        eprintln!("tracemalloc-viewer: {err}");
    }
    Ok(format!("{program} {}", args.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(editor: Option<&str>, expected_program: &str, expected_args: &[&str]) {
        let (program, args) = editor_command(editor, "/src/a.rs", 12).unwrap();
        assert_eq!(program, expected_program);
        assert_eq!(args, expected_args);
    }

    #[test]
    fn each_editor_jumps_to_the_line_its_own_way() {
        check(None, "code", &["-g", "/src/a.rs:12"]);
        check(Some("  "), "code", &["-g", "/src/a.rs:12"]);
        check(
            Some("code --wait"),
            "code",
            &["--wait", "-g", "/src/a.rs:12"],
        );
        check(
            Some("/usr/bin/nvim"),
            "/usr/bin/nvim",
            &["+12", "/src/a.rs"],
        );
        check(
            Some("emacsclient -n"),
            "emacsclient",
            &["-n", "+12", "/src/a.rs"],
        );
        check(Some("subl"), "subl", &["/src/a.rs:12"]);
        check(Some("pycharm"), "pycharm", &["--line", "12", "/src/a.rs"]);
        check(Some("gedit"), "gedit", &["+12", "/src/a.rs"]);
    }

    #[test]
    fn line_zero_opens_at_the_first_line() {
        let (_, args) = editor_command(Some("vim"), "a.py", 0).unwrap();
        assert_eq!(args, ["+1", "a.py"]);
    }
}
