//! The heatmap primitive every map view uses: an `Image` drawn with
//! half-block cells, two pixel rows per terminal row ('▀' with the top pixel
//! as foreground and the bottom one as background). Masked pixels (NaN) are
//! left as the terminal's background, with a faint '·' where a whole cell is
//! masked, so "not allowed to look" never reads as "looked a little".
//! Without colour the two rows are merged and drawn as density glyphs.

use super::data::Image;
use super::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

/// How a pixel value becomes a colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Values in [0, 1] on the sequential map.
    Unit,
    /// Signed values on the diverging map, ±`max` at the ends.
    Signed { max: f32 },
}

pub struct Heatmap<'a> {
    pub image: &'a Image,
    pub theme: &'a Theme,
    pub scale: Scale,
}

impl Heatmap<'_> {
    /// Terminal cells needed: one column per pixel column, one row per two pixel rows.
    pub fn cells(image: &Image) -> (u16, u16) {
        (image.width as u16, image.height.div_ceil(2) as u16)
    }

    fn color(&self, v: f32) -> Option<Color> {
        if v.is_nan() {
            return None;
        }
        Some(match self.scale {
            Scale::Unit => self.theme.heat(v),
            Scale::Signed { max } => self.theme.diverging(if max > 0.0 { v / max } else { 0.0 }),
        })
    }

    fn intensity(&self, v: f32) -> f32 {
        match self.scale {
            Scale::Unit => v,
            Scale::Signed { max } if max > 0.0 => v.abs() / max,
            Scale::Signed { .. } => 0.0,
        }
    }
}

impl Widget for Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let img = self.image;
        let cols = (img.width as u16).min(area.width);
        let rows = (img.height.div_ceil(2) as u16).min(area.height);
        for cy in 0..rows {
            for cx in 0..cols {
                let (x, y) = (cx as usize, 2 * cy as usize);
                let (top, bottom) = (img.get(x, y), img.get(x, y + 1));
                let Some(cell) = buf.cell_mut((area.x + cx, area.y + cy)) else { continue };
                cell.reset();
                if !self.theme.has_color() {
                    let v = self.intensity(top).max(self.intensity(bottom));
                    cell.set_char(if v.is_nan() { '·' } else { Theme::shade(v) });
                    continue;
                }
                match (self.color(top), self.color(bottom)) {
                    (None, None) => {
                        cell.set_char('·').set_fg(Color::DarkGray);
                    }
                    (Some(t), None) => {
                        cell.set_char('▀').set_fg(t);
                    }
                    (None, Some(b)) => {
                        cell.set_char('▄').set_fg(b);
                    }
                    (Some(t), Some(b)) => {
                        cell.set_char('▀').set_fg(t).set_bg(b);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::{ColorMap, ColorMode};

    #[test]
    fn two_pixel_rows_per_cell_and_masked_cells_stay_blank() {
        let nan = f32::NAN;
        let img = Image::new(3, 3, vec![1.0, nan, nan, 0.5, 0.5, nan, 0.0, 0.2, 1.0]);
        let theme = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 2));
        Heatmap { image: &img, theme: &theme, scale: Scale::Unit }.render(buf.area, &mut buf);
        let c = |x: u16, y: u16| buf.cell((x, y)).unwrap().clone();
        assert_eq!(c(0, 0).symbol(), "▀");
        assert_eq!((c(0, 0).fg, c(0, 0).bg), (theme.heat(1.0), theme.heat(0.5)));
        assert_eq!(c(1, 0).symbol(), "▄"); // masked on top, a value below
        assert_eq!(c(2, 0).symbol(), "·"); // both masked
        assert_eq!(c(2, 1).symbol(), "▀"); // last pixel row alone: bottom half outside the image
        assert_eq!(c(2, 1).fg, theme.heat(1.0));
    }

    #[test]
    fn no_color_uses_density_glyphs() {
        let img = Image::new(2, 2, vec![0.0, 1.0, 0.0, 0.5]);
        let theme = Theme::new(ColorMode::None, ColorMap::Viridis);
        let mut buf = Buffer::empty(Rect::new(0, 0, 2, 1));
        Heatmap { image: &img, theme: &theme, scale: Scale::Unit }.render(buf.area, &mut buf);
        assert_eq!(buf.cell((0, 0)).unwrap().symbol(), " ");
        assert_eq!(buf.cell((1, 0)).unwrap().symbol(), "█");
    }
}
