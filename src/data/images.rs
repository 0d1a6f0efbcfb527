//! Reading images and masks from files, and episodes from the user's own images.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ::image::{DynamicImage, ImageReader};

use super::episode::{ClassId, Episode, IGNORE, Image, Mask, Shot, Split};
use super::error::DataError;

/// Decodes any PNG or JPEG into an RGB [`Image`]; a missing, truncated or non-image file is a
/// [`DataError`] naming the file.
pub fn load_image(path: &Path) -> Result<Image, DataError> {
    let img = decode_image(path)?;
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(Image::from_rgb8(h as usize, w as usize, rgb.as_raw()))
}

fn not_found(path: &Path) -> DataError {
    DataError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    )
}

/// A JPEG ends with the end-of-image marker FF D9 (entropy-coded data never holds FF D9, it
/// stuffs FF as FF 00); a file cut short does not, and decoders fill the missing part silently.
fn jpeg_is_complete(tail: &[u8]) -> bool {
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

fn truncated(path: &Path) -> DataError {
    DataError::BadImage {
        path: path.to_path_buf(),
        reason: "the JPEG has no end-of-image marker".into(),
    }
}

/// Decodes a PNG or JPEG, refusing a missing, truncated or non-image file with an error that
/// names it: the one decoder of every command that reads images.
pub fn decode_image(path: &Path) -> Result<DynamicImage, DataError> {
    if !path.is_file() {
        return Err(not_found(path));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let reader = ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format() == Some(::image::ImageFormat::Jpeg)
        && !jpeg_is_complete(&bytes[bytes.len().saturating_sub(1024)..])
    {
        return Err(truncated(path));
    }
    reader.decode().map_err(|e| DataError::BadImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// `(height, width)` of an image from its header (cheap); a JPEG without its end marker is an error.
pub fn image_size(path: &Path) -> Result<(usize, usize), DataError> {
    use std::io::{Read, Seek, SeekFrom};
    if !path.is_file() {
        return Err(not_found(path));
    }
    let reader = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    if reader.format() == Some(::image::ImageFormat::Jpeg) {
        // Also check the JPEG's last kilobyte for its end marker: cheap, and it catches truncation.
        let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(1024)))
            .map_err(|e| DataError::io(path, e))?;
        let mut tail = Vec::new();
        f.read_to_end(&mut tail)
            .map_err(|e| DataError::io(path, e))?;
        if !jpeg_is_complete(&tail) {
            return Err(truncated(path));
        }
    }
    let (w, h) = reader.into_dimensions().map_err(|e| DataError::BadImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((h as usize, w as usize))
}

// ANCHOR: voc_palette
/// The colour of index `i` in the PASCAL VOC palette (the bits of `i` spread over R, G, B from
/// the most significant bit down). Index 255, "void", is (224, 224, 192).
pub fn voc_color(index: u8) -> [u8; 3] {
    let (mut r, mut g, mut b) = (0u8, 0u8, 0u8);
    let mut c = index;
    for j in 0..8 {
        r |= (c & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
        c >>= 3;
    }
    [r, g, b]
}
// ANCHOR_END: voc_palette

fn voc_index_of(color: [u8; 3]) -> Option<u8> {
    (0..=255u8).find(|&i| voc_color(i) == color)
}

/// A decoded mask file, before any rule is applied.
enum RawMask {
    /// One channel: the values as stored.
    Gray(Mask),
    /// Colour: each pixel as an index into the distinct colours, with the colours.
    Color {
        indices: Vec<u32>,
        colors: Vec<[u8; 3]>,
        height: usize,
        width: usize,
    },
}

fn read_raw_mask(path: &Path) -> Result<RawMask, DataError> {
    let img = decode_image(path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        DynamicImage::ImageLuma8(g) => Ok(RawMask::Gray(Mask {
            height: h,
            width: w,
            data: g.into_raw(),
        })),
        DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_) => Ok(RawMask::Gray(Mask {
            height: h,
            width: w,
            data: img.to_luma8().into_raw(),
        })),
        other => {
            let rgb = other.to_rgb8();
            let mut colors: Vec<[u8; 3]> = Vec::new();
            let mut indices = Vec::with_capacity(w * h);
            for px in rgb.pixels() {
                let c = px.0;
                let i = match colors.iter().position(|&k| k == c) {
                    Some(i) => i,
                    None => {
                        if colors.len() >= 4096 {
                            return Err(DataError::AmbiguousMask {
                                path: path.to_path_buf(),
                                reason:
                                    "the mask has more than 4096 colours: it is a photo, not a mask"
                                        .into(),
                                fix: "pass a label mask (PNG, one value per class)".into(),
                            });
                        }
                        colors.push(c);
                        colors.len() - 1
                    }
                };
                indices.push(i as u32);
            }
            if colors.iter().all(|c| c[0] == c[1] && c[1] == c[2]) {
                let data = indices.iter().map(|&i| colors[i as usize][0]).collect();
                return Ok(RawMask::Gray(Mask {
                    height: h,
                    width: w,
                    data,
                }));
            }
            Ok(RawMask::Color {
                indices,
                colors,
                height: h,
                width: w,
            })
        }
    }
}

// ANCHOR: class_map
/// Reads a class-id mask: a one-channel PNG whose values are class ids (`SegmentationClassAug`),
/// or a VOC palette PNG (`SegmentationClass`) whose colours are mapped back to palette indices.
/// Values above `max_class` other than 255 are an error naming the file.
pub fn load_class_map(path: &Path, max_class: u8, benchmark: &str) -> Result<Mask, DataError> {
    let mask = match read_raw_mask(path)? {
        RawMask::Gray(m) => m,
        RawMask::Color {
            indices,
            colors,
            height,
            width,
        } => {
            let mut lut = Vec::with_capacity(colors.len());
            for c in &colors {
                match voc_index_of(*c) {
                    Some(i) => lut.push(i),
                    None => {
                        return Err(DataError::AmbiguousMask {
                            path: path.to_path_buf(),
                            reason: format!("colour {c:?} is not in the VOC palette"),
                            fix: "use a one-channel class-id PNG or a VOC palette PNG".into(),
                        });
                    }
                }
            }
            Mask {
                height,
                width,
                data: indices.iter().map(|&i| lut[i as usize]).collect(),
            }
        }
    };
    if let Some(&bad) = mask.data.iter().find(|&&v| v > max_class && v != IGNORE) {
        return Err(DataError::ClassOutOfRange {
            path: path.to_path_buf(),
            id: bad as u32,
            max: max_class as u32,
            benchmark: benchmark.to_string(),
        });
    }
    Ok(mask)
}
// ANCHOR_END: class_map

// ANCHOR: own_mask_rule
/// Reads the mask of one of the user's own images as a binary mask (0 bg, 1 fg, 255 ignore).
///
/// The rule, applied in this order:
/// 1. With `class_id`: pixels equal to it are foreground, 255 is ignored, all else background
///    (for colour masks, `class_id` is an index of the VOC palette).
/// 2. One-channel masks: 0 is background. If the values are only 0 and 255, 255 is foreground.
///    Otherwise 255 is ignored and, if exactly one other value remains (1 for a 0/1 mask, or a
///    single class id), it is foreground.
/// 3. Colour masks: black is background, VOC "void" (224, 224, 192) is ignored, and if exactly
///    one other colour remains it is foreground.
/// 4. Anything else (several classes, a soft or anti-aliased mask) is an error that lists the
///    values found and asks for `--class-id` or a cleaner mask.
pub fn load_binary_mask(path: &Path, class_id: Option<u8>) -> Result<Mask, DataError> {
    let ambiguous = |found: String| DataError::AmbiguousMask {
        path: path.to_path_buf(),
        reason: format!("cannot tell the foreground: the mask holds {found}"),
        fix:
            "pass --class-id N to pick one value, or save the mask with only 0 and 255 (or 0 and 1)"
                .into(),
    };
    match read_raw_mask(path)? {
        RawMask::Gray(m) => {
            let values: BTreeSet<u8> = m.data.iter().copied().collect();
            let fg = match class_id {
                Some(c) => c,
                None => {
                    let others: Vec<u8> = values.iter().copied().filter(|&v| v != 0).collect();
                    if others == [255] {
                        255
                    } else {
                        let non_ignore: Vec<u8> =
                            others.iter().copied().filter(|&v| v != IGNORE).collect();
                        match non_ignore.as_slice() {
                            [] => 255, // all background: an empty (but valid) mask
                            [v] => *v,
                            _ => return Err(ambiguous(format!("the values {values:?}"))),
                        }
                    }
                }
            };
            let fg_only_255 = fg == 255;
            let data = m
                .data
                .iter()
                .map(|&v| {
                    if v == fg {
                        1
                    } else if v == IGNORE && !fg_only_255 {
                        IGNORE
                    } else {
                        0
                    }
                })
                .collect();
            Ok(Mask {
                height: m.height,
                width: m.width,
                data,
            })
        }
        RawMask::Color {
            indices,
            colors,
            height,
            width,
        } => {
            let void = voc_color(IGNORE);
            let fg_color = match class_id {
                Some(c) => voc_color(c),
                None => {
                    let others: Vec<[u8; 3]> = colors
                        .iter()
                        .copied()
                        .filter(|&c| c != [0, 0, 0] && c != void)
                        .collect();
                    match others.as_slice() {
                        [c] => *c,
                        [] => [1, 1, 1], // nothing matches: empty mask
                        _ => {
                            return Err(ambiguous(format!(
                                "{} colours {:?}",
                                colors.len(),
                                &colors[..colors.len().min(8)]
                            )));
                        }
                    }
                }
            };
            let lut: Vec<u8> = colors
                .iter()
                .map(|&c| {
                    if c == fg_color {
                        1
                    } else if c == void {
                        IGNORE
                    } else {
                        0
                    }
                })
                .collect();
            Ok(Mask {
                height,
                width,
                data: indices.iter().map(|&i| lut[i as usize]).collect(),
            })
        }
    }
}
// ANCHOR_END: own_mask_rule

/// The user's own episode: support images with masks and one query (its mask optional).
#[derive(Clone, Debug)]
pub struct OwnImages {
    pub supports: Vec<(PathBuf, PathBuf)>,
    pub queries: Vec<(PathBuf, Option<PathBuf>)>,
    /// Which mask value (or VOC palette index) is foreground; see [`load_binary_mask`].
    pub class_id: Option<u8>,
    pub class_name: String,
}

impl OwnImages {
    /// One episode per query image. A query without a mask gets an all-[`IGNORE`] mask.
    pub fn episodes(&self) -> Result<Vec<Episode>, DataError> {
        if self.supports.is_empty() || self.queries.is_empty() {
            return Err(DataError::InvalidSpec(
                "give at least one support image with its mask and one query image".into(),
            ));
        }
        let supports = self
            .supports
            .iter()
            .map(|(img, mask)| load_shot(img, Some(mask), self.class_id))
            .collect::<Result<Vec<_>, _>>()?;
        for (s, (_, mask)) in supports.iter().zip(&self.supports) {
            if s.mask.count(1) == 0 {
                return Err(DataError::AmbiguousMask {
                    path: mask.clone(),
                    reason: "the support mask has no foreground pixel".into(),
                    fix: "check the mask (or --class-id): the support must show the object".into(),
                });
            }
            if s.mask.count(0) == 0 {
                return Err(DataError::AmbiguousMask {
                    path: mask.clone(),
                    reason: "the support mask has no background pixel".into(),
                    fix: "give a mask with both the object (foreground) and the rest of the image \
                          (background, 0): the background prototype is pooled from it"
                        .into(),
                });
            }
        }
        self.queries
            .iter()
            .enumerate()
            .map(|(i, (img, mask))| {
                Ok(Episode {
                    benchmark: "own-images".into(),
                    fold: 0,
                    split: Split::Test,
                    index: i as u64,
                    class_id: self.class_id.unwrap_or(1) as ClassId,
                    class_name: self.class_name.clone(),
                    supports: supports.clone(),
                    query: load_shot(img, mask.as_deref(), self.class_id)?,
                    query_original_mask: None,
                })
            })
            .collect()
    }
}

fn load_shot(image: &Path, mask: Option<&Path>, class_id: Option<u8>) -> Result<Shot, DataError> {
    let img = load_image(image)?;
    let mask = match mask {
        Some(m) => {
            let mk = load_binary_mask(m, class_id)?;
            if mk.size() != img.size() {
                return Err(DataError::SizeMismatch {
                    mask: m.to_path_buf(),
                    image: image.to_path_buf(),
                    mask_w: mk.width,
                    mask_h: mk.height,
                    image_w: img.width,
                    image_h: img.height,
                });
            }
            mk
        }
        None => Mask::filled(img.height, img.width, IGNORE),
    };
    Ok(Shot {
        id: image.display().to_string(),
        original_size: img.size(),
        image: img,
        mask,
    })
}

/// Writes an 8-bit RGB image as PNG or JPEG (by extension).
pub fn save_rgb(path: &Path, image: &Image) -> Result<(), DataError> {
    let buf = ::image::RgbImage::from_raw(image.width as u32, image.height as u32, image.to_rgb8())
        .ok_or_else(|| DataError::InvalidSpec("image buffer has the wrong length".into()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "jpg" || ext == "jpeg" {
        let file = std::fs::File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut w = std::io::BufWriter::new(file);
        let enc = ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 95);
        buf.write_with_encoder(enc)
            .map_err(|e| DataError::BadImage {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    } else {
        buf.save(path).map_err(|e| DataError::BadImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// Writes a one-channel mask PNG (class ids as stored).
pub fn save_mask(path: &Path, mask: &Mask) -> Result<(), DataError> {
    let buf =
        ::image::GrayImage::from_raw(mask.width as u32, mask.height as u32, mask.data.clone())
            .ok_or_else(|| DataError::InvalidSpec("mask buffer has the wrong length".into()))?;
    buf.save(path).map_err(|e| DataError::BadImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes a mask as a VOC palette-coloured RGB PNG (what `SegmentationClass` looks like once
/// decoded).
pub fn save_palette_mask(path: &Path, mask: &Mask) -> Result<(), DataError> {
    let rgb: Vec<u8> = mask.data.iter().flat_map(|&v| voc_color(v)).collect();
    let buf = ::image::RgbImage::from_raw(mask.width as u32, mask.height as u32, rgb)
        .ok_or_else(|| DataError::InvalidSpec("mask buffer has the wrong length".into()))?;
    buf.save(path).map_err(|e| DataError::BadImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The image with a mask's foreground (1) tinted blue-magenta (readable with colour-blindness)
/// and its border drawn in yellow.
pub fn overlay(image: &Image, mask: &Mask) -> Image {
    let mut out = image.clone();
    let plane = image.height * image.width;
    let tint = [0.55, 0.15, 0.75];
    for i in 0..plane.min(mask.data.len()) {
        if mask.data[i] != 1 {
            continue;
        }
        let (y, x) = (i / image.width, i % image.width);
        let border = [(0i64, 1i64), (1, 0), (0, -1), (-1, 0)]
            .iter()
            .any(|(dy, dx)| {
                let (ny, nx) = (y as i64 + dy, x as i64 + dx);
                ny < 0
                    || nx < 0
                    || ny >= image.height as i64
                    || nx >= image.width as i64
                    || mask.data[ny as usize * image.width + nx as usize] != 1
            });
        for c in 0..3 {
            let v = &mut out.data[c * plane + i];
            *v = if border {
                [255.0, 220.0, 0.0][c]
            } else {
                0.5 * *v + 0.5 * 255.0 * tint[c]
            };
        }
    }
    out
}

/// Images side by side, top-aligned on a white canvas as tall as the tallest.
pub fn side_by_side(images: &[Image]) -> Image {
    let height = images.iter().map(|i| i.height).max().unwrap_or(0);
    let width: usize = images.iter().map(|i| i.width).sum();
    let mut out = Image::zeros(height, width);
    out.data.iter_mut().for_each(|v| *v = 255.0);
    let mut x0 = 0;
    for img in images {
        for c in 0..3 {
            for y in 0..img.height {
                let src = &img.data[(c * img.height + y) * img.width..][..img.width];
                out.data[(c * height + y) * width + x0..][..img.width].copy_from_slice(src);
            }
        }
        x0 += img.width;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_palette_known_colours() {
        assert_eq!(voc_color(0), [0, 0, 0]);
        assert_eq!(voc_color(1), [128, 0, 0]);
        assert_eq!(voc_color(15), [192, 128, 128]);
        assert_eq!(voc_color(255), [224, 224, 192]);
        assert_eq!(voc_index_of([192, 128, 128]), Some(15));
    }
}
