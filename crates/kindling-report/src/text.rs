//! Text without font files: a drawing backend that renders every string with the public-domain
//! 8x8 bitmap glyphs of `font8x8`, scaled to the font size.
//!
//! plotters rasterises text through a TrueType stack (font-kit, system fonts) unless told
//! otherwise, and CI machines and containers often have no fonts at all. [`BitmapText`] wraps
//! any backend and answers `draw_text` and `estimate_text_size` itself, so charts look the same
//! everywhere and need nothing installed.

use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

/// Width and height of a glyph cell at scale 1, in pixels.
pub const CELL: i32 = 8;

/// The 8 rows of `c`'s glyph; bit 0 of a row is its leftmost pixel. ASCII and Latin-1 have
/// glyphs; anything else is drawn as `?`.
pub fn glyph(c: char) -> [u8; 8] {
    let code = c as u32;
    match code {
        0..128 => font8x8::legacy::BASIC_LEGACY[code as usize],
        0xA0..=0xFF => font8x8::legacy::LATIN_LEGACY[(code - 0xA0) as usize],
        _ => font8x8::legacy::BASIC_LEGACY[b'?' as usize],
    }
}

/// The pixel size of a glyph drawn at font `size`: `size`, rounded, at least [`CELL`]. Glyphs
/// are scaled by nearest neighbour, so multiples of 8 are the crispest.
pub fn glyph_px(size: f64) -> i32 {
    (size.round() as i32).max(CELL)
}

/// Width and height of `text` drawn at `size`, unrotated.
pub fn text_size(text: &str, size: f64) -> (u32, u32) {
    let px = glyph_px(size);
    let n = text.chars().count() as i32;
    ((n * px) as u32, px as u32)
}

/// Calls `put(dx, dy)` for every lit pixel of `text` with `px`-pixel glyphs, relative to its
/// top-left.
pub fn for_each_pixel(text: &str, px: i32, mut put: impl FnMut(i32, i32)) {
    for (i, c) in text.chars().enumerate() {
        let bits = glyph(c);
        let x0 = i as i32 * px;
        for y in 0..px {
            let row = bits[(y * CELL / px) as usize];
            for x in 0..px {
                if row & (1 << (x * CELL / px)) != 0 {
                    put(x0 + x, y);
                }
            }
        }
    }
}

/// A backend that draws text with bitmap glyphs and forwards everything else to `B`.
#[derive(Debug)]
pub struct BitmapText<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for BitmapText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok(text_size(text, style.size()))
    }

    /// Places the unrotated text box by its anchor, then applies the style's rotation about
    /// `pos`, as plotters' own text drawing does.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (w, h) = text_size(text, style.size());
        let (w, h) = (w as i32, h as i32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -w / 2,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        let (width, height) = self.get_size();
        let mut result = Ok(());
        for_each_pixel(text, glyph_px(style.size()), |x, y| {
            let (x, y) = transform.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if result.is_ok() && x >= 0 && y >= 0 && x < width as i32 && y < height as i32 {
                result = self.0.draw_pixel((x, y), color);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    #[test]
    fn glyphs_are_read_left_bit_first() {
        // 'L': a stem on the left, a foot along the bottom row that reaches the right.
        let l = glyph('L');
        assert_eq!(l[0] & 1, 1, "the stem starts at the left edge");
        assert_eq!(l[0] & 0x80, 0);
        assert_eq!(l[6], 0x7F);
        assert_eq!(glyph(' '), [0; 8]);
        assert_eq!(glyph('\u{263A}'), glyph('?'));
        assert_ne!(glyph('é'), glyph('?'), "Latin-1 has glyphs");
    }

    #[test]
    fn sizes_are_pixels_and_at_least_a_cell() {
        assert_eq!(glyph_px(3.0), 8);
        assert_eq!(glyph_px(12.4), 12);
        assert_eq!(text_size("abc", 16.0), (48, 16));
        // A doubled glyph is the glyph with every pixel doubled.
        let (mut one, mut two) = (vec![], vec![]);
        for_each_pixel("k", 8, |x, y| one.push((x, y)));
        for_each_pixel("k", 16, |x, y| two.push((x, y)));
        assert_eq!(two.len(), 4 * one.len());
        assert!(one.iter().all(|&(x, y)| two.contains(&(2 * x + 1, 2 * y + 1))));
    }

    /// Draws "L" at the top-left and checks the exact pixels against the glyph.
    #[test]
    fn text_lands_where_the_anchor_says() {
        let (w, h) = (40u32, 20u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitmapText(BitMapBackend::with_buffer(&mut buf, (w, h))).into_drawing_area();
            let style = TextStyle::from(("sans-serif", 8.0).into_font()).color(&BLACK);
            root.draw_text("L", &style, (3, 2)).unwrap();
            let right = style.pos(plotters_backend::text_anchor::Pos::new(HPos::Right, VPos::Bottom));
            root.draw_text("L", &right, (40, 20)).unwrap();
            root.present().unwrap();
        }
        let dark = |x: u32, y: u32| buf[((y * w + x) * 3) as usize] < 128;
        let l = glyph('L');
        for row in 0..8 {
            for col in 0..8 {
                let lit = l[row as usize] & (1 << col) != 0;
                assert_eq!(dark(3 + col, 2 + row), lit, "top-left L at ({col}, {row})");
                assert_eq!(dark(32 + col, 12 + row), lit, "bottom-right L at ({col}, {row})");
            }
        }
        let lit: usize = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).filter(|&(x, y)| dark(x, y)).count();
        let per_glyph: u32 = l.iter().map(|r| r.count_ones()).sum();
        assert_eq!(lit, 2 * per_glyph as usize, "nothing else is drawn");
    }
}
