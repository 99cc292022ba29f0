//! A step's Markdown as wrapped, styled terminal lines: headings, paragraphs,
//! bullet and numbered lists, block quotes, fenced code; inline bold,
//! italics and code spans. Enough for lesson text, no more.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthStr;

/// Styles the text is drawn in.
#[derive(Debug, Clone, Copy)]
pub struct MdStyle {
    pub text: Style,
    pub heading: Style,
    pub code: Style,
    pub quote: Style,
}

enum Block {
    Heading(usize, String),
    Para(String),
    /// Marker ("•", "1."), text.
    Item(String, String),
    Quote(String),
    Code(Vec<String>),
    Blank,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = vec![];
    let mut lines = md.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_end();
        let s = t.trim_start();
        if s.starts_with("```") {
            let mut code = vec![];
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                code.push(l.trim_end().to_string());
            }
            out.push(Block::Code(code));
        } else if s.is_empty() {
            if !matches!(out.last(), Some(Block::Blank) | None) {
                out.push(Block::Blank);
            }
        } else if let Some(level) = heading_level(s) {
            out.push(Block::Heading(level, s[level..].trim().to_string()));
        } else if let Some(rest) = s.strip_prefix("> ").or_else(|| (s == ">").then_some("")) {
            out.push(Block::Quote(rest.to_string()));
        } else if let Some((marker, rest)) = list_item(s) {
            out.push(Block::Item(marker, rest.to_string()));
        } else {
            // A continuation joins the paragraph or list item above it.
            match out.last_mut() {
                Some(Block::Para(p)) | Some(Block::Item(_, p)) | Some(Block::Quote(p)) => {
                    p.push(' ');
                    p.push_str(s);
                }
                _ => out.push(Block::Para(s.to_string())),
            }
        }
    }
    while matches!(out.last(), Some(Block::Blank)) {
        out.pop();
    }
    out
}

fn heading_level(s: &str) -> Option<usize> {
    let n = s.chars().take_while(|&c| c == '#').count();
    ((1..=6).contains(&n) && s[n..].starts_with(' ')).then_some(n)
}

fn list_item(s: &str) -> Option<(String, &str)> {
    for b in ["- ", "* ", "+ "] {
        if let Some(rest) = s.strip_prefix(b) {
            return Some(("•".into(), rest));
        }
    }
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && s[digits..].starts_with(". ") {
        return Some((s[..digits + 1].to_string(), &s[digits + 2..]));
    }
    None
}

/// Inline markup as styled runs.
pub fn inline(text: &str, base: Style, code: Style) -> Vec<(String, Style)> {
    let mut out: Vec<(String, Style)> = vec![];
    let (mut bold, mut italic) = (false, false);
    let mut cur = String::new();
    let style = |bold: bool, italic: bool| {
        let mut s = base;
        if bold {
            s = s.add_modifier(Modifier::BOLD);
        }
        if italic {
            s = s.add_modifier(Modifier::ITALIC);
        }
        s
    };
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let flush = |cur: &mut String, out: &mut Vec<(String, Style)>, s: Style| {
        if !cur.is_empty() {
            out.push((std::mem::take(cur), s));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '`' {
            if let Some(end) = chars[i + 1..].iter().position(|&x| x == '`') {
                flush(&mut cur, &mut out, style(bold, italic));
                out.push((chars[i + 1..i + 1 + end].iter().collect(), code));
                i += end + 2;
                continue;
            }
        }
        if (c == '*' && next == Some('*')) || (c == '_' && next == Some('_')) {
            flush(&mut cur, &mut out, style(bold, italic));
            bold = !bold;
            i += 2;
            continue;
        }
        // A lone * or _ toggles italics when it hugs a word (not "a * b", not snake_case).
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let opens = next.is_some_and(|n| !n.is_whitespace()) && prev.is_none_or(|p| !p.is_alphanumeric());
        let closes = italic && prev.is_some_and(|p| !p.is_whitespace()) && next.is_none_or(|n| !n.is_alphanumeric());
        if (c == '*' || c == '_') && (opens || closes) && (italic || chars[i + 1..].contains(&c)) {
            flush(&mut cur, &mut out, style(bold, italic));
            italic = !italic;
            i += 1;
            continue;
        }
        cur.push(c);
        i += 1;
    }
    flush(&mut cur, &mut out, style(bold, italic));
    out
}

/// Greedy word wrap of styled runs into `width` columns; `first` and `rest`
/// prefix the first and following lines.
fn wrap(runs: &[(String, Style)], width: usize, first: Span<'static>, rest: Span<'static>) -> Vec<Line<'static>> {
    let mut lines = vec![];
    let mut line: Vec<Span<'static>> = vec![first.clone()];
    let mut used = first.content.width();
    let mut has_words = false;
    let mut space = false;
    for (text, style) in runs {
        for (k, word) in text.split(' ').enumerate() {
            space |= k > 0;
            if word.is_empty() {
                continue;
            }
            let w = word.width();
            let gap = usize::from(space && has_words);
            if has_words && used + gap + w > width {
                lines.push(Line::from(std::mem::take(&mut line)));
                line.push(rest.clone());
                used = rest.content.width();
            } else if gap == 1 {
                line.push(Span::styled(" ", *style));
                used += 1;
            }
            line.push(Span::styled(word.to_string(), *style));
            used += w;
            has_words = true;
            space = false;
        }
    }
    lines.push(Line::from(line));
    lines
}

