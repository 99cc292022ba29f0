//! What workers compute for the views, from a `Source`: pooled map
//! rectangles, one query's row, head thumbnails with pattern scores, and
//! Mamba states. Plain functions, so they are tested without threads.

use super::data::{HeadGrid, Image, MapView, QueryRow, StateView};
use super::pool::{is_masked, pool_map};
use super::source::Source;
use crate::error::Result;
use crate::metrics::{score_head, HeadScores};
use std::ops::Range;

/// Pixels per side of a head thumbnail.
pub const THUMB: usize = 16;

/// What the app asks a worker to draw for the attention map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapWant {
    pub layer: usize,
    /// None: the mean over the layer's heads.
    pub head: Option<usize>,
    pub rows: Range<usize>,
    pub cols: Range<usize>,
    pub width: usize,
    pub height: usize,
    /// (query, key) whose exact value is wanted.
    pub cursor: Option<(usize, usize)>,
}

/// Rows `rows` of `head` (or the mean over heads), rows.len() × positions.
fn rows_of(src: &dyn Source, layer: usize, head: Option<usize>, rows: Range<usize>) -> Result<Vec<f32>> {
    match head {
        Some(h) => src.attention(layer, h, rows),
        None => {
            let n = src.heads().max(1);
            let mut sum = src.attention(layer, 0, rows.clone())?;
            for h in 1..n {
                for (s, v) in sum.iter_mut().zip(src.attention(layer, h, rows.clone())?) {
                    *s += v;
                }
            }
            sum.iter_mut().for_each(|s| *s /= n as f32);
            Ok(sum)
        }
    }
}

/// The pooled map rectangle and the exact value under the cursor.
pub fn map_view(src: &dyn Source, want: &MapWant) -> Result<(MapView, Option<f32>)> {
    let p = src.positions();
    let rows = want.rows.start.min(p)..want.rows.end.min(p);
    let cols = want.cols.start.min(p)..want.cols.end.min(p);
    let data = rows_of(src, want.layer, want.head, rows.clone())?;
    let window = src.window(want.layer);
    let image = pool_map(&data, p, rows.clone(), cols.clone(), want.width, want.height, |i, j| is_masked(window, i, j));
    let cursor = match want.cursor {
        Some((q, k)) if q < p && k < p => {
            let v = if is_masked(window, q, k) {
                f32::NAN
            } else if rows.contains(&q) {
                data[(q - rows.start) * p + k]
            } else {
                rows_of(src, want.layer, want.head, q..q + 1)?[k]
            };
            Some(v)
        }
        _ => None,
    };
    Ok((MapView { layer: want.layer, head: want.head, rows, cols, image, positions: p }, cursor))
}

/// One query's attention over every key.
pub fn query_row(src: &dyn Source, layer: usize, head: Option<usize>, query: usize) -> Result<QueryRow> {
    let query = query.min(src.positions().saturating_sub(1));
    Ok(QueryRow { layer, head, query, weights: rows_of(src, layer, head, query..query + 1)? })
}

/// Thumbnails (and, when `score`, pattern scores) of every head of `layer`.
/// Without scoring only a sample of query rows is computed: a thumbnail
/// pixel row then takes the maximum over up to four evenly spread rows.
pub fn grid_layer(src: &dyn Source, layer: usize, score: bool) -> Result<(Vec<Image>, Vec<Option<HeadScores>>)> {
    let p = src.positions();
    let window = src.window(layer);
    let all: Vec<usize> = (0..p).collect();
    let sample: Vec<usize> =
        if score || p <= 4 * THUMB { all } else { (0..4 * THUMB).map(|k| (2 * k + 1) * p / (8 * THUMB)).collect() };
    let tokens = &src.tokens()[..p.min(src.tokens().len())];
    let (mut thumbs, mut scores) = (vec![], vec![]);
    for head in 0..src.heads() {
        let mut data = Vec::with_capacity(sample.len() * p);
        if sample.len() == p {
            data = src.attention(layer, head, 0..p)?;
        } else {
            for &i in &sample {
                data.extend(src.attention(layer, head, i..i + 1)?);
            }
        }
        // Pool the sampled rows as if they were consecutive, then mask by their true positions.
        let mut img = Image::new(p, sample.len(), data.clone());
        for (r, &i) in sample.iter().enumerate() {
            for j in 0..p {
                if is_masked(window, i, j) {
                    img.values[r * p + j] = f32::NAN;
                }
            }
        }
        thumbs.push(img.pooled(THUMB.min(p.max(1)), THUMB.min(sample.len().max(1))).pooled(THUMB, THUMB));
        let s = if score && p >= 2 && tokens.len() == p { Some(score_head(&data, tokens)?) } else { None };
        scores.push(s);
    }
    Ok((thumbs, scores))
}

/// A grid with no layers filled yet.
pub fn empty_grid(src: &dyn Source) -> HeadGrid {
    HeadGrid {
        positions: src.positions(),
        layers: src.attention_layers(),
        heads: src.heads(),
        thumbs: vec![],
        scores: vec![],
    }
}

/// One state-space layer's state at held step `held`, pooled to `rows` pixel rows.
pub fn state_view(src: &dyn Source, layer: usize, held: usize, rows: usize) -> Result<Option<StateView>> {
    let Some((d_inner, d_state, d_conv)) = src.state_dims() else { return Ok(None) };
    let steps = src.state_steps();
    let Some(&step) = steps.get(held) else { return Ok(None) };
    let (ssm, conv) = src.state(layer, held)?;
    let rows = rows.clamp(1, d_inner.max(1));
    let per_row = d_inner.div_ceil(rows);
    let dt = src.dt(layer)?;
    // Δ per channel (Mamba) or per head (Mamba-2); conv rows are d_inner, or more with Mamba-2's B and C.
    let dt_width = (dt.len() / src.positions().max(1)).max(1);
    let dt_mean = dt.chunks(dt_width).map(|c| c.iter().sum::<f32>() / c.len() as f32).collect();
    let conv_rows = conv.len() / d_conv.max(1);
    Ok(Some(StateView {
        layer,
        step,
        ssm: pool_signed(&ssm, d_inner, d_state, per_row),
        conv: pool_signed(&conv, conv_rows, d_conv, per_row),
        channels_per_row: per_row,
        dt: dt_mean,
    }))
}

/// Pool groups of `per_row` channel rows, keeping the value of largest magnitude (with its sign).
fn pool_signed(v: &[f32], rows: usize, cols: usize, per_row: usize) -> Image {
    let out_rows = rows.div_ceil(per_row.max(1));
    let mut values = vec![0f32; out_rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let x = v[r * cols + c];
            let px = &mut values[(r / per_row) * cols + c];
            if x.abs() > px.abs() {
                *px = x;
            }
        }
    }
    Image::new(cols, out_rows, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_pooling_keeps_the_largest_magnitude() {
        let img = pool_signed(&[0.5, -2.0, 1.0, 0.1, -0.2, 0.3], 3, 2, 2);
        assert_eq!((img.width, img.height), (2, 2));
        assert_eq!(img.values, vec![1.0, -2.0, -0.2, 0.3]);
    }
}
