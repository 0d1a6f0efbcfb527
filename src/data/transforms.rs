//! Transforms: resize (image bilinear, mask nearest), random horizontal flip for training, and
//! the normalisation the backbone's weights expect.

use super::episode::{Episode, Image, Mask, Shot};
use super::rng::Rng;

// ANCHOR: normalization
/// How pixel values are normalised for the backbone.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// RGB, 0..255 (as read).
    #[default]
    None,
    /// RGB divided by 255 (0..1): for a network trained from scratch.
    Unit,
    /// Caffe / Keras ImageNet weights (v1): channels reordered to **BGR**, 0..255, minus the
    /// ImageNet mean (103.939, 116.779, 123.68).
    CaffeBgr,
    /// torchvision ImageNet weights: RGB / 255, minus mean (0.485, 0.456, 0.406), divided by
    /// std (0.229, 0.224, 0.225).
    Torchvision,
}

pub const CAFFE_BGR_MEAN: [f32; 3] = [103.939, 116.779, 123.68];
pub const TORCHVISION_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const TORCHVISION_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Normalises an RGB 0..255 image (does nothing if it is already normalised).
pub fn normalize(mut image: Image, norm: Normalization) -> Image {
    if image.normalization != Normalization::None || norm == Normalization::None {
        return image;
    }
    let plane = image.height * image.width;
    match norm {
        Normalization::None => {}
        Normalization::Unit => image.data.iter_mut().for_each(|v| *v /= 255.0),
        Normalization::CaffeBgr => {
            let (r, rest) = image.data.split_at_mut(plane);
            let b = &mut rest[plane..];
            r.swap_with_slice(b); // RGB -> BGR
            for (c, mean) in CAFFE_BGR_MEAN.iter().enumerate() {
                image.data[c * plane..(c + 1) * plane]
                    .iter_mut()
                    .for_each(|v| *v -= mean);
            }
        }
        Normalization::Torchvision => {
            for c in 0..3 {
                let (m, s) = (TORCHVISION_MEAN[c], TORCHVISION_STD[c]);
                image.data[c * plane..(c + 1) * plane]
                    .iter_mut()
                    .for_each(|v| *v = (*v / 255.0 - m) / s);
            }
        }
    }
    image.normalization = norm;
    image
}
// ANCHOR_END: normalization

impl std::str::FromStr for Normalization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Normalization::None),
            "unit" => Ok(Normalization::Unit),
            "caffe-bgr" | "caffe" => Ok(Normalization::CaffeBgr),
            "torchvision" => Ok(Normalization::Torchvision),
            _ => Err(format!(
                "unknown normalization {s:?}: use none, unit, caffe-bgr or torchvision"
            )),
        }
    }
}

// ANCHOR: resize
/// Bilinear resize with half-pixel centres (PyTorch's `align_corners=False`, no antialiasing).
pub fn resize_bilinear(image: &Image, height: usize, width: usize) -> Image {
    if image.size() == (height, width) {
        return image.clone();
    }
    let (sh, sw) = (image.height, image.width);
    let data = image
        .data
        .chunks_exact(sh * sw)
        .flat_map(|plane| resize_plane(plane, (sh, sw), (height, width)))
        .collect();
    Image {
        height,
        width,
        data,
        normalization: image.normalization,
    }
}

/// Bilinear resize of one row-major plane of size `from` to `to` (half-pixel centres).
pub fn resize_plane(src: &[f32], from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    let ((sh, sw), (height, width)) = (from, to);
    let (ys, xs) = (axis_weights(sh, height), axis_weights(sw, width));
    let mut dst = vec![0.0; height * width];
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (&src[y0 * sw..(y0 + 1) * sw], &src[y1 * sw..(y1 + 1) * sw]);
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
            dst[y * width + x] = top + (bottom - top) * fy;
        }
    }
    dst
}

/// For each output position: the two source positions and the weight of the second.
fn axis_weights(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|i| {
            let s = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(src - 1);
            let i1 = (i0 + 1).min(src - 1);
            (i0, i1, s - i0 as f32)
        })
        .collect()
}

/// Nearest-neighbour resize of a mask (labels are never blended): output pixel centre `y + 0.5`
/// takes the source pixel that contains `(y + 0.5) * src / dst`.
pub fn resize_nearest(mask: &Mask, height: usize, width: usize) -> Mask {
    if mask.size() == (height, width) {
        return mask.clone();
    }
    let pick = |src: usize, dst: usize| -> Vec<usize> {
        (0..dst)
            .map(|i| (((i as f64 + 0.5) * src as f64 / dst as f64) as usize).min(src - 1))
            .collect()
    };
    let (ys, xs) = (pick(mask.height, height), pick(mask.width, width));
    let mut data = Vec::with_capacity(height * width);
    for &y in &ys {
        let row = &mask.data[y * mask.width..(y + 1) * mask.width];
        data.extend(xs.iter().map(|&x| row[x]));
    }
    Mask {
        height,
        width,
        data,
    }
}
// ANCHOR_END: resize

