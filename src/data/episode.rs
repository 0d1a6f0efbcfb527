//! The one episode type every source produces.

use super::transforms::Normalization;

/// A class id: 1..=N for the benchmark's classes, 0 for background, [`IGNORE`] for "not labelled".
pub type ClassId = u8;

/// Mask value of pixels that count neither as foreground nor as background (object borders,
/// "void" in VOC).
pub const IGNORE: u8 = 255;

/// Which part of a fold an episode is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The fold's training classes.
    Train,
    /// The fold's held-out classes.
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    pub(crate) fn key(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Test => 1,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" => Ok(Split::Train),
            "test" | "val" => Ok(Split::Test),
            _ => Err(format!("unknown split {s:?}: use train or test")),
        }
    }
}

// ANCHOR: image
/// An image: `data` is `[3, height, width]` (CHW) row-major. Channels are RGB and values 0..255
/// until a [`Normalization`] is applied; `normalization` says which one was (Caffe's turns the
/// channels into BGR).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
    pub normalization: Normalization,
}

/// A mask: `data` is `[height, width]` row-major, class ids or 0 / 1, and [`IGNORE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}
// ANCHOR_END: image

impl Image {
    /// A black RGB image.
    pub fn zeros(height: usize, width: usize) -> Self {
        Image {
            height,
            width,
            data: vec![0.0; 3 * height * width],
            normalization: Normalization::None,
        }
    }

    /// From interleaved 8-bit RGB (`[height, width, 3]`).
    pub fn from_rgb8(height: usize, width: usize, rgb: &[u8]) -> Self {
        let plane = height * width;
        let mut data = vec![0.0; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).take(plane).enumerate() {
            data[i] = px[0] as f32;
            data[plane + i] = px[1] as f32;
            data[2 * plane + i] = px[2] as f32;
        }
        Image {
            height,
            width,
            data,
            normalization: Normalization::None,
        }
    }

    /// To interleaved 8-bit RGB, clamping; only meaningful before normalisation.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let mut out = Vec::with_capacity(3 * plane);
        for i in 0..plane {
            for c in 0..3 {
                out.push(self.data[c * plane + i].round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }

    /// The size as `(height, width)`.
    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }
}

impl Mask {
    pub fn filled(height: usize, width: usize, value: u8) -> Self {
        Mask {
            height,
            width,
            data: vec![value; height * width],
        }
    }

    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }

    // ANCHOR: binary_mask
    /// The binary mask of `class` from a class-id mask: 1 where the pixel is `class`, [`IGNORE`]
    /// where it is ignored, 0 elsewhere (other classes are background, as in PANet).
    pub fn binary_for(&self, class: ClassId) -> Mask {
        let data = self
            .data
            .iter()
            .map(|&v| {
                if v == IGNORE {
                    IGNORE
                } else {
                    u8::from(v == class)
                }
            })
            .collect();
        Mask {
            height: self.height,
            width: self.width,
            data,
        }
    }
    // ANCHOR_END: binary_mask

    /// How many pixels hold `value`.
    pub fn count(&self, value: u8) -> usize {
        self.data.iter().filter(|&&v| v == value).count()
    }
}

// ANCHOR: episode
/// One support or query image with its mask (binary: 0 background, 1 foreground, 255 ignore).
#[derive(Clone, Debug)]
pub struct Shot {
    /// The image id in its benchmark (a VOC name, a COCO file name, a synthetic id, a path).
    pub id: String,
    pub image: Image,
    pub mask: Mask,
    /// `(height, width)` of the image as read, before any transform.
    pub original_size: (usize, usize),
}

/// A 1-way K-shot episode: K supports of one class and a query.
#[derive(Clone, Debug)]
pub struct Episode {
    /// The benchmark with its protocol or fold convention, e.g. `pascal-5i/panet`.
    pub benchmark: String,
    pub fold: usize,
    pub split: Split,
    /// The episode's index in its `(fold, split, shots, seed)` stream.
    pub index: u64,
    pub class_id: ClassId,
    pub class_name: String,
    pub supports: Vec<Shot>,
    pub query: Shot,
    /// The query mask at the original label size, kept when the transform asks for it
    /// (evaluation at the original size, as PFENet and BAM do).
    pub query_original_mask: Option<Mask>,
}

/// Which stream of episodes to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct EpisodeSpec {
    pub fold: usize,
    pub split: Split,
    /// K, the number of support images.
    pub shots: usize,
    pub seed: u64,
}

/// An image of a benchmark: its id and the source's own index of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub id: String,
    pub key: usize,
}

/// What an episode is made of, before any pixel is read: what golden-episode tests pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpisodePlan {
    pub spec: EpisodeSpec,
    pub index: u64,
    pub class_id: ClassId,
    pub supports: Vec<ImageRef>,
    pub query: ImageRef,
}
// ANCHOR_END: episode

impl EpisodePlan {
    pub fn support_ids(&self) -> Vec<&str> {
        self.supports.iter().map(|r| r.id.as_str()).collect()
    }
}

impl Episode {
    /// The image ids of the supports.
    pub fn support_ids(&self) -> Vec<&str> {
        self.supports.iter().map(|s| s.id.as_str()).collect()
    }
}
