//! Shared by `tests/paper_*.rs`: the fetched ImageNet weights and photos, and a small
//! PASCAL-layout data root of real pixels built from those photos.
//!
//! The photos (`scripts/fetch-weights.sh` takes them from the PyPI `scikit-image==0.24.0` wheel)
//! have no masks, so the fixture makes images whose masks are exact by construction: a patch
//! cut from an object photo (a cat, an astronaut, a motorcycle seen by two cameras, a
//! cameraman) is pasted onto a crop of a background photo (coffee, rocket, grass, gravel,
//! brick), with a patch of another object photo as a distractor. Each of the 20 class ids
//! stands for one region (a quarter) of one object photo's object box: the class is "this region
//! of this photo", not the VOC class of that id. Support and query of a class are different
//! images (another crop of the region, another size, place, flip and background). The root
//! has the VOC layout (`JPEGImages`, `SegmentationClassAug`, `ImageSets/Segmentation/
//! trainaug.txt`), so `Pascal5i` opens it under the PANet protocol.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use image::imageops::{FilterType, crop_imm, flip_horizontal, resize};
use image::{GrayImage, Luma, RgbImage};

/// `SRPNET_REQUIRE_ASSETS=1` turns a skip for missing weights or photos into a failure (CI).
pub const REQUIRE_ENV: &str = "SRPNET_REQUIRE_ASSETS";

/// Object photos with the box (x0, y0, x1, y1) their object fills, checked by eye.
const OBJECTS: [(&str, [u32; 4]); 5] = [
    ("chelsea.png", [40, 10, 370, 290]),
    ("astronaut.png", [110, 20, 350, 500]),
    ("motorcycle_left.png", [120, 120, 680, 440]),
    ("motorcycle_right.png", [120, 120, 680, 440]),
    ("camera.png", [0, 60, 340, 512]),
];

const BACKGROUNDS: [&str; 5] = [
    "coffee.png",
    "rocket.jpg",
    "grass.png",
    "gravel.png",
    "brick.png",
];

pub const ALL_PHOTOS: [&str; 10] = [
    "chelsea.png",
    "astronaut.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "camera.png",
    "coffee.png",
    "rocket.jpg",
    "grass.png",
    "gravel.png",
    "brick.png",
];

/// The fetched weights folder and photos folder, or `None` after a loud note on stderr; with
/// `SRPNET_REQUIRE_ASSETS=1` their absence fails the test instead.
pub fn assets(test: &str) -> Option<(PathBuf, PathBuf)> {
    let weights = srpnet::weights::default_weights_dir();
    let photos = srpnet::weights::photos_dir();
    let missing: Vec<String> = std::iter::once(weights.join("model.json"))
        .chain(ALL_PHOTOS.iter().map(|p| photos.join(p)))
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some((weights, photos));
    }
    let message = format!(
        "{test}: SKIPPED, the ImageNet weights or photos are missing ({}); run \
         `bash scripts/fetch-weights.sh` (it fills $SRPNET_CACHE, default ~/.cache/srpnet)",
        missing.join(", ")
    );
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{message}; {REQUIRE_ENV}=1 requires them");
    }
    eprintln!("\n*** {message} ***\n");
    None
}

/// A tiny deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.unit() * f64::from(hi - lo)) as u32
    }
}

/// The source of class `c` (1..=20): object photo `(c - 1) % 5`, quarter `(c - 1) / 5` of its box.
fn class_source(c: u8) -> (usize, [u32; 4]) {
    let photo = (c as usize - 1) % OBJECTS.len();
    let quarter = (c as usize - 1) / OBJECTS.len();
    let [x0, y0, x1, y1] = OBJECTS[photo].1;
    let (mx, my) = ((x0 + x1) / 2, (y0 + y1) / 2);
    let boxes = [
        [x0, y0, mx, my],
        [mx, y0, x1, my],
        [x0, my, mx, y1],
        [mx, my, x1, y1],
    ];
    (photo, boxes[quarter])
}

