//! The screen as an SVG that looks like the terminal: a fixed cell grid,
//! merged background rects, one selectable `<text>` per run of same-style
//! cells stretched to the grid with `textLength`. Half-block cells (the
//! heatmaps) become two rects, since fonts draw block glyphs with gaps.

use super::theme::ColorMode;
use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use unicode_width::UnicodeWidthStr;

/// Cell width and height in px, and the text baseline within a cell (14 px font).
const CW: f64 = 8.4;
const CH: f64 = 18.0;
const BASELINE: f64 = 13.6;
const FONT: &str = "'JetBrains Mono', 'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace";
/// The terminal's own colours, for `Color::Reset`.
const DEFAULT_FG: Rgb = Rgb(0xd4, 0xd4, 0xd4);
const DEFAULT_BG: Rgb = Rgb(0x16, 0x18, 0x1d);
/// The 16 basic colours (VS Code's terminal palette, a common dark-theme choice).
const BASIC: [Rgb; 16] = [
    Rgb(0x00, 0x00, 0x00),
    Rgb(0xcd, 0x31, 0x31),
    Rgb(0x0d, 0xbc, 0x79),
    Rgb(0xe5, 0xe5, 0x10),
    Rgb(0x24, 0x72, 0xc8),
    Rgb(0xbc, 0x3f, 0xbc),
    Rgb(0x11, 0xa8, 0xcd),
    Rgb(0xe5, 0xe5, 0xe5),
    Rgb(0x66, 0x66, 0x66),
    Rgb(0xf1, 0x4c, 0x4c),
    Rgb(0x23, 0xd1, 0x8b),
    Rgb(0xf5, 0xf5, 0x43),
    Rgb(0x3b, 0x8e, 0xea),
    Rgb(0xd6, 0x70, 0xd6),
    Rgb(0x29, 0xb8, 0xdb),
    Rgb(0xff, 0xff, 0xff),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb(u8, u8, u8);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// What one cell shows once colours and REVERSED are resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Look {
    fg: Rgb,
    /// Top and bottom half of the background (different only for half blocks).
    top: Rgb,
    bottom: Rgb,
    /// Drawn as rects only: no glyph.
    block: bool,
    bold: bool,
    italic: bool,
    underline: bool,
    strike: bool,
    dim: bool,
    hidden: bool,
}

/// The buffer as an SVG document. Under `ColorMode::None` colours are
/// dropped (as a NO_COLOR terminal shows them); modifiers stay.
pub fn svg(buf: &Buffer, theme_mode: ColorMode) -> String {
    let (cols, rows) = (buf.area.width as usize, buf.area.height as usize);
    let (w, h) = (cols as f64 * CW, rows as f64 * CH);
    let mut out = String::with_capacity(64 * cols * rows + 512);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"{DEFAULT_BG}\"/>\n\
         <g font-family=\"{FONT}\" font-size=\"14px\">\n",
        w = num(w),
        h = num(h),
    );
    for y in 0..rows {
        let cells = row_cells(buf, y as u16, theme_mode);
        backgrounds(&mut out, y, &cells);
        texts(&mut out, y, &cells);
    }
    out.push_str("</g>\n</svg>\n");
    out
}

/// One row as (column, width in cells, symbol, look), continuation cells of wide characters skipped.
fn row_cells(buf: &Buffer, y: u16, mode: ColorMode) -> Vec<(usize, usize, String, Look)> {
    let mut cells = Vec::with_capacity(buf.area.width as usize);
    let mut x = 0;
    while x < buf.area.width {
        let Some(cell) = buf.cell((buf.area.x + x, buf.area.y + y)) else { break };
        let sym = cell.symbol();
        let width = sym.width().clamp(1, 2).min((buf.area.width - x) as usize);
        cells.push((x as usize, width, sym.to_string(), look(cell, mode)));
        x += width as u16;
    }
    cells
}

