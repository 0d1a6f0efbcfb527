//! The book's sample figure: one synthetic-5i image per class, grouped by fold, next to its mask.

use std::path::Path;

use plotters::prelude::*;

use super::episode::{IGNORE, Split};
use super::error::DataError;
use super::folds::{NUM_FOLDS, test_classes};
use super::synthetic::{SYNTHETIC_CLASSES, SYNTHETIC_FOLDS, render_scene};
use crate::figures::{Bitmap, FONT};

/// Where the figure lives in the repository (the book links `figures/` from `book/src`).
pub const SAMPLES_FIGURE: &str = "figures/synthetic-5i-samples.png";

const LEFT: usize = 70;
const TOP: usize = 34;
const GAP: usize = 12;
const LABEL: usize = 20;

// ANCHOR: figure
/// Draws the figure: a row per fold, and for each of the fold's five classes the test-pool image
/// 0 beside its mask overlay (yellow: the class, cyan: distractors of other classes, white: the
/// 255 ignore band). Returns `(width, height, rgb)`.
pub fn samples_figure(size: usize) -> Result<(usize, usize, Vec<u8>), DataError> {
    let cell = 2 * size + GAP;
    let (w, h) = (LEFT + 5 * cell, TOP + NUM_FOLDS * (LABEL + size + GAP));
    let mut buf = vec![255u8; w * h * 3];
    for fold in 0..NUM_FOLDS {
        for (j, &class) in test_classes(20, SYNTHETIC_FOLDS, fold).iter().enumerate() {
            let scene = render_scene(class, Split::Test, 0, size);
            let rgb = scene.image.to_rgb8();
            let (x0, y0) = (LEFT + j * cell, TOP + fold * (LABEL + size + GAP) + LABEL);
            for y in 0..size {
                for x in 0..size {
                    let i = y * size + x;
                    let px = [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]];
                    let overlay = match scene.labels.data[i] {
                        0 => px.map(|v| (v as f32 * 0.35) as u8),
                        IGNORE => [255, 255, 255],
                        l if l == class => [255, 215, 0],
                        _ => [0, 200, 220],
                    };
                    for (dx, color) in [(0, px), (size, overlay)] {
                        let o = ((y0 + y) * w + x0 + dx + x) * 3;
                        buf[o..o + 3].copy_from_slice(&color);
                    }
                }
            }
        }
    }
    {
        // The figures' font and glyph placement (`Bitmap` registers the font).
        let root = Bitmap::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
        let draw = |root: &DrawingArea<Bitmap, _>, text: String, x: usize, y: usize, px: i32| {
            root.draw(&Text::new(
                text,
                (x as i32, y as i32),
                (FONT, px).into_font().color(&BLACK),
            ))
            .map_err(|e| DataError::InvalidSpec(format!("drawing the figure failed: {e}")))
        };
        draw(
            &root,
            "synthetic-5i: test image 0 of each class, and its mask (yellow class, cyan distractors, white ignore)".into(),
            8,
            8,
            15,
        )?;
        for fold in 0..NUM_FOLDS {
            let y = TOP + fold * (LABEL + size + GAP);
            draw(
                &root,
                format!("fold {fold}"),
                8,
                y + LABEL + size / 2 - 8,
                15,
            )?;
            for (j, &class) in test_classes(20, SYNTHETIC_FOLDS, fold).iter().enumerate() {
                let name = SYNTHETIC_CLASSES[class as usize - 1];
                draw(
                    &root,
                    format!("{class}: {name}"),
                    LEFT + j * cell,
                    y + 2,
                    14,
                )?;
            }
        }
        root.present()
            .map_err(|e| DataError::InvalidSpec(format!("drawing the figure failed: {e}")))?;
    }
    Ok((w, h, buf))
}
// ANCHOR_END: figure

/// Writes the sample figure as a PNG.
pub fn write_samples_figure(path: &Path, size: usize) -> Result<(), DataError> {
    let (w, h, buf) = samples_figure(size)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    ::image::RgbImage::from_raw(w as u32, h as u32, buf)
        .ok_or_else(|| DataError::InvalidSpec("figure buffer has the wrong length".into()))?
        .save(path)
        .map_err(|e| DataError::BadImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}
