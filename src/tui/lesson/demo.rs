//! A built-in tour of every panel kind (`attnviz lesson panels`): a `Lesson`
//! value made in code, so the screen and its end-to-end test run before (and
//! independently of) the lessons' content.

use crate::lesson::{Lesson, Panel, Step};

fn step(title: &str, markdown: &str, panel: Panel) -> Step {
    Step { title: title.into(), markdown: markdown.into(), panel }
}

/// One step per panel kind, on the zoo models.
pub fn panels() -> Lesson {
    let m = || "tiny-gqa".to_string();
    Lesson {
        number: 0,
        slug: "panels".into(),
        title: "A tour of the lesson panels".into(),
        summary: "Every kind of live panel a lesson step can show, one per step.".into(),
        references: vec!["Vaswani et al. (2017), Attention Is All You Need, arXiv:1706.03762".into()],
        steps: vec![
            step(
                "Text only",
                "# The lesson screen\n\nText on the left, a **live panel** on the right. Step with `→` and `←`; \
                 `?` lists every key.\n\n- panels react to keys\n- numbers come from code",
                Panel::None,
            ),
            step(
                "One query",
                "Scores `q·k`, the *1/√d* scale, the causal mask and softmax for one query. \
                 Press `u` to drop the scale.",
                Panel::Sdpa { model: m(), layer: 0, head: 0, unscaled: false },
            ),
            step(
                "One head",
                "The whole map of one head; `,` and `.` pick the head.",
                Panel::Attention { model: m(), layer: 0, head: 0 },
            ),
            step(
                "Every head",
                "Each head as a thumbnail, tinted by a pattern score.",
                Panel::Heads { model: m(), pattern: Some("previous-token".into()), prompt: None, prefer_cached: false },
            ),
            step(
                "A sliding window",
                "Each query sees **W** keys; through L layers a token reaches L × (W − 1) back.",
                Panel::Mask { kind: "sliding".into(), size: 12, window: Some(4), layers: 2 },
            ),
            step("The cache grows", "Bytes held as the model generates.", Panel::Cache { model: m() }),
            step(
                "The calculator",
                "Context `+`/`-`, batch `b`, dtype `d`, preset `,`/`.`.",
                Panel::Calculator {
                    model: "llama-2-7b".into(),
                    context: 4096,
                    batch: 1,
                    dtype: "f16".into(),
                    claim_gb: None,
                },
            ),
            step(
                "Side by side",
                "The same prompt through three models.",
                Panel::Compare {
                    models: vec!["tiny-mha".into(), m(), "tiny-mqa".into()],
                    view: "memory".into(),
                    prompt: None,
                },
            ),
            step(
                "Tiles",
                "Space steps a tile of online softmax.",
                Panel::Tiling { model: m(), layer: 0, head: 0, block_rows: 4, block_cols: 4 },
            ),
            step(
                "The scan",
                "Space steps a token of Mamba's scan.",
                Panel::Scan { model: "tiny-mamba".into(), layer: 0 },
            ),
        ],
    }
}
