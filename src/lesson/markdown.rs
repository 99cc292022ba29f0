//! The Markdown subset lessons use, parsed strictly so broken text is an
//! error, not a garbled screen: `# heading` lines, `- item` lines (indented
//! lines continue them), paragraphs, and inline `code`, **strong**, *emphasis*
//! (or _emphasis_) and [links](target). `{name}` is a placeholder, kept whole.
//! The lesson screen renders the same `Block`s.

/// One block of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Heading(Vec<Span>),
    Paragraph(Vec<Span>),
    /// A `- ` list item.
    Item(Vec<Span>),
}

impl Block {
    pub fn spans(&self) -> &[Span] {
        match self {
            Block::Heading(s) | Block::Paragraph(s) | Block::Item(s) => s,
        }
    }
}

/// A run of text with one style.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    pub text: String,
    pub code: bool,
    pub strong: bool,
    pub emph: bool,
    /// The link target, inside `[text](target)`.
    pub link: Option<String>,
}

/// Parse `md` into blocks; the error names the first problem and its line.
pub fn parse(md: &str) -> Result<Vec<Block>, String> {
    let mut blocks = vec![];
    // (kind, first line number, joined text)
    let mut open: Option<(u8, usize, String)> = None;
    let flush = |open: &mut Option<(u8, usize, String)>, blocks: &mut Vec<Block>| -> Result<(), String> {
        if let Some((kind, line, text)) = open.take() {
            let spans = inline(&text).map_err(|e| format!("line {line}: {e}"))?;
            blocks.push(match kind {
                b'#' => Block::Heading(spans),
                b'-' => Block::Item(spans),
                _ => Block::Paragraph(spans),
            });
        }
        Ok(())
    };
    for (n, raw) in md.lines().enumerate() {
        let line = raw.trim_end();
        let n = n + 1;
        if line.trim().is_empty() {
            flush(&mut open, &mut blocks)?;
        } else if let Some(rest) = line.strip_prefix('#') {
            flush(&mut open, &mut blocks)?;
            let text = rest.trim_start_matches('#');
            if !text.starts_with(' ') {
                return Err(format!("line {n}: a heading needs a space after its #"));
            }
            open = Some((b'#', n, text.trim().to_string()));
            flush(&mut open, &mut blocks)?;
        } else if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            flush(&mut open, &mut blocks)?;
            open = Some((b'-', n, rest.trim().to_string()));
        } else if line.starts_with("```") || line.starts_with("    ") && open.is_none() {
            return Err(format!("line {n}: code blocks are not supported; use `code spans`"));
        } else {
            match &mut open {
                Some((_, _, text)) => {
                    text.push(' ');
                    text.push_str(line.trim());
                }
                None => open = Some((b'p', n, line.trim().to_string())),
            }
        }
    }
    flush(&mut open, &mut blocks)?;
    Ok(blocks)
}