fn look(cell: &Cell, mode: ColorMode) -> Look {
    let m = cell.modifier;
    let (mut fg, mut bg) = match mode {
        ColorMode::None => (DEFAULT_FG, DEFAULT_BG),
        _ => (rgb(cell.fg, DEFAULT_FG), rgb(cell.bg, DEFAULT_BG)),
    };
    if m.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    let (top, bottom, block) = match cell.symbol() {
        "▀" => (fg, bg, true),
        "▄" => (bg, fg, true),
        "█" => (fg, fg, true),
        _ => (bg, bg, false),
    };
    Look {
        fg,
        top,
        bottom,
        block,
        bold: m.contains(Modifier::BOLD),
        italic: m.contains(Modifier::ITALIC),
        underline: m.contains(Modifier::UNDERLINED),
        strike: m.contains(Modifier::CROSSED_OUT),
        dim: m.contains(Modifier::DIM),
        hidden: m.contains(Modifier::HIDDEN),
    }
}

fn rgb(c: Color, default: Rgb) -> Rgb {
    match c {
        Color::Reset => default,
        Color::Black => BASIC[0],
        Color::Red => BASIC[1],
        Color::Green => BASIC[2],
        Color::Yellow => BASIC[3],
        Color::Blue => BASIC[4],
        Color::Magenta => BASIC[5],
        Color::Cyan => BASIC[6],
        Color::Gray => BASIC[7],
        Color::DarkGray => BASIC[8],
        Color::LightRed => BASIC[9],
        Color::LightGreen => BASIC[10],
        Color::LightYellow => BASIC[11],
        Color::LightBlue => BASIC[12],
        Color::LightMagenta => BASIC[13],
        Color::LightCyan => BASIC[14],
        Color::White => BASIC[15],
        Color::Rgb(r, g, b) => Rgb(r, g, b),
        Color::Indexed(n) => xterm256(n),
    }
}

/// The xterm-256 palette: 16 basic colours, the 6×6×6 cube, then 24 greys.
fn xterm256(n: u8) -> Rgb {
    const LEVEL: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match n {
        0..=15 => BASIC[n as usize],
        16..=231 => {
            let i = n - 16;
            Rgb(LEVEL[(i / 36) as usize], LEVEL[(i / 6 % 6) as usize], LEVEL[(i % 6) as usize])
        }
        _ => {
            let g = 8 + 10 * (n - 232);
            Rgb(g, g, g)
        }
    }
}

/// Background rects, merged along the row; the page background is not repeated.
fn backgrounds(out: &mut String, y: usize, cells: &[(usize, usize, String, Look)]) {
    let mut i = 0;
    while i < cells.len() {
        let (x0, _, _, l) = &cells[i];
        let mut j = i + 1;
        while j < cells.len() && (cells[j].3.top, cells[j].3.bottom) == (l.top, l.bottom) {
            j += 1;
        }
        let (x1, w1) = (cells[j - 1].0, cells[j - 1].1);
        let (x, w) = (*x0 as f64 * CW, (x1 + w1 - x0) as f64 * CW);
        let top = y as f64 * CH;
        if l.top == l.bottom {
            rect(out, x, top, w, CH, l.top);
        } else {
            rect(out, x, top, w, CH / 2.0, l.top);
            rect(out, x, top + CH / 2.0, w, CH / 2.0, l.bottom);
        }
        i = j;
    }
}

fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, fill: Rgb) {
    if fill != DEFAULT_BG {
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/>",
            num(x),
            num(y),
            num(w),
            num(h)
        );
    }
}

