//! Pooling one head's attention rows into the pixels of a map view. Pure and
//! allocation-light: the map worker calls it off the UI thread for every
//! zoom, pan and new token, so a 2,048 × 2,048 map must pool in a few ms.
//!
//! A pixel takes the MAXIMUM of the unmasked cells it covers, so one strong
//! cell (a sink, an induction hit) is never averaged away when zoomed out;
//! it is NaN only when every cell under it is masked.

use super::data::Image;
use std::ops::Range;

/// True when key `j` is hidden from query `i`: in its future, or (with a
/// sliding window `W`) at or before `i − W`. Visible iff i − W < j ≤ i.
pub fn is_masked(window: Option<usize>, i: usize, j: usize) -> bool {
    j > i || window.is_some_and(|w| j + w <= i)
}

/// The items pixel `pixel` of `pixels` covers among `len` items (offsets
/// from the start of the range): [p·len/pixels, (p+1)·len/pixels), at least
/// one item, so a short range is stretched by repetition.
pub fn pixel_span(pixel: usize, len: usize, pixels: usize) -> Range<usize> {
    if len == 0 || pixels == 0 {
        return 0..0;
    }
    let a = (pixel * len / pixels).min(len - 1);
    a..((pixel + 1) * len / pixels).clamp(a + 1, len)
}

/// The first pixel of `pixels` that shows item `offset` of `len`, if any.
pub fn pixel_of(offset: usize, len: usize, pixels: usize) -> Option<usize> {
    if offset >= len {
        return None;
    }
    // The spans are sorted, so the first span ending past `offset` is the one.
    let x = (0..pixels).position(|p| pixel_span(p, len, pixels).end > offset)?;
    pixel_span(x, len, pixels).contains(&offset).then_some(x)
}

/// Pool `rows_data` (rows.len() × positions, row-major, row r = query
/// rows.start + r over keys 0..positions, as `Trace::attention` returns it)
/// into a `width` × `height` image over the rectangle rows × cols.
/// Cells outside the data (keys ≥ positions, rows beyond the slice) count as masked.
pub fn pool_map(
    rows_data: &[f32],
    positions: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    width: usize,
    height: usize,
    masked: impl Fn(usize, usize) -> bool,
) -> Image {
    // −∞ stands for "nothing unmasked yet" (a probability is never −∞), so
    // the inner loop is one comparison; it becomes NaN at the end.
    let mut values = vec![f32::NEG_INFINITY; width * height];
    let (nrows, ncols) = (rows.len(), cols.len());
    let col_spans: Vec<Range<usize>> = (0..width)
        .map(|x| {
            let s = pixel_span(x, ncols, width);
            (cols.start + s.start).min(positions)..(cols.start + s.end).min(positions)
        })
        .collect();
    for y in 0..height {
        let out = &mut values[y * width..(y + 1) * width];
        for r in pixel_span(y, nrows, height) {
            let i = rows.start + r;
            let Some(row) = rows_data.get(r * positions..(r + 1) * positions) else { continue };
            for (best, span) in out.iter_mut().zip(&col_spans) {
                for (j, &v) in row[span.clone()].iter().enumerate() {
                    if v > *best && !masked(i, span.start + j) {
                        *best = v;
                    }
                }
            }
        }
    }
    for v in &mut values {
        if *v == f32::NEG_INFINITY {
            *v = f32::NAN;
        }
    }
    Image::new(width, height, values)
}

/// The exact value of cell (query, key) in `rows_data` (laid out as for
/// `pool_map`); NaN where masked or outside the data. For the cursor readout.
pub fn value_at(
    rows_data: &[f32],
    positions: usize,
    rows: Range<usize>,
    query: usize,
    key: usize,
    masked: impl Fn(usize, usize) -> bool,
) -> f32 {
    if !rows.contains(&query) || key >= positions || masked(query, key) {
        return f32::NAN;
    }
    rows_data.get((query - rows.start) * positions + key).copied().unwrap_or(f32::NAN)
}

