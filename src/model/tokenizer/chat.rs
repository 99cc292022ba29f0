//! Chat templates, rendered as transformers renders them.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, ErrorKind};

use crate::error::{Error, Result};

#[derive(serde::Serialize)]
pub(super) struct ChatMessage<'a> {
    pub(super) role: &'a str,
    pub(super) content: &'a str,
}

/// Render like transformers: jinja with `trim_blocks` and `lstrip_blocks`, Python string
/// methods (`.strip()`, `.startswith()`...), `raise_exception`, `tojson` as Python's
/// `json.dumps(ensure_ascii=False)`, and booleans and none printed the Python way.
pub(super) fn render_chat(
    template: &str,
    messages: &[ChatMessage<'_>],
    (bos, eos): (Option<&str>, Option<&str>),
    origin: &Path,
) -> Result<String> {
    let fail =
        |what: &str, e: minijinja::Error| Error::Prompt(format!("{}: chat template {what}: {e}", origin.display()));
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_filter("tojson", tojson);
    env.set_formatter(python_formatter);
    let compiled = env.template_from_str(template).map_err(|e| fail("does not compile", e))?;
    // transformers passes only the special tokens that are set; unset ones stay undefined.
    let mut ctx = BTreeMap::new();
    ctx.insert("messages", minijinja::Value::from_serialize(messages));
    ctx.insert("add_generation_prompt", minijinja::Value::from(true));
    if let Some(bos) = bos {
        ctx.insert("bos_token", minijinja::Value::from(bos));
    }
    if let Some(eos) = eos {
        ctx.insert("eos_token", minijinja::Value::from(eos));
    }
    compiled.render(ctx).map_err(|e| fail("failed", e))
}

/// Print `True`, `False` and `None` as Python does; everything else as minijinja does.
fn python_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> std::result::Result<(), minijinja::Error> {
    let word = match value.kind() {
        minijinja::value::ValueKind::Bool if value.is_true() => "True",
        minijinja::value::ValueKind::Bool => "False",
        minijinja::value::ValueKind::None => "None",
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(word).map_err(minijinja::Error::from)
}

/// transformers' `raise_exception(msg)`: the template refuses the conversation.
fn raise_exception(msg: String) -> std::result::Result<minijinja::Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "` and `": "` between
/// items without indent; minijinja's own `tojson` escapes `<>&'` for HTML, which templates
/// written for transformers do not expect.
fn tojson(value: minijinja::Value, indent: Option<usize>) -> std::result::Result<String, minijinja::Error> {
    let mut out = Vec::new();
    let written = match indent {
        Some(n) => {
            let pad = vec![b' '; n];
            let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
            serde::Serialize::serialize(&value, &mut serde_json::Serializer::with_formatter(&mut out, fmt))
        }
        None => serde::Serialize::serialize(&value, &mut serde_json::Serializer::with_formatter(&mut out, PyFormatter)),
    };
    written.map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    String::from_utf8(out).map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

/// serde_json formatter with Python's default separators.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tokenizer::gguf::tests::tiny;

    #[test]
    fn chat_template_renders_like_transformers() {
        let tok = tiny("default");
        assert_eq!(tok.apply_chat("  Hi ").unwrap(), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn chat_template_python_methods_and_blocks() {
        let template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}\n\
            {% for m in messages %}\n  [{{ m['content'].strip().upper() }}|{{ m.content.startswith('  h') }}]\n{% endfor %}\
            {{ bos_token }}{{ eos_token }}{{ messages | tojson }}";
        let msgs = [ChatMessage { role: "user", content: "  hi <b> é " }];
        let out = render_chat(template, &msgs, (Some("<s>"), None), Path::new("t.json")).unwrap();
        assert_eq!(out, "  [HI <B> É|True]\n<s>[{\"role\": \"user\", \"content\": \"  hi <b> é \"}]");
        let msgs = [ChatMessage { role: "system", content: "x" }];
        let err = render_chat(template, &msgs, (None, None), Path::new("t.json")).unwrap_err().to_string();
        assert!(err.contains("user first") && err.contains("t.json"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
