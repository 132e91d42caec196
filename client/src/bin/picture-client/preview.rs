//! Showing a picture: the system viewer where there is a display, otherwise a small preview
//! drawn in the terminal with coloured half blocks.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use image::imageops::FilterType;

/// Widest terminal preview, in character cells.
const MAX_PREVIEW_COLUMNS: u32 = 100;

pub fn show(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if has_display() && open_with_viewer(path) {
        println!("Opened {} in the picture viewer.", path.display());
        return Ok(());
    }
    print!("{}", terminal_preview(bytes, terminal_columns())?);
    Ok(())
}

fn has_display() -> bool {
    cfg!(any(target_os = "macos", windows))
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

/// Starts the desktop's viewer for `path` without waiting for it.
fn open_with_viewer(path: &Path) -> bool {
    let mut command = if cfg!(target_os = "macos") {
        Command::new("open")
    } else if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        Command::new("xdg-open")
    };
    command
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

fn terminal_columns() -> u32 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(80)
        .clamp(8, MAX_PREVIEW_COLUMNS)
}

/// Renders the picture `columns` cells wide. Each cell shows two pixels: the upper one as the
/// foreground colour of '▀', the lower one as the background, in 24-bit colour.
pub fn terminal_preview(bytes: &[u8], columns: u32) -> anyhow::Result<String> {
    let image = image::load_from_memory(bytes)?;
    // Cells are about twice as tall as wide, and each holds two pixel rows.
    let rows = (u64::from(image.height()) * u64::from(columns) / u64::from(image.width().max(1)))
        .clamp(2, 2 * u64::from(columns)) as u32;
    let small = image
        .resize_exact(columns, rows & !1, FilterType::Triangle)
        .to_rgb8();
    let mut out = String::new();
    for y in (0..small.height()).step_by(2) {
        for x in 0..small.width() {
            let [r1, g1, b1] = small.get_pixel(x, y).0;
            let [r2, g2, b2] = small.get_pixel(x, y + 1).0;
            let _ = write!(out, "\x1b[38;2;{r1};{g1};{b1}m\x1b[48;2;{r2};{g2};{b2}m▀");
        }
        out.push_str("\x1b[0m\n");
    }
    Ok(out)
}