/// One `<text>` per run of cells with the same text style, blanks at the ends trimmed.
fn texts(out: &mut String, y: usize, cells: &[(usize, usize, String, Look)]) {
    let same = |a: &Look, b: &Look| {
        (a.fg, a.bold, a.italic, a.underline, a.strike, a.dim) == (b.fg, b.bold, b.italic, b.underline, b.strike, b.dim)
    };
    let visible = |c: &(usize, usize, String, Look)| !c.3.block && !c.3.hidden;
    let mut i = 0;
    while i < cells.len() {
        if !visible(&cells[i]) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < cells.len() && visible(&cells[j]) && same(&cells[i].3, &cells[j].3) {
            j += 1;
        }
        let run = &cells[i..j];
        let first = run.iter().position(|c| c.2 != " ");
        let last = run.iter().rposition(|c| c.2 != " ");
        if let (Some(a), Some(b)) = (first, last) {
            text(out, y, &run[a..=b]);
        }
        i = j;
    }
}

fn text(out: &mut String, y: usize, run: &[(usize, usize, String, Look)]) {
    let l = &run[0].3;
    let x0 = run[0].0;
    let cells: usize = run.iter().map(|c| c.1).sum();
    let mut attrs = format!(
        "x=\"{}\" y=\"{}\" textLength=\"{}\" fill=\"{}\"",
        num(x0 as f64 * CW),
        num(y as f64 * CH + BASELINE),
        num(cells as f64 * CW),
        l.fg
    );
    if l.bold {
        attrs.push_str(" font-weight=\"bold\"");
    }
    if l.italic {
        attrs.push_str(" font-style=\"italic\"");
    }
    match (l.underline, l.strike) {
        (true, true) => attrs.push_str(" text-decoration=\"underline line-through\""),
        (true, false) => attrs.push_str(" text-decoration=\"underline\""),
        (false, true) => attrs.push_str(" text-decoration=\"line-through\""),
        _ => {}
    }
    if l.dim {
        attrs.push_str(" opacity=\"0.6\"");
    }
    let mut s = String::new();
    run.iter().for_each(|c| escape_into(&mut s, &c.2));
    let _ = writeln!(out, "<text {attrs} xml:space=\"preserve\">{s}</text>");
}