/// Mirror an image left-right.
pub fn flip_image(image: &mut Image) {
    let w = image.width;
    for row in image.data.chunks_exact_mut(w) {
        row.reverse();
    }
}

/// Mirror a mask left-right.
pub fn flip_mask(mask: &mut Mask) {
    let w = mask.width;
    for row in mask.data.chunks_exact_mut(w) {
        row.reverse();
    }
}

// ANCHOR: transform
/// What is done to every image and mask of an episode after loading.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Transform {
    /// Network input size `(height, width)`; `None` keeps the original size.
    pub size: Option<(usize, usize)>,
    /// Flip each image (with its mask) left-right with probability 1/2: training only.
    pub random_flip: bool,
    pub normalization: Normalization,
    /// Keep the query mask at its original size in `Episode::query_original_mask`, to evaluate
    /// at the original label size.
    pub keep_original_query_mask: bool,
}

impl Transform {
    /// Training: resize to the network size, random flips.
    pub fn train(size: usize, normalization: Normalization) -> Self {
        Transform {
            size: Some((size, size)),
            random_flip: true,
            normalization,
            keep_original_query_mask: false,
        }
    }

    /// Evaluation at the network size (no flips).
    pub fn eval(size: usize, normalization: Normalization) -> Self {
        Transform {
            size: Some((size, size)),
            random_flip: false,
            normalization,
            keep_original_query_mask: false,
        }
    }

    /// Evaluation that also keeps the original-size query label.
    pub fn eval_original_size(size: usize, normalization: Normalization) -> Self {
        Transform {
            keep_original_query_mask: true,
            ..Transform::eval(size, normalization)
        }
    }

    /// Applies the transform; `rng` decides the flips.
    pub fn apply(&self, mut episode: Episode, rng: &mut Rng) -> Episode {
        let flip_query = self.random_flip && rng.chance(0.5);
        if self.keep_original_query_mask {
            let mut m = episode.query.mask.clone();
            if flip_query {
                flip_mask(&mut m);
            }
            episode.query_original_mask = Some(m);
        }
        let supports = std::mem::take(&mut episode.supports);
        episode.supports = supports
            .into_iter()
            .map(|s| {
                let flip = self.random_flip && rng.chance(0.5);
                self.apply_shot(s, flip)
            })
            .collect();
        let query = std::mem::replace(&mut episode.query, empty_shot());
        episode.query = self.apply_shot(query, flip_query);
        episode
    }

    fn apply_shot(&self, mut shot: Shot, flip: bool) -> Shot {
        if let Some((h, w)) = self.size {
            shot.image = resize_bilinear(&shot.image, h, w);
            shot.mask = resize_nearest(&shot.mask, h, w);
        }
        if flip {
            flip_image(&mut shot.image);
            flip_mask(&mut shot.mask);
        }
        shot.image = normalize(shot.image, self.normalization);
        shot
    }
}
// ANCHOR_END: transform

fn empty_shot() -> Shot {
    Shot {
        id: String::new(),
        image: Image::zeros(0, 0),
        mask: Mask::filled(0, 0, 0),
        original_size: (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_of_constant_is_constant_and_nearest_keeps_labels() {
        let mut img = Image::zeros(5, 7);
        img.data.iter_mut().for_each(|v| *v = 42.0);
        let r = resize_bilinear(&img, 11, 3);
        assert!(r.data.iter().all(|&v| (v - 42.0).abs() < 1e-4));
        let m = Mask {
            height: 2,
            width: 2,
            data: vec![0, 1, 255, 7],
        };
        let r = resize_nearest(&m, 4, 4);
        assert_eq!(
            r.data,
            vec![0, 0, 1, 1, 0, 0, 1, 1, 255, 255, 7, 7, 255, 255, 7, 7]
        );
    }

    #[test]
    fn caffe_is_bgr_minus_mean() {
        let img = Image::from_rgb8(1, 1, &[10, 20, 30]);
        let n = normalize(img, Normalization::CaffeBgr);
        assert_eq!(n.data, vec![30.0 - 103.939, 20.0 - 116.779, 10.0 - 123.68]);
    }
}
