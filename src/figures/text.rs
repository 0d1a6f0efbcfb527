//! Text in the bitmaps: the bundled font, and a bitmap backend that places glyphs correctly.
//!
//! Plotters 0.3.7 draws text with `ab_glyph` (its `ab_glyph` feature; there are no system fonts
//! here). Its glyph loop (`plotters/src/style/font/ab_glyph.rs`, `FontDataInternal::draw`) adds
//! each glyph's pixels at the pen position but drops the glyph's own offset,
//! `OutlinedGlyph::px_bounds().min.x`, which is where the outline starts (the left side bearing).
//! Every glyph is therefore drawn shifted left by its own bearing, and since the bearings differ
//! ("1" has a wide one, "0" a narrow one) the gaps between letters come out uneven: "1 00",
//! "0. 892", "SRPN et". Only the PNGs are affected; the SVGs hold `<text>` and the viewer lays
//! it out. [`Bitmap`] wraps plotters' bitmap backend and draws text itself, each glyph at its
//! pen position plus its bearing (ab_glyph positions the outline); everything else is plotters'.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};
use std::sync::{Once, OnceLock};

/// The one font family of every figure (registered with plotters by [`register_font`]).
pub const FONT: &str = "sans-serif";

const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled DejaVu Sans as plotters' "sans-serif" (there are no system fonts here).
/// Every figure calls it; call it yourself before drawing text with plotters elsewhere.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error would only mean the bundled font bytes are bad; text would then fail to draw
        // and the figure functions report that as `FigureError::Draw`.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

fn font() -> Option<&'static FontRef<'static>> {
    static FONT_REF: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT_REF
        .get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// The width of `text` at `px` pixels, as plotters measures it (sum of advances and kerning).
pub fn text_width(text: &str, px: u32) -> u32 {
    (FONT, px)
        .into_font()
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or_else(|_| (text.chars().count() as f64 * px as f64 * 0.6) as u32)
}

/// Pixels of ink: `(x, y, coverage in [0, 1])`.
pub type Ink = Vec<(i32, i32, f32)>;

/// The ink of `text` laid out at font size `size`: `(x, y, coverage)` relative to the top-left
/// corner of its layout box, and the box's `(width, height)` (plotters' box: advances plus
/// kerning wide, `size / 1.24` high). The baseline sits at the font's ascent share of the box.
pub fn rasterize(text: &str, size: f64) -> (Ink, (i32, i32)) {
    let Some(font) = font() else {
        return (Vec::new(), (0, 0));
    };
    let scaled = font.as_scaled(PxScale::from(size as f32));
    let height = (size / 1.24) as i32;
    let baseline = height as f32 * scaled.ascent() / (scaled.ascent() - scaled.descent());
    let mut ink = Vec::new();
    let mut caret = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        prev = Some(id);
        let glyph = id.with_scale_and_position(scaled.scale(), point(caret, baseline));
        if let Some(outline) = scaled.outline_glyph(glyph) {
            let min = outline.px_bounds().min;
            outline.draw(|x, y, v| ink.push((min.x as i32 + x as i32, min.y as i32 + y as i32, v)));
        }
        caret += scaled.h_advance(id);
    }
    (ink, (caret as i32, height))
}

/// Plotters' bitmap backend with text drawn by [`rasterize`] (see the module notes).
pub struct Bitmap<'a>(pub BitMapBackend<'a>);

impl<'a> Bitmap<'a> {
    /// Draws into `buf` (`w * h * 3` RGB bytes).
    pub fn with_buffer(buf: &'a mut [u8], size: (u32, u32)) -> Self {
        register_font();
        Self(BitMapBackend::with_buffer(buf, size))
    }
}

type Failed<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Bitmap<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), Failed<'a>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), Failed<'a>> {
        self.0.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Failed<'a>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Failed<'a>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Failed<'a>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Failed<'a>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Failed<'a>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Failed<'a>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Failed<'a>> {
        self.0.blit_bitmap(pos, size, src)
    }

    /// The same anchoring and rotation as plotters' default `draw_text`, with correct glyphs.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Failed<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (ink, (width, height)) = rasterize(text, style.size());
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        for (x, y, coverage) in ink {
            let (x, y) = transform.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let c = BackendColor {
                    alpha: color.alpha * coverage.clamp(0.0, 1.0) as f64,
                    rgb: color.rgb,
                };
                self.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), Failed<'a>> {
        let (_, (w, h)) = rasterize(text, style.size());
        Ok((w.max(0) as u32, h.max(0) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leftmost ink column of `text` drawn alone at size `px`.
    fn first_ink(text: &str, px: f64) -> i32 {
        let (ink, _) = rasterize(text, px);
        ink.iter().filter(|p| p.2 > 0.5).map(|p| p.0).min().unwrap()
    }

    #[test]
    fn glyphs_start_at_their_bearing() {
        let font = font().unwrap();
        let scaled = font.as_scaled(PxScale::from(40.0));
        for c in ['1', '0', '.', 'N', 'e'] {
            let bearing = scaled.h_side_bearing(scaled.glyph_id(c));
            let x = first_ink(&c.to_string(), 40.0);
            assert!(
                (x as f32 - bearing).abs() <= 1.0,
                "{c:?}: ink starts at {x}, bearing {bearing}"
            );
        }
    }

    #[test]
    fn each_letter_sits_one_advance_after_the_previous() {
        // In "10" the "0" is the lone "0" moved right by the advance of "1" (and kerning).
        let font = font().unwrap();
        let scaled = font.as_scaled(PxScale::from(40.0));
        let (one, zero) = (scaled.glyph_id('1'), scaled.glyph_id('0'));
        let shift = scaled.h_advance(one) + scaled.kern(one, zero);
        let (pair, _) = rasterize("10", 40.0);
        let (alone, _) = rasterize("0", 40.0);
        let right_part = pair
            .iter()
            .filter(|p| p.2 > 0.5 && p.0 as f32 >= shift)
            .map(|p| p.0)
            .min()
            .unwrap();
        let expected = alone
            .iter()
            .filter(|p| p.2 > 0.5)
            .map(|p| p.0)
            .min()
            .unwrap() as f32
            + shift;
        assert!(
            (right_part as f32 - expected).abs() <= 1.0,
            "{right_part} vs {expected}"
        );
    }

    #[test]
    fn the_layout_box_holds_the_ink_of_ordinary_text() {
        let (ink, (w, h)) = rasterize("SRPNet 0.892 (100)", 20.0);
        assert!(w > 0 && h > 0);
        let inked: Vec<_> = ink.iter().filter(|p| p.2 > 0.5).collect();
        assert!(
            inked.iter().all(|p| p.0 >= -1 && p.0 <= w + 1),
            "x within the box"
        );
        // Caps and parentheses may poke out by a pixel or two, never by a line.
        assert!(
            inked.iter().all(|p| p.1 >= -3 && p.1 <= h + 4),
            "y near the box"
        );
    }
}