fn escape_into(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 forbids most control characters; a cell should never hold one.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// A coordinate with at most two decimals and no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Write the screen to `dir/attnviz-YYYYMMDD-HHMMSS.svg` (UTC), adding -2, -3… rather
/// than overwriting a file; returns the path written.
pub fn write_svg(buf: &Buffer, mode: ColorMode, dir: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    write_svg_at(buf, mode, dir, secs)
}

fn write_svg_at(buf: &Buffer, mode: ColorMode, dir: &Path, secs: u64) -> std::io::Result<PathBuf> {
    let stem = format!("attnviz-{}", stamp(secs));
    let doc = svg(buf, mode);
    for n in 1.. {
        let name = if n == 1 { format!("{stem}.svg") } else { format!("{stem}-{n}.svg") };
        let path = dir.join(name);
        // create_new: never clobber, even if another writer races us.
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(doc.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free file name"))
}

/// `YYYYMMDD-HHMMSS` for seconds since the Unix epoch (UTC; days to civil date after H. Hinnant).
fn stamp(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    fn buffer(w: u16, h: u16) -> Buffer {
        Buffer::empty(Rect::new(0, 0, w, h))
    }

    /// Minimal well-formedness: balanced tags, quoted attributes, known entities, one root.
    fn well_formed(doc: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = vec![];
        let mut roots = 0;
        let mut rest = doc;
        loop {
            let (txt, next) = match rest.find('<') {
                Some(i) => (&rest[..i], Some(i)),
                None => (rest, None),
            };
            for (k, _) in txt.match_indices('&') {
                let ent = &txt[k..txt[k..].find(';').map_or(txt.len(), |e| k + e + 1)];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&ent) {
                    return Err(format!("bad entity {ent:?}"));
                }
            }
            if txt.contains('>') {
                return Err(format!("raw > in text {txt:?}"));
            }
            if stack.is_empty() && !txt.trim().is_empty() {
                return Err(format!("text outside the root: {txt:?}"));
            }
            let Some(i) = next else { break };
            let end = rest[i..].find('>').ok_or("unclosed tag")? + i;
            let tag = &rest[i + 1..end];
            rest = &rest[end + 1..];
            if tag.contains('<') || !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("bad tag {tag:?}"));
            }
            if let Some(t) = tag.strip_prefix('?') {
                if !t.ends_with('?') || roots > 0 {
                    return Err(format!("bad prolog {tag:?}"));
                }
            } else if let Some(name) = tag.strip_prefix('/') {
                if stack.pop() != Some(name.trim()) {
                    return Err(format!("</{name}> closes nothing open"));
                }
            } else {
                let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
        }
        if !stack.is_empty() || roots != 1 {
            return Err(format!("unclosed {stack:?} or {roots} roots"));
        }
        Ok(())
    }

    #[test]
    fn checker_rejects_broken_xml() {
        assert!(well_formed("<a><b/></a>").is_ok());
        assert!(well_formed("<a><b></a>").is_err());
        assert!(well_formed("<a>x & y</a>").is_err());
        assert!(well_formed("<a x=\"1></a>").is_err());
        assert!(well_formed("<a/><b/>").is_err());
    }

    #[test]
    fn text_is_escaped_and_the_document_well_formed() {
        let mut b = buffer(20, 2);
        b.set_string(0, 0, "if a<b && \"c\"> 0", Style::new());
        let doc = svg(&b, ColorMode::TrueColor);
        assert!(doc.contains(">if a&lt;b &amp;&amp; &quot;c&quot;&gt; 0</text>"), "{doc}");
        assert!(doc.contains("viewBox=\"0 0 168 36\""), "{doc}");
        assert!(doc.contains("monospace\" font-size=\"14px\""), "{doc}");
        well_formed(&doc).unwrap();
    }

    #[test]
    fn a_text_run_sits_on_the_grid_with_its_length() {
        let mut b = buffer(12, 3);
        b.set_string(2, 1, "hello", Style::new().fg(Color::Rgb(10, 20, 30)).add_modifier(Modifier::BOLD));
        b.set_string(7, 1, " you", Style::new().fg(Color::Indexed(196)));
        let doc = svg(&b, ColorMode::TrueColor);
        let want = "<text x=\"16.8\" y=\"31.6\" textLength=\"42\" fill=\"#0a141e\" font-weight=\"bold\" \
                    xml:space=\"preserve\">hello</text>";
        assert!(doc.contains(want), "{doc}");
        // The leading blank is trimmed: the second run starts one cell later.
        assert!(doc.contains("<text x=\"67.2\" y=\"31.6\" textLength=\"25.2\" fill=\"#ff0000\""), "{doc}");
        assert_eq!(doc.matches("<text").count(), 2);
    }

    #[test]
    fn half_blocks_become_two_rects_and_no_glyph() {
        let mut b = buffer(3, 1);
        b[(1, 0)].set_char('▀').set_fg(Color::Rgb(255, 0, 0)).set_bg(Color::Rgb(0, 0, 255));
        b[(2, 0)].set_char('▄').set_fg(Color::Rgb(0, 255, 0));
        let doc = svg(&b, ColorMode::TrueColor);
        assert!(doc.contains("<rect x=\"8.4\" y=\"0\" width=\"8.4\" height=\"9\" fill=\"#ff0000\"/>"), "{doc}");
        assert!(doc.contains("<rect x=\"8.4\" y=\"9\" width=\"8.4\" height=\"9\" fill=\"#0000ff\"/>"), "{doc}");
        // '▄' with the default background: only its lower half is drawn.
        assert!(doc.contains("<rect x=\"16.8\" y=\"9\" width=\"8.4\" height=\"9\" fill=\"#00ff00\"/>"), "{doc}");
        assert_eq!(doc.matches("<rect").count(), 4, "{doc}");
        assert!(!doc.contains('▀') && !doc.contains('▄') && !doc.contains("<text"));
    }

    #[test]
    fn equal_backgrounds_merge_into_one_rect() {
        let mut b = buffer(6, 1);
        b.set_style(Rect::new(1, 0, 4, 1), Style::new().bg(Color::Rgb(40, 40, 40)));
        let doc = svg(&b, ColorMode::TrueColor);
        assert!(doc.contains("<rect x=\"8.4\" y=\"0\" width=\"33.6\" height=\"18\" fill=\"#282828\"/>"), "{doc}");
        assert_eq!(doc.matches("<rect").count(), 2);
    }

    #[test]
    fn reversed_swaps_and_reset_uses_the_defaults() {
        let mut b = buffer(2, 1);
        b.set_string(0, 0, "X", Style::new().fg(Color::Rgb(1, 2, 3)).bg(Color::Rgb(4, 5, 6)).reversed());
        b.set_string(1, 0, "Y", Style::new().reversed());
        let doc = svg(&b, ColorMode::TrueColor);
        assert!(doc.contains("<rect x=\"0\" y=\"0\" width=\"8.4\" height=\"18\" fill=\"#010203\"/>"), "{doc}");
        assert!(doc.contains("fill=\"#040506\" xml:space=\"preserve\">X</text>"), "{doc}");
        assert!(doc.contains(&format!("width=\"8.4\" height=\"18\" fill=\"{DEFAULT_FG}\"/>")), "{doc}");
        assert!(doc.contains(&format!("fill=\"{DEFAULT_BG}\" xml:space=\"preserve\">Y</text>")), "{doc}");
    }

    #[test]
    fn palettes_and_no_color() {
        assert_eq!(xterm256(196), Rgb(255, 0, 0));
        assert_eq!(xterm256(16), Rgb(0, 0, 0));
        assert_eq!(xterm256(67), Rgb(95, 135, 175));
        assert_eq!(xterm256(244), Rgb(128, 128, 128));
        assert_eq!(rgb(Color::DarkGray, DEFAULT_FG), xterm256(8));
        let mut b = buffer(1, 1);
        b.set_string(0, 0, "Z", Style::new().fg(Color::Red).bg(Color::Blue).underlined());
        let doc = svg(&b, ColorMode::None);
        assert!(!doc.contains("<rect x"), "{doc}");
        assert!(doc.contains(&format!("fill=\"{DEFAULT_FG}\" text-decoration=\"underline\"")), "{doc}");
    }

    #[test]
    fn wide_characters_skip_their_continuation_cell() {
        let mut b = buffer(8, 1);
        b.set_string(0, 0, "漢字ab", Style::new());
        let doc = svg(&b, ColorMode::TrueColor);
        assert!(doc.contains("textLength=\"50.4\""), "{doc}");
        assert!(doc.contains(">漢字ab</text>"), "{doc}");
    }

    #[test]
    fn file_names_carry_the_time_and_never_clobber() {
        assert_eq!(stamp(0), "19700101-000000");
        assert_eq!(stamp(951_782_400), "20000229-000000");
        assert_eq!(stamp(1_700_000_000), "20231114-221320");
        let dir = tempfile::tempdir().unwrap();
        let b = buffer(4, 1);
        let a = write_svg_at(&b, ColorMode::TrueColor, dir.path(), 1_700_000_000).unwrap();
        let c = write_svg_at(&b, ColorMode::TrueColor, dir.path(), 1_700_000_000).unwrap();
        assert_eq!(a.file_name().unwrap(), "attnviz-20231114-221320.svg");
        assert_eq!(c.file_name().unwrap(), "attnviz-20231114-221320-2.svg");
        well_formed(&std::fs::read_to_string(c).unwrap()).unwrap();
        assert!(write_svg(&b, ColorMode::Ansi256, dir.path()).unwrap().exists());
    }
}
