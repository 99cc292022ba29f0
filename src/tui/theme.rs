//! Colours: what the terminal can show (truecolor, 256 colours, or none
//! under NO_COLOR), perceptual colour maps quantised to a small table so a
//! tiny change in a value gives the same `Color` (and ratatui's diff skips
//! the cell), and the few styles the views share.

use ratatui::style::{Color, Modifier, Style};

/// Levels a colour map is quantised to.
const LEVELS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    TrueColor,
    Ansi256,
    /// NO_COLOR: heat is drawn with glyph density, selection with reverse video.
    None,
}

/// The sequential colour map for attention (all perceptually uniform and colour-blind safe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMap {
    Viridis,
    Magma,
    Cividis,
}

impl ColorMap {
    pub const ALL: [ColorMap; 3] = [ColorMap::Viridis, ColorMap::Magma, ColorMap::Cividis];

    pub fn name(self) -> &'static str {
        match self {
            ColorMap::Viridis => "viridis",
            ColorMap::Magma => "magma",
            ColorMap::Cividis => "cividis",
        }
    }

    fn gradient(self) -> colorous::Gradient {
        match self {
            ColorMap::Viridis => colorous::VIRIDIS,
            ColorMap::Magma => colorous::MAGMA,
            ColorMap::Cividis => colorous::CIVIDIS,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Theme {
    pub mode: ColorMode,
    pub map: ColorMap,
    heat: Vec<Color>,
    /// Purple–orange, colour-blind safe; index 0 = most negative.
    diverging: Vec<Color>,
}

/// Glyphs of rising density, for heat without colour.
pub const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

impl Theme {
    pub fn new(mode: ColorMode, map: ColorMap) -> Self {
        let table = |g: colorous::Gradient| -> Vec<Color> {
            (0..LEVELS)
                .map(|i| {
                    let c = g.eval_rational(i, LEVELS);
                    to_color(mode, c.r, c.g, c.b)
                })
                .collect()
        };
        Self { mode, map, heat: table(map.gradient()), diverging: table(colorous::PURPLE_ORANGE) }
    }

    /// The terminal's abilities from the environment: NO_COLOR (set and not
    /// empty) wins, then COLORTERM=truecolor|24bit, else 256 colours.
    pub fn detect() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        Self::new(mode_from(&var("NO_COLOR"), &var("COLORTERM"), &var("TERM")), ColorMap::Viridis)
    }

    pub fn with_map(&self, map: ColorMap) -> Self {
        Self::new(self.mode, map)
    }

    pub fn has_color(&self) -> bool {
        self.mode != ColorMode::None
    }

    /// Colour of a value in [0, 1] on the sequential map.
    pub fn heat(&self, v: f32) -> Color {
        self.heat[level(v)]
    }

    /// Colour of a value in [-1, 1] on the diverging map (0 in the middle).
    pub fn diverging(&self, v: f32) -> Color {
        self.diverging[level((v + 1.0) / 2.0)]
    }

    /// A density glyph for a value in [0, 1] (NO_COLOR heat).
    pub fn shade(v: f32) -> char {
        let i = (v.clamp(0.0, 1.0) * (SHADES.len() - 1) as f32).round() as usize;
        SHADES[i.min(SHADES.len() - 1)]
    }

    /// Text on a heat colour: dark on light cells, light on dark.
    pub fn text_on(&self, v: f32) -> Color {
        if v > 0.6 {
            Color::Black
        } else {
            Color::White
        }
    }

    /// The selected item: bold + reverse without colour, else a highlight.
    pub fn selected(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            _ => Style::new().fg(Color::Black).bg(self.accent_color()).add_modifier(Modifier::BOLD),
        }
    }

    /// Borders and titles of the focused panel.
    pub fn focused(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::new().add_modifier(Modifier::BOLD),
            _ => Style::new().fg(self.accent_color()).add_modifier(Modifier::BOLD),
        }
    }

    pub fn dim(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::new(),
            _ => Style::new().fg(Color::DarkGray),
        }
    }

    pub fn accent(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::new().add_modifier(Modifier::BOLD),
            _ => Style::new().fg(self.accent_color()),
        }
    }

    pub fn error(&self) -> Style {
        match self.mode {
            ColorMode::None => Style::new().add_modifier(Modifier::BOLD),
            _ => Style::new().fg(to_color(self.mode, 230, 97, 1)).add_modifier(Modifier::BOLD),
        }
    }

    /// Colour for series `i` of a chart (Okabe–Ito, colour-blind safe).
    pub fn series(&self, i: usize) -> Color {
        const OKABE_ITO: [(u8, u8, u8); 4] = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167)];
        let (r, g, b) = OKABE_ITO[i % OKABE_ITO.len()];
        match self.mode {
            ColorMode::None => Color::Reset,
            m => to_color(m, r, g, b),
        }
    }

    fn accent_color(&self) -> Color {
        to_color(self.mode, 240, 200, 80)
    }
}