/// Inline styles of one block's text.
fn inline(text: &str) -> Result<Vec<Span>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut spans: Vec<Span> = vec![];
    let mut cur = Span::default();
    // Open delimiters ("**", "*", "_" or "["), with the span count when opened.
    let mut stack: Vec<(&'static str, usize)> = vec![];
    let mut parens = 0i64;
    let mut i = 0;
    let push = |spans: &mut Vec<Span>, cur: &mut Span| {
        if !cur.text.is_empty() {
            let next = Span { text: String::new(), ..cur.clone() };
            spans.push(std::mem::replace(cur, next));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let prev = i.checked_sub(1).map(|p| chars[p]);
        match c {
            '`' => {
                let ticks = chars[i..].iter().take_while(|&&c| c == '`').count();
                let body = i + ticks;
                let run_at = |j: usize| chars[j..].iter().take_while(|&&c| c == '`').count();
                let end = (body..chars.len()).find(|&j| chars[j] == '`' && chars[j - 1] != '`' && run_at(j) == ticks);
                let Some(end) = end else { return Err("unclosed code span (`)".into()) };
                push(&mut spans, &mut cur);
                let code: String = chars[body..end].iter().collect();
                if code.trim().is_empty() {
                    return Err("empty code span".into());
                }
                spans.push(Span { text: code.trim().to_string(), code: true, ..cur.clone() });
                i = end + ticks;
            }
            '{' => {
                let end = chars[i..].iter().position(|&c| c == '}').map(|p| i + p);
                let name: Option<String> = end.map(|e| chars[i + 1..e].iter().collect());
                match (end, name) {
                    (Some(e), Some(name)) if is_name(&name) => {
                        cur.text.extend(&chars[i..=e]);
                        i = e + 1;
                    }
                    _ => return Err("a { that starts no {placeholder}".into()),
                }
            }
            '}' => return Err("a } that closes no {placeholder}".into()),
            '*' | '_' => {
                let run = chars[i..].iter().take_while(|&&x| x == c).count();
                let space = |x: Option<char>| x.is_none_or(char::is_whitespace);
                let word = |x: Option<char>| x.is_some_and(char::is_alphanumeric);
                let after = chars.get(i + run).copied();
                if (space(prev) && space(after)) || (c == '_' && word(prev) && word(after)) {
                    cur.text.extend(&chars[i..i + run]);
                    i += run;
                    continue;
                }
                let delim = match (c, run) {
                    ('*', 1) => "*",
                    ('*', 2) => "**",
                    ('_', 1) => "_",
                    _ => return Err(format!("{} in a row: use * or ** for emphasis", c.to_string().repeat(run))),
                };
                push(&mut spans, &mut cur);
                match stack.last() {
                    Some((d, _)) if *d == delim => {
                        stack.pop();
                    }
                    _ if stack.iter().any(|(d, _)| *d == delim) => {
                        return Err(format!("{delim} closed across another style"));
                    }
                    _ => stack.push((delim, spans.len())),
                }
                match delim {
                    "**" => cur.strong = !cur.strong,
                    _ => cur.emph = !cur.emph,
                }
                i += run;
            }
            '[' => {
                push(&mut spans, &mut cur);
                stack.push(("[", spans.len()));
                i += 1;
            }
            ']' => {
                let Some(("[", from)) = stack.last().copied() else {
                    return Err("a ] that closes no [ (or closes it across a style)".into());
                };
                stack.pop();
                if chars.get(i + 1) != Some(&'(') {
                    return Err("[text] without its (target)".into());
                }
                let close = chars[i + 2..].iter().position(|&c| c == ')').map(|p| i + 2 + p);
                let Some(close) = close else { return Err("unclosed link target (".into()) };
                let target: String = chars[i + 2..close].iter().collect();
                if target.is_empty() || target.contains(char::is_whitespace) {
                    return Err(format!("link target {target:?}: empty or with spaces"));
                }
                push(&mut spans, &mut cur);
                if from == spans.len() {
                    return Err("empty link text []".into());
                }
                spans[from..].iter_mut().for_each(|s| s.link = Some(target.clone()));
                i = close + 1;
            }
            _ => {
                parens += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                if parens < 0 {
                    return Err("a ) that closes no (".into());
                }
                cur.text.push(c);
                i += 1;
            }
        }
    }
    push(&mut spans, &mut cur);
    if let Some((open, _)) = stack.last() {
        return Err(format!("unclosed {open}"));
    }
    if parens != 0 {
        return Err("unclosed (".into());
    }
    Ok(spans)
}

/// A placeholder name: lower-case letters, digits and `_`, starting with a letter.
pub fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every `{name}` in `text`, in order (repeats included).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                out.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let b = parse("# Title\n\nSome **bold** and *em* and `q·k`,\nwrapped.\n\n- an [item](https://x.org) {n}\n")
            .unwrap();
        assert_eq!(b.len(), 3);
        assert!(matches!(&b[0], Block::Heading(s) if s[0].text == "Title"));
        let p = b[1].spans();
        assert_eq!(
            p.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(),
            ["Some ", "bold", " and ", "em", " and ", "q·k", ",  wrapped."].map(|s| s.replace("  ", " "))
        );
        assert!(p[1].strong && p[3].emph && p[5].code);
        let item = b[2].spans();
        assert_eq!((item[1].text.as_str(), item[1].link.as_deref()), ("item", Some("https://x.org")));
        assert_eq!(item[2].text, " {n}");
        assert!(parse("snake_case and a * b and {kv_bytes}").is_ok());
    }

    #[test]
    fn broken_markdown_is_an_error() {
        for bad in [
            "`open",
            "**open",
            "*open",
            "[text",
            "[text]",
            "a ) b",
            "(open",
            "{Bad}",
            "{open",
            "x }",
            "*a **b* c**",
            "#x",
            "```\ncode\n```",
            "[t](a b)",
            "***x***",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn finds_placeholders() {
        assert_eq!(placeholders("{a} {b_1} {C} {a}"), ["a", "b_1", "a"]);
    }
}
