//! Published model configs for the KV-cache calculator (`attnviz memory
//! --model llama-2-7b`, lesson 3). Values are the checked ones in the
//! project's lesson facts: each from the model's config.json (copies naming
//! the official repo) or, for GPT-3, the paper's Table 2.1.

use super::kv::KvShape;
use crate::error::Result;

/// Which layers slide a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    None,
    All(usize),
    /// Even-indexed layers (0, 2, …) slide, odd ones attend fully (Gemma 2).
    EvenLayers(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// What `--model` takes.
    pub name: &'static str,
    pub title: &'static str,
    /// Where the numbers come from.
    pub source: &'static str,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub windows: Windows,
    /// The config's max_position_embeddings (GPT-3: n_ctx).
    pub max_positions: usize,
}

impl Preset {
    pub fn shape(&self) -> Result<KvShape> {
        let windows = (0..self.layers)
            .map(|i| match self.windows {
                Windows::None => None,
                Windows::All(w) => Some(w),
                Windows::EvenLayers(w) => Some(w).filter(|_| i % 2 == 0),
            })
            .collect();
        KvShape::new(self.layers, self.heads, self.kv_heads, self.head_dim, windows)
    }
}

const fn preset(
    name: &'static str,
    title: &'static str,
    source: &'static str,
    [layers, heads, kv_heads, head_dim, max_positions]: [usize; 5],
    windows: Windows,
) -> Preset {
    Preset { name, title, source, layers, heads, kv_heads, head_dim, windows, max_positions }
}

pub const PRESETS: &[Preset] = &[
    preset("llama-2-7b", "Llama-2-7B", "meta-llama/Llama-2-7b-hf", [32, 32, 32, 128, 4096], Windows::None),
    preset("llama-2-70b", "Llama-2-70B", "meta-llama/Llama-2-70b-hf", [80, 64, 8, 128, 4096], Windows::None),
    preset("llama-3-8b", "Llama-3-8B", "meta-llama/Meta-Llama-3-8B", [32, 32, 8, 128, 8192], Windows::None),
    preset("llama-3.1-8b", "Llama-3.1-8B", "meta-llama/Llama-3.1-8B", [32, 32, 8, 128, 131_072], Windows::None),
    preset("mistral-7b", "Mistral-7B-v0.1", "mistralai/Mistral-7B-v0.1", [32, 32, 8, 128, 32_768], Windows::All(4096)),
    preset("gpt-3-175b", "GPT-3 175B", "Brown et al. 2020, Table 2.1", [96, 96, 96, 128, 2048], Windows::None),
    preset("smollm2-135m", "SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M", [30, 9, 3, 64, 8192], Windows::None),
    preset("qwen2.5-0.5b", "Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", [24, 14, 2, 64, 32_768], Windows::None),
    preset("gemma-2-2b", "Gemma-2-2B", "google/gemma-2-2b", [26, 8, 4, 256, 8192], Windows::EvenLayers(4096)),
];

/// A preset by name, ignoring case.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The preset names, comma separated.
pub fn names() -> String {
    PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kv::{gib, Dtype};

    /// fp16 bytes per token and at the model's max positions, windows removed.
    fn fp16(name: &str) -> (u64, u64) {
        let s = find(name).unwrap().shape().unwrap().without_window();
        let max = find(name).unwrap().max_positions;
        (s.bytes_per_token(Dtype::F16).unwrap(), s.bytes(max, 1, Dtype::F16).unwrap())
    }

    #[test]
    fn published_configs_give_the_checked_sizes() {
        assert_eq!(fp16("llama-2-7b"), (524_288, 2_147_483_648));
        assert_eq!(fp16("llama-2-70b"), (327_680, 1_342_177_280));
        assert_eq!(fp16("llama-3-8b"), (131_072, 1_073_741_824));
        assert_eq!(fp16("llama-3.1-8b"), (131_072, 17_179_869_184));
        assert_eq!(fp16("mistral-7b"), (131_072, 4_294_967_296));
        assert_eq!(fp16("gpt-3-175b"), (4_718_592, 9_663_676_416));
        assert_eq!(fp16("smollm2-135m"), (23_040, 188_743_680));
        assert_eq!(fp16("qwen2.5-0.5b"), (12_288, 402_653_184));
        assert_eq!(fp16("gemma-2-2b"), (106_496, 872_415_232));
        assert_eq!(gib(fp16("gpt-3-175b").1), 9.0);
    }

    #[test]
    fn windows_cap_the_cache_at_w_minus_one() {
        // Mistral: 4095 positions per layer here; its reference rolling cache keeps 4096 (536,870,912 B).
        let m = find("Mistral-7B").unwrap().shape().unwrap();
        assert_eq!(m.bytes(32_768, 1, Dtype::F16).unwrap(), 131_072 * 4095);
        assert_eq!(m.bytes(1000, 1, Dtype::F16).unwrap(), 131_072 * 1000);
        // Gemma-2: 13 sliding layers hold 4095, 13 global ones 8192, 4096 B per layer-position.
        let g = find("gemma-2-2b").unwrap().shape().unwrap();
        assert_eq!(g.windows.iter().filter(|w| w.is_some()).count(), 13);
        assert_eq!((g.windows[0], g.windows[1]), (Some(4096), None));
        assert_eq!(g.bytes(8192, 1, Dtype::F16).unwrap(), 4096 * (13 * 8192 + 13 * 4095));
        assert_eq!(g.bytes(8192, 1, Dtype::F16).unwrap(), 654_258_176);
    }

    #[test]
    fn every_preset_is_valid_and_named_once() {
        for p in PRESETS {
            assert!(p.shape().is_ok(), "{}", p.name);
            assert_eq!(find(&p.name.to_uppercase()), Some(p));
        }
        assert!(find("llama-4").is_none());
        assert!(names().starts_with("llama-2-7b, llama-2-70b"));
    }
}
