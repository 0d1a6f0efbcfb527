//! Writing a figure: the same drawing code renders a PNG and an SVG in memory; bitmaps (the
//! pictures of Fig. 1) are placed into both; then both files are written atomically.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::text::{Bitmap, register_font};
use super::{Drawn, FigureError, err, with_suffix};

/// A bitmap placed on top of the drawing at pixel `(x, y)`.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// A figure: its size, its vector drawing, and bitmaps to place on top.
pub(super) trait Scene {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn;
    fn bitmaps(&self) -> &[Placed] {
        &[]
    }
}

pub(super) fn png_bytes(
    width: usize,
    height: usize,
    rgb: &[u8],
    path: &Path,
) -> Result<Vec<u8>, FigureError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            rgb,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| FigureError::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(out)
}

pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Renders `scene` into PNG bytes and SVG text (same drawing code), in memory.
fn render<S: Scene>(
    scene: &S,
    png_path: &Path,
    svg_path: &Path,
) -> Result<(Vec<u8>, String), FigureError> {
    register_font();
    let (w, h) = scene.size();
    let draw_error = |path: &Path, reason: String| FigureError::Draw {
        path: path.to_path_buf(),
        reason,
    };
    // Plotters can panic on input we did not foresee; a figure must never take the run down.
    let guarded = |path: &Path, f: &mut dyn FnMut() -> Drawn| -> Result<(), FigureError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => r.map_err(|e| draw_error(path, e)),
            Err(_) => Err(draw_error(path, "the plotting library panicked".into())),
        }
    };

    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    guarded(png_path, &mut || {
        let root = Bitmap::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        scene.draw(&root)?;
        root.present().map_err(err)
    })?;
    for p in scene.bitmaps() {
        for row in 0..p.height {
            let y = p.y + row;
            if y >= h as usize {
                break;
            }
            let cols = p.width.min((w as usize).saturating_sub(p.x));
            let dst = (y * w as usize + p.x) * 3;
            let src = row * p.width * 3;
            pixels[dst..dst + cols * 3].copy_from_slice(&p.rgb[src..src + cols * 3]);
        }
    }
    let png = png_bytes(w as usize, h as usize, &pixels, png_path)?;

    let mut svg = String::new();
    guarded(svg_path, &mut || {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        scene.draw(&root)?;
        root.present().map_err(err)
    })?;
    if !scene.bitmaps().is_empty() {
        let mut images = String::new();
        for p in scene.bitmaps() {
            let bytes = png_bytes(p.width, p.height, &p.rgb, svg_path)?;
            let _ = writeln!(
                images,
                r#"<image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none" xlink:href="data:image/png;base64,{}"/>"#,
                p.x,
                p.y,
                p.width,
                p.height,
                base64(&bytes)
            );
        }
        if !svg.contains("xmlns:xlink") {
            svg = svg.replacen(
                "<svg ",
                "<svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" ",
                1,
            );
        }
        match svg.rfind("</svg>") {
            Some(end) => svg.insert_str(end, &images),
            None => {
                return Err(draw_error(
                    svg_path,
                    "the SVG backend wrote no closing tag".into(),
                ));
            }
        }
    }
    Ok((png, svg))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FigureError> {
    let io = |source| FigureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "figure".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Renders both files in memory first, then writes them: an input or drawing error leaves
/// nothing behind.
pub(super) fn write_figure<S: Scene>(scene: &S, stem: &Path) -> Result<Vec<PathBuf>, FigureError> {
    let png_path = with_suffix(stem, ".png");
    let svg_path = with_suffix(stem, ".svg");
    let (png, svg) = render(scene, &png_path, &svg_path)?;
    write_atomically(&png_path, &png)?;
    write_atomically(&svg_path, svg.as_bytes())?;
    Ok(vec![png_path, svg_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