fn level(v: f32) -> usize {
    if v.is_nan() {
        return 0;
    }
    ((v.clamp(0.0, 1.0) * (LEVELS - 1) as f32).round() as usize).min(LEVELS - 1)
}

/// The colour mode the environment asks for (see `Theme::detect`).
pub fn mode_from(no_color: &str, colorterm: &str, term: &str) -> ColorMode {
    if !no_color.is_empty() || term == "dumb" {
        ColorMode::None
    } else if matches!(colorterm, "truecolor" | "24bit") || term.ends_with("direct") || term.ends_with("truecolor") {
        ColorMode::TrueColor
    } else {
        ColorMode::Ansi256
    }
}

fn to_color(mode: ColorMode, r: u8, g: u8, b: u8) -> Color {
    match mode {
        ColorMode::TrueColor => Color::Rgb(r, g, b),
        ColorMode::Ansi256 => Color::Indexed(ansi256(r, g, b)),
        ColorMode::None => Color::Reset,
    }
}

/// Nearest xterm-256 colour among the 6×6×6 cube (16–231) and the grey ramp
/// (232–255); 0–15 follow the user's theme and are never used for data.
pub fn ansi256(r: u8, g: u8, b: u8) -> u8 {
    const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let nearest = |v: u8| (0..6).min_by_key(|&i| (CUBE[i] as i32 - v as i32).abs()).unwrap_or(0);
    let (ri, gi, bi) = (nearest(r), nearest(g), nearest(b));
    let cube = (CUBE[ri], CUBE[gi], CUBE[bi]);
    let dist = |(x, y, z): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2);
        d(x, r) + d(y, g) + d(z, b)
    };
    let avg = (r as u32 + g as u32 + b as u32) / 3;
    let gi_ = ((avg.saturating_sub(8)) / 10).min(23) as u8;
    let grey = 8 + 10 * gi_;
    if dist((grey, grey, grey)) < dist(cube) {
        232 + gi_
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_and_empty_no_color_does_not_count() {
        assert_eq!(mode_from("1", "truecolor", "xterm-256color"), ColorMode::None);
        assert_eq!(mode_from("", "truecolor", "xterm-256color"), ColorMode::TrueColor);
        assert_eq!(mode_from("", "", "xterm-256color"), ColorMode::Ansi256);
        assert_eq!(mode_from("", "", "dumb"), ColorMode::None);
    }

    #[test]
    fn ansi256_maps_cube_corners_and_greys() {
        assert_eq!(ansi256(0, 0, 0), 16);
        assert_eq!(ansi256(255, 255, 255), 231);
        assert_eq!(ansi256(255, 0, 0), 196);
        assert_eq!(ansi256(128, 128, 128), 244);
    }

    #[test]
    fn heat_is_quantised_and_monotone_in_lightness() {
        let t = Theme::new(ColorMode::TrueColor, ColorMap::Viridis);
        assert_eq!(t.heat(0.5), t.heat(0.5 + 1e-4));
        let light = |c: Color| match c {
            Color::Rgb(r, g, b) => 0.3 * r as f32 + 0.59 * g as f32 + 0.11 * b as f32,
            _ => panic!("not rgb"),
        };
        assert!(light(t.heat(0.0)) < light(t.heat(0.5)) && light(t.heat(0.5)) < light(t.heat(1.0)));
        assert_eq!(Theme::shade(0.0), ' ');
        assert_eq!(Theme::shade(1.0), '█');
    }
}