/// The element-wise mean over heads (for "mean over the layer's heads");
/// as long as the shortest input, empty when there are no heads.
pub fn mean_rows(per_head: &[Vec<f32>]) -> Vec<f32> {
    let Some(len) = per_head.iter().map(Vec::len).min() else { return Vec::new() };
    let mut sum = vec![0f32; len];
    for head in per_head {
        for (s, v) in sum.iter_mut().zip(head) {
            *s += v;
        }
    }
    let n = per_head.len() as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f32 = f32::NAN;

    /// A 4-position causal map: a sink on key 0 and a previous-token diagonal, rows summing to 1.
    fn causal4() -> Vec<f32> {
        #[rustfmt::skip]
        let m = vec![
            1.0, 0.0, 0.0, 0.0,
            0.6, 0.4, 0.0, 0.0,
            0.3, 0.6, 0.1, 0.0,
            0.2, 0.1, 0.6, 0.1,
        ];
        m
    }

    fn causal(i: usize, j: usize) -> bool {
        is_masked(None, i, j)
    }

    /// Exact equality that treats NaN as equal to NaN.
    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn mask_is_causal_and_windowed() {
        assert!(!is_masked(None, 3, 0));
        assert!(!is_masked(None, 3, 3));
        assert!(is_masked(None, 3, 4));
        // Window 2: query 5 sees keys 4 and 5 only.
        assert!(is_masked(Some(2), 5, 3));
        assert!(!is_masked(Some(2), 5, 4));
        assert!(!is_masked(Some(2), 5, 5));
        assert!(is_masked(Some(2), 5, 6));
    }

    #[test]
    fn spans_partition_when_shrinking_and_repeat_when_stretching() {
        assert_eq!((0..3).map(|p| pixel_span(p, 10, 3)).collect::<Vec<_>>(), vec![0..3, 3..6, 6..10]);
        assert_eq!((0..4).map(|p| pixel_span(p, 2, 4)).collect::<Vec<_>>(), vec![0..1, 0..1, 1..2, 1..2]);
        assert_eq!(pixel_span(0, 0, 4), 0..0);
        assert_eq!(pixel_of(1, 2, 4), Some(2));
        assert_eq!(pixel_of(7, 10, 3), Some(2));
        assert_eq!(pixel_of(10, 10, 3), None);
    }

    #[test]
    fn identity_size_copies_and_masks_the_future() {
        let img = pool_map(&causal4(), 4, 0..4, 0..4, 4, 4, causal);
        #[rustfmt::skip]
        let want = [
            1.0, NAN, NAN, NAN,
            0.6, 0.4, NAN, NAN,
            0.3, 0.6, 0.1, NAN,
            0.2, 0.1, 0.6, 0.1,
        ];
        assert!(same(&img.values, &want), "{:?}", img.values);
    }

    #[test]
    fn shrinking_keeps_the_maximum_and_nan_only_for_fully_masked_blocks() {
        let img = pool_map(&causal4(), 4, 0..4, 0..4, 2, 2, causal);
        // Top-right block (rows 0–1, keys 2–3) is entirely in the future.
        assert!(same(&img.values, &[1.0, NAN, 0.6, 0.6]), "{:?}", img.values);
        // A masked cell holding a stale value never wins.
        let mut data = causal4();
        data[3] = 9.0; // row 0, key 3: masked
        let img = pool_map(&data, 4, 0..4, 0..4, 1, 1, causal);
        assert_eq!(img.values, vec![1.0]);
    }

    #[test]
    fn stretching_repeats_cells() {
        // Zoomed into rows 2–3 × keys 1–2: 2 × 2 cells onto 4 × 4 pixels.
        let data = causal4()[8..].to_vec();
        let img = pool_map(&data, 4, 2..4, 1..3, 4, 4, causal);
        #[rustfmt::skip]
        let want = [
            0.6, 0.6, 0.1, 0.1,
            0.6, 0.6, 0.1, 0.1,
            0.1, 0.1, 0.6, 0.6,
            0.1, 0.1, 0.6, 0.6,
        ];
        assert!(same(&img.values, &want), "{:?}", img.values);
    }

    #[test]
    fn sliding_window_masks_a_band_below_the_diagonal() {
        // Window 2 over 4 positions: each query sees itself and its predecessor.
        #[rustfmt::skip]
        let data = vec![
            1.0, 0.0, 0.0, 0.0,
            0.5, 0.5, 0.0, 0.0,
            0.0, 0.7, 0.3, 0.0,
            0.0, 0.0, 0.8, 0.2,
        ];
        let img = pool_map(&data, 4, 0..4, 0..4, 4, 4, |i, j| is_masked(Some(2), i, j));
        #[rustfmt::skip]
        let want = [
            1.0, NAN, NAN, NAN,
            0.5, 0.5, NAN, NAN,
            NAN, 0.7, 0.3, NAN,
            NAN, NAN, 0.8, 0.2,
        ];
        assert!(same(&img.values, &want), "{:?}", img.values);
        // Pooled 2 × 2: the bottom-left block holds only masked cells but one (row 2, key 1).
        let img = pool_map(&data, 4, 0..4, 0..4, 2, 2, |i, j| is_masked(Some(2), i, j));
        assert!(same(&img.values, &[1.0, NAN, 0.7, 0.8]), "{:?}", img.values);
        let only_far = pool_map(&data[12..], 4, 3..4, 0..2, 1, 1, |i, j| is_masked(Some(2), i, j));
        assert!(only_far.values[0].is_nan());
    }

    #[test]
    fn keys_past_the_trace_count_as_masked() {
        let img = pool_map(&causal4(), 4, 0..4, 2..6, 2, 1, |_, _| false);
        assert!(same(&img.values, &[0.6, NAN]), "{:?}", img.values);
    }

    #[test]
    fn exact_value_and_head_mean() {
        let data = causal4()[4..].to_vec(); // rows 1..4
        assert_eq!(value_at(&data, 4, 1..4, 2, 1, causal), 0.6);
        assert!(value_at(&data, 4, 1..4, 2, 3, causal).is_nan());
        assert!(value_at(&data, 4, 1..4, 0, 0, causal).is_nan()); // row not in the slice
        assert_eq!(mean_rows(&[vec![0.25, 0.75], vec![0.75, 0.25], vec![0.5, 0.5]]), vec![0.5, 0.5]);
        assert!(mean_rows(&[]).is_empty());
    }

    #[test]
    fn a_long_map_pools_fast_and_keeps_single_strong_cells() {
        let n = 2048;
        let mut data = vec![0f32; n * n];
        for i in 0..n {
            let row = &mut data[i * n..(i + 1) * n];
            // Sink 0.5, previous token 0.3, 0.2 spread over the other visible keys.
            if i == 0 {
                row[0] = 1.0;
                continue;
            }
            let others = (i - 1).max(1);
            for j in (1..=i).filter(|&j| j != i - 1) {
                row[j] = 0.2 / others as f32;
            }
            row[0] += 0.5;
            row[i - 1] += 0.3;
        }
        // One strong cell far from the diagonal (an induction-like hit).
        data[1500 * n + 700] = 0.97;
        let t = std::time::Instant::now();
        let img = pool_map(&data, n, 0..n, 0..n, 200, 120, causal);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        eprintln!("pool 2048² → 200×120: {ms:.2} ms");
        assert!(ms < 1000.0, "{ms} ms");
        let (x, y) = (pixel_of(700, n, 200).unwrap(), pixel_of(1500, n, 120).unwrap());
        assert_eq!(img.get(x, y), 0.97);
        assert_eq!(img.get(0, 119), 0.5);
        assert!(img.get(199, 0).is_nan());
    }
}