/// `md` as lines at most `width` columns wide (code blocks are not wrapped).
pub fn render(md: &str, width: u16, st: &MdStyle) -> Vec<Line<'static>> {
    let width = (width as usize).max(8);
    let mut out = vec![];
    for b in blocks(md) {
        match b {
            Block::Blank => out.push(Line::default()),
            Block::Heading(level, text) => {
                let runs = inline(&text, st.heading, st.code);
                let runs: Vec<_> = if level == 1 {
                    runs.into_iter().map(|(t, s)| (t, s.add_modifier(Modifier::UNDERLINED))).collect()
                } else {
                    runs
                };
                out.extend(wrap(&runs, width, Span::raw(""), Span::raw("")));
            }
            Block::Para(text) => {
                out.extend(wrap(&inline(&text, st.text, st.code), width, Span::raw(""), Span::raw("")))
            }
            Block::Item(marker, text) => {
                let pad = " ".repeat(marker.width() + 3);
                let first = Span::styled(format!("  {marker} "), st.text);
                out.extend(wrap(&inline(&text, st.text, st.code), width, first, Span::raw(pad)));
            }
            Block::Quote(text) => {
                let bar = Span::styled("│ ", st.quote);
                out.extend(wrap(&inline(&text, st.quote, st.code), width, bar.clone(), bar));
            }
            Block::Code(lines) => {
                out.extend(lines.into_iter().map(|l| Line::from(Span::styled(format!("  {l}"), st.code))))
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Color;

    fn st() -> MdStyle {
        MdStyle {
            text: Style::default(),
            heading: Style::default().add_modifier(Modifier::BOLD),
            code: Style::default().fg(Color::Yellow),
            quote: Style::default().fg(Color::Gray),
        }
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect()
    }

    #[test]
    fn inline_bold_italics_and_code() {
        let runs = inline("a **bold** and *it* with `q·k` but snake_case and 2 * 3", Style::default(), st().code);
        let bold: Vec<_> = runs.iter().filter(|r| r.1.add_modifier.contains(Modifier::BOLD)).map(|r| &r.0).collect();
        let it: Vec<_> = runs.iter().filter(|r| r.1.add_modifier.contains(Modifier::ITALIC)).map(|r| &r.0).collect();
        assert_eq!(bold, ["bold"]);
        assert_eq!(it, ["it"]);
        assert!(runs.iter().any(|r| r.0 == "q·k" && r.1.fg == Some(Color::Yellow)));
        let all: String = runs.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(all, "a bold and it with q·k but snake_case and 2 * 3");
    }

    #[test]
    fn blocks_wrap_with_hanging_indents() {
        let md = "# Title\n\nOne two three four five six seven.\n\n- first item that wraps around\n2. second\n\n```\nlet x = 1;\n```";
        let lines = text(&render(md, 16, &st()));
        assert_eq!(
            lines,
            [
                "Title",
                "",
                "One two three",
                "four five six",
                "seven.",
                "",
                "  • first item",
                "    that wraps",
                "    around",
                "  2. second",
                "",
                "  let x = 1;"
            ]
        );
        assert!(lines.iter().all(|l| l.width() <= 16));
    }
}