/// A random crop of 70-100% of `bx`'s sides, resized to `w` x `h`, maybe mirrored.
fn patch(photo: &RgbImage, bx: [u32; 4], w: u32, h: u32, rng: &mut Rng) -> RgbImage {
    let [x0, y0, x1, y1] = bx;
    let (bw, bh) = (x1 - x0, y1 - y0);
    let cw = (f64::from(bw) * (0.7 + 0.3 * rng.unit())) as u32;
    let ch = (f64::from(bh) * (0.7 + 0.3 * rng.unit())) as u32;
    let cx = x0 + rng.range(0, bw - cw + 1);
    let cy = y0 + rng.range(0, bh - ch + 1);
    let cut = crop_imm(photo, cx, cy, cw.max(1), ch.max(1)).to_image();
    let out = resize(&cut, w, h, FilterType::Triangle);
    if rng.unit() < 0.5 {
        flip_horizontal(&out)
    } else {
        out
    }
}

fn paste(image: &mut RgbImage, mask: &mut GrayImage, p: &RgbImage, x: u32, y: u32, class: u8) {
    for (px, py, v) in p.enumerate_pixels() {
        image.put_pixel(x + px, y + py, *v);
        mask.put_pixel(x + px, y + py, Luma([class]));
    }
}

/// Writes the fixture under `root` (`VOCdevkit/VOC2012/...`): `per_class` images of `size` x
/// `size` pixels for each of the 20 classes. Returns the image names.
pub fn build(root: &Path, photos: &Path, per_class: usize, size: u32) -> Vec<String> {
    let load = |name: &str| {
        image::open(photos.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", photos.join(name).display()))
            .to_rgb8()
    };
    let objects: Vec<RgbImage> = OBJECTS.iter().map(|(n, _)| load(n)).collect();
    let backgrounds: Vec<RgbImage> = BACKGROUNDS.iter().map(|n| load(n)).collect();
    let voc = root.join("VOCdevkit/VOC2012");
    for d in [
        "JPEGImages",
        "SegmentationClassAug",
        "ImageSets/Segmentation",
    ] {
        std::fs::create_dir_all(voc.join(d)).unwrap();
    }
    let mut rng = Rng(20_221_030);
    let mut names = Vec::new();
    for class in 1..=20u8 {
        let (photo, bx) = class_source(class);
        for i in 0..per_class {
            // Background: a crop of a background photo, at least half its short side.
            let bg = &backgrounds[(class as usize + i) % backgrounds.len()];
            let side = bg.width().min(bg.height());
            let crop = rng.range(side / 2, side + 1);
            let (bx0, by0) = (
                rng.range(0, bg.width() - crop + 1),
                rng.range(0, bg.height() - crop + 1),
            );
            let mut img = resize(
                &crop_imm(bg, bx0, by0, crop, crop).to_image(),
                size,
                size,
                FilterType::Triangle,
            );
            let mut mask = GrayImage::new(size, size);
            // The object in one half, a distractor (another photo's class) in the other.
            let left = rng.unit() < 0.5;
            let half = size / 2;
            let place = |rng: &mut Rng, in_left: bool, w: u32, h: u32| {
                let x_lo = if in_left { 0 } else { half };
                (
                    x_lo + rng.range(0, half - w + 1),
                    rng.range(0, size - h + 1),
                )
            };
            let (w, h) = (
                rng.range(size * 3 / 10, half),
                rng.range(size * 2 / 5, size * 4 / 5),
            );
            let p = patch(&objects[photo], bx, w, h, &mut rng);
            let (x, y) = place(&mut rng, left, w, h);
            paste(&mut img, &mut mask, &p, x, y, class);
            let other = loop {
                let c = rng.range(1, 21) as u8;
                if class_source(c).0 != photo {
                    break c;
                }
            };
            let (op, obx) = class_source(other);
            let (w, h) = (rng.range(size / 4, half), rng.range(size / 4, size * 3 / 5));
            let p = patch(&objects[op], obx, w, h, &mut rng);
            let (x, y) = place(&mut rng, !left, w, h);
            paste(&mut img, &mut mask, &p, x, y, other);
            let name = format!("photo_{class:02}_{i:02}");
            img.save(voc.join("JPEGImages").join(format!("{name}.jpg")))
                .unwrap();
            mask.save(voc.join("SegmentationClassAug").join(format!("{name}.png")))
                .unwrap();
            names.push(name);
        }
    }
    let list = names.join("\n") + "\n";
    std::fs::write(voc.join("ImageSets/Segmentation/trainaug.txt"), list).unwrap();
    names
}
