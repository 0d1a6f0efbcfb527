//! synthetic-5i: a procedurally generated few-shot benchmark shaped like PASCAL-5i, generated on
//! the fly and deterministically (no files). 20 classes in 4 folds of 5; each class is a shape
//! family with its own texture and colour signature; scenes have cluttered textured backgrounds,
//! distractor objects of other classes and a 255 ignore band on object borders.

use super::episode::{
    ClassId, Episode, EpisodePlan, EpisodeSpec, IGNORE, Image, ImageRef, Mask, Shot, Split,
};
use super::error::DataError;
use super::folds::{FoldConvention, split_classes};
use super::rng::{Rng, mix};
use super::sampler::{Benchmark, episode_rng, validate_spec};

pub const SYNTHETIC_NAME: &str = "synthetic-5i";

/// The 20 classes; fold `i` holds out classes `5i+1..=5i+5` (ids are position + 1).
pub const SYNTHETIC_CLASSES: [&str; 20] = [
    "disc",
    "square",
    "triangle",
    "ring",
    "cross",
    "star",
    "crescent",
    "hexagon",
    "capsule",
    "heart",
    "ell",
    "diamond",
    "arrow",
    "half-disc",
    "tee",
    "hourglass",
    "frame",
    "flower",
    "gear",
    "dumbbell",
];

/// Folds are consecutive, as in PASCAL-5i.
pub const SYNTHETIC_FOLDS: FoldConvention = FoldConvention::Consecutive;

/// Bump when the generator changes: it is part of every scene's seed, so golden tests fail loudly.
pub const GENERATOR_VERSION: u64 = 1;

// ANCHOR: shapes
/// A shape family, defined in the object's own frame: `(u, v)` in about `[-1, 1]^2`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Disc,
    Square,
    Triangle,
    Ring,
    Cross,
    Star,
    Crescent,
    Hexagon,
    Capsule,
    Heart,
    Ell,
    Diamond,
    Arrow,
    HalfDisc,
    Tee,
    Hourglass,
    Frame,
    Flower,
    Gear,
    Dumbbell,
    /// Background clutter: a wobbly blob (radius modulated by two harmonics).
    Blob {
        a2: f32,
        p2: f32,
        a3: f32,
        p3: f32,
    },
    /// Background clutter: a long thin bar.
    Stroke,
}

fn regular_polygon(u: f32, v: f32, n: usize, r: f32) -> bool {
    let apothem = r * (std::f32::consts::PI / n as f32).cos();
    (0..n).all(|k| {
        let a = std::f32::consts::TAU * (k as f32 + 0.5) / n as f32 - std::f32::consts::FRAC_PI_2;
        u * a.cos() + v * a.sin() <= apothem
    })
}

impl Shape {
    fn contains(self, u: f32, v: f32) -> bool {
        let r2 = u * u + v * v;
        match self {
            Shape::Disc => r2 <= 0.95,
            Shape::Square => u.abs().max(v.abs()) <= 0.75,
            Shape::Triangle => regular_polygon(u, v + 0.15, 3, 1.05),
            Shape::Ring => (0.36..=0.98).contains(&r2),
            Shape::Cross => {
                (u.abs() <= 0.3 && v.abs() <= 0.95) || (v.abs() <= 0.3 && u.abs() <= 0.95)
            }
            Shape::Star => {
                let t = (v.atan2(u) / std::f32::consts::TAU * 5.0 + 0.25).rem_euclid(1.0);
                let tri = (2.0 * t - 1.0).abs();
                r2.sqrt() <= 0.42 + 0.58 * tri * tri
            }
            Shape::Crescent => r2 <= 0.95 && (u - 0.45).powi(2) + v * v >= 0.55,
            Shape::Hexagon => regular_polygon(u, v, 6, 0.95),
            Shape::Capsule => {
                let du = (u.abs() - 0.6).max(0.0);
                du * du + v * v <= 0.38 * 0.38
            }
            Shape::Heart => {
                let (x, y) = (u * 1.25, -v * 1.25 + 0.25);
                let a = x * x + y * y - 1.0;
                a * a * a - x * x * y * y * y <= 0.0
            }
            Shape::Ell => {
                ((-0.8..=-0.3).contains(&u) && v.abs() <= 0.9)
                    || ((-0.8..=0.8).contains(&u) && (0.4..=0.9).contains(&v))
            }
            Shape::Diamond => u.abs() / 0.6 + v.abs() <= 1.0,
            Shape::Arrow => {
                ((-0.9..=0.15).contains(&u) && v.abs() <= 0.2)
                    || ((0.15..=0.95).contains(&u) && v.abs() <= 0.75 * (0.95 - u))
            }
            Shape::HalfDisc => {
                (r2 <= 0.95 && v <= 0.0) || (v > 0.0 && v <= 0.15 && u.abs() <= 0.97)
            }
            Shape::Tee => {
                ((-0.9..=-0.5).contains(&v) && u.abs() <= 0.85)
                    || (u.abs() <= 0.22 && v > -0.5 && v <= 0.9)
            }
            Shape::Hourglass => v.abs() <= 0.92 && u.abs() <= 0.08 + 0.75 * v.abs(),
            Shape::Frame => {
                let m = u.abs().max(v.abs());
                (0.5..=0.85).contains(&m)
            }
            Shape::Flower => {
                let th = v.atan2(u);
                r2.sqrt() <= 0.5 + 0.45 * (3.0 * th).cos().abs()
            }
            Shape::Gear => {
                let th = v.atan2(u);
                let outer = if (10.0 * th).cos() > 0.0 { 0.98 } else { 0.78 };
                r2 <= outer * outer && r2 >= 0.06
            }
            Shape::Dumbbell => {
                (u.abs() - 0.58).powi(2) + v * v <= 0.38 * 0.38
                    || (u.abs() <= 0.6 && v.abs() <= 0.13)
            }
            Shape::Blob { a2, p2, a3, p3 } => {
                let th = v.atan2(u);
                r2.sqrt() <= 0.75 + a2 * (2.0 * th + p2).cos() + a3 * (3.0 * th + p3).cos()
            }
            Shape::Stroke => v.abs() <= 0.1 && u.abs() <= 1.0,
        }
    }
}
// ANCHOR_END: shapes

// ANCHOR: textures
/// A texture family, in the object's own frame, with its frequency (periods per unit).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Texture {
    Stripes(f32),
    Checker(f32),
    Dots(f32),
    Gradient,
    Rings(f32),
    Sectors(f32),
    Blotches(f32),
    Grid(f32),
    Waves(f32),
}

/// One class: a shape, a texture and two base colours (hue, saturation, value).
struct ClassStyle {
    shape: Shape,
    texture: Texture,
    primary: [f32; 3],
    secondary: [f32; 3],
}

/// Class `c` (1-based): shape `c`, a texture family, and colours spread around the hue circle
/// by the golden ratio, so that neighbouring hues belong to classes of different folds.
fn class_style(class: ClassId) -> ClassStyle {
    const SHAPES: [Shape; 20] = [
        Shape::Disc,
        Shape::Square,
        Shape::Triangle,
        Shape::Ring,
        Shape::Cross,
        Shape::Star,
        Shape::Crescent,
        Shape::Hexagon,
        Shape::Capsule,
        Shape::Heart,
        Shape::Ell,
        Shape::Diamond,
        Shape::Arrow,
        Shape::HalfDisc,
        Shape::Tee,
        Shape::Hourglass,
        Shape::Frame,
        Shape::Flower,
        Shape::Gear,
        Shape::Dumbbell,
    ];
    const TEXTURES: [Texture; 20] = [
        Texture::Stripes(2.0),
        Texture::Checker(1.8),
        Texture::Dots(2.2),
        Texture::Gradient,
        Texture::Stripes(3.0),
        Texture::Sectors(4.0),
        Texture::Rings(2.5),
        Texture::Blotches(2.0),
        Texture::Grid(2.5),
        Texture::Gradient,
        Texture::Checker(3.0),
        Texture::Waves(2.2),
        Texture::Stripes(1.5),
        Texture::Dots(3.5),
        Texture::Rings(3.5),
        Texture::Sectors(6.0),
        Texture::Blotches(3.5),
        Texture::Grid(4.0),
        Texture::Waves(3.2),
        Texture::Checker(2.4),
    ];
    let i = (class.clamp(1, 20) - 1) as usize;
    let hue = (0.03 + 0.618_034 * i as f32).fract();
    let hue2 = (hue + [0.5, 0.1, 0.0, 0.33][i % 4]).fract();
    ClassStyle {
        shape: SHAPES[i],
        texture: TEXTURES[i],
        primary: [hue, 0.75, 0.85],
        secondary: [
            hue2,
            [0.25, 0.8, 0.6, 0.9][(i / 4) % 4],
            [0.35, 0.95, 0.5, 0.7][i % 4],
        ],
    }
}
// ANCHOR_END: textures

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (s, v) = (s.clamp(0.0, 1.0), v.clamp(0.0, 1.0));
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let rgb = match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    };
    rgb.map(|c| c * 255.0)
}

fn lattice(ix: i32, iy: i32, seed: u64) -> f32 {
    let k = ((ix as u32 as u64) << 32) | iy as u32 as u64;
    (mix(seed ^ mix(k)) >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// Smooth value noise in [0, 1].
fn value_noise(x: f32, y: f32, seed: u64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let (ix, iy) = (x0 as i32, y0 as i32);
    let a = lattice(ix, iy, seed) + (lattice(ix + 1, iy, seed) - lattice(ix, iy, seed)) * sx;
    let b = lattice(ix, iy + 1, seed)
        + (lattice(ix + 1, iy + 1, seed) - lattice(ix, iy + 1, seed)) * sx;
    a + (b - a) * sy
}

/// A texture with its pose in the object frame and its two colours (RGB 0..255).
#[derive(Clone, Copy, Debug)]
struct Paint {
    texture: Texture,
    scale: f32,
    cos: f32,
    sin: f32,
    phase: (f32, f32),
    seed: u64,
    a: [f32; 3],
    b: [f32; 3],
}

impl Paint {
    fn color(&self, u: f32, v: f32) -> [f32; 3] {
        let (x, y) = (u * self.cos + v * self.sin, -u * self.sin + v * self.cos);
        let on = |f: f32| f.rem_euclid(1.0) < 0.5;
        let t = match self.texture {
            Texture::Stripes(f) => f32::from(on(f * self.scale * x + self.phase.0)),
            Texture::Checker(f) => {
                let k = (f * self.scale * x + self.phase.0).floor()
                    + (f * self.scale * y + self.phase.1).floor();
                f32::from(k.rem_euclid(2.0) < 1.0)
            }
            Texture::Dots(f) => {
                let fx = (f * self.scale * x + self.phase.0).rem_euclid(1.0) - 0.5;
                let fy = (f * self.scale * y + self.phase.1).rem_euclid(1.0) - 0.5;
                f32::from(fx * fx + fy * fy < 0.09)
            }
            Texture::Gradient => (0.5 + 0.5 * x * self.scale).clamp(0.0, 1.0),
            Texture::Rings(f) => {
                f32::from(on(f * self.scale * (u * u + v * v).sqrt() + self.phase.0))
            }
            Texture::Sectors(n) => {
                f32::from(on(n * (y.atan2(x) / std::f32::consts::TAU) + self.phase.0))
            }
            Texture::Blotches(f) => {
                let n = value_noise(
                    f * self.scale * x + 17.0,
                    f * self.scale * y + 31.0,
                    self.seed,
                );
                ((n - 0.5) * 3.0 + 0.5).clamp(0.0, 1.0)
            }
            Texture::Grid(f) => {
                let gx = (f * self.scale * x + self.phase.0).rem_euclid(1.0);
                let gy = (f * self.scale * y + self.phase.1).rem_euclid(1.0);
                f32::from(gx.min(gy) < 0.25)
            }
            Texture::Waves(f) => {
                let w = y + 0.18 * (std::f32::consts::TAU * 1.3 * x).sin();
                f32::from(on(f * self.scale * w + self.phase.0))
            }
        };
        [0, 1, 2].map(|c| self.a[c] + (self.b[c] - self.a[c]) * t)
    }
}

/// One object placed in a scene.
#[derive(Clone, Copy, Debug)]
struct Placed {
    shape: Shape,
    label: ClassId,
    cx: f32,
    cy: f32,
    radius: f32,
    aspect: f32,
    cos: f32,
    sin: f32,
    paint: Paint,
}

impl Placed {
    /// The object-frame coordinates of pixel centre `(x, y)`.
    #[inline]
    fn local(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let u = (dx * self.cos + dy * self.sin) / (self.radius * self.aspect);
        let v = (-dx * self.sin + dy * self.cos) * self.aspect / self.radius;
        (u, v)
    }

    /// Pixel bounds `(x0, y0, x1, y1)` (exclusive ends) clipped to the image.
    fn bounds(&self, size: usize) -> (usize, usize, usize, usize) {
        let ext = self.radius * self.aspect.max(1.0 / self.aspect) * std::f32::consts::SQRT_2 + 1.0;
        let clip = |v: f32| v.clamp(0.0, size as f32) as usize;
        (
            clip(self.cx - ext),
            clip(self.cy - ext),
            clip(self.cx + ext + 1.0),
            clip(self.cy + ext + 1.0),
        )
    }
}

fn random_paint(rng: &mut Rng, texture: Texture, a: [f32; 3], b: [f32; 3]) -> Paint {
    let angle = rng.range(0.0, std::f32::consts::TAU);
    Paint {
        texture,
        scale: rng.range(0.8, 1.25),
        cos: angle.cos(),
        sin: angle.sin(),
        phase: (rng.unit(), rng.unit()),
        seed: rng.next_u64(),
        a,
        b,
    }
}

// ANCHOR: class_paint
/// The class's texture and colours with jitter: hue +-0.06, saturation x0.75..1.15,
/// value x0.7..1.15, texture scale x0.8..1.25, random texture orientation and phase.
fn class_paint(rng: &mut Rng, class: ClassId) -> Paint {
    let style = class_style(class);
    let dh = rng.range(-0.06, 0.06);
    let mut jitter = |c: [f32; 3]| {
        hsv(
            c[0] + dh,
            c[1] * rng.range(0.75, 1.15),
            c[2] * rng.range(0.7, 1.15),
        )
    };
    let (a, b) = (jitter(style.primary), jitter(style.secondary));
    random_paint(rng, style.texture, a, b)
}
// ANCHOR_END: class_paint

fn random_color(rng: &mut Rng) -> [f32; 3] {
    hsv(rng.unit(), rng.range(0.05, 0.7), rng.range(0.2, 0.9))
}

fn random_texture(rng: &mut Rng) -> Texture {
    let f = rng.range(1.0, 4.0);
    match rng.below(6) {
        0 => Texture::Stripes(f),
        1 => Texture::Checker(f),
        2 => Texture::Gradient,
        3 => Texture::Grid(f),
        4 => Texture::Waves(f),
        _ => Texture::Blotches(f),
    }
}

/// A random texture in two random colours.
fn random_look(rng: &mut Rng) -> Paint {
    let texture = random_texture(rng);
    let (a, b) = (random_color(rng), random_color(rng));
    random_paint(rng, texture, a, b)
}

/// A generated image with its class-id mask (0 background, 1..=20 classes, 255 ignore band).
#[derive(Clone, Debug)]
pub struct Scene {
    pub image: Image,
    pub labels: Mask,
}

/// The ignore band's half-width in pixels: 1 px at 96 px, 4 px at 417 px (PASCAL's band is
/// about 5 px on 500 px images).
pub fn ignore_band(size: usize) -> usize {
    (size / 96).max(1)
}

// ANCHOR: scene
/// Renders image `index` of `class` in `split`'s pool at `size` x `size` pixels. The scene depends
/// on `(class, split, index)` only; `size` only sets the resolution.
///
/// Layers, bottom to top: a textured background (two random colours, a random texture), 3-7
/// clutter blobs and strokes (half of them wearing another class's texture and colours, so that
/// texture alone does not identify a class), then the main object, sometimes a second instance
/// of its class, and 1-3 distractor objects of other classes in random depth order. Lighting
/// varies across the image and every pixel gets noise.
pub fn render_scene(class: ClassId, split: Split, index: u64, size: usize) -> Scene {
    let mut rng = Rng::derive(GENERATOR_VERSION, &[class as u64, split.key(), index]);
    let s = size as f32;
    let mut objects: Vec<Placed> = Vec::new();
    let place = |rng: &mut Rng, shape: Shape, label: ClassId, paint: Paint, r: f32, margin: f32| {
        let angle = rng.range(0.0, std::f32::consts::TAU);
        Placed {
            shape,
            label,
            cx: rng.range(margin, s - margin),
            cy: rng.range(margin, s - margin),
            radius: r,
            aspect: rng.range(-0.2, 0.2).exp(),
            cos: angle.cos(),
            sin: angle.sin(),
            paint,
        }
    };

    // Background.
    let bg = random_look(&mut rng);
    let bg_freq = rng.range(0.6, 1.6);

    // Clutter (label 0).
    for _ in 0..3 + rng.below(5) {
        let paint = if rng.chance(0.5) {
            let other = 1 + rng.below(20) as ClassId;
            class_paint(&mut rng, other)
        } else {
            random_look(&mut rng)
        };
        let shape = if rng.chance(0.25) {
            Shape::Stroke
        } else {
            Shape::Blob {
                a2: rng.range(0.0, 0.3),
                p2: rng.range(0.0, 6.3),
                a3: rng.range(0.0, 0.2),
                p3: rng.range(0.0, 6.3),
            }
        };
        let r = s * rng.range(0.07, 0.2);
        objects.push(place(&mut rng, shape, 0, paint, r, 0.0));
    }
    let first_object = objects.len();

    // The main object, maybe a second instance, and distractors of other classes.
    let style = class_style(class);
    let main_paint = class_paint(&mut rng, class);
    let main_r = s * rng.range(0.18, 0.32);
    let mut things = vec![place(
        &mut rng,
        style.shape,
        class,
        main_paint,
        main_r,
        main_r * 0.7,
    )];
    if rng.chance(0.15) {
        let p = class_paint(&mut rng, class);
        let r = s * rng.range(0.1, 0.18);
        things.push(place(&mut rng, style.shape, class, p, r, r * 0.5));
    }
    for _ in 0..1 + rng.below(3) {
        let mut other = 1 + rng.below(19) as ClassId;
        if other >= class {
            other += 1;
        }
        let p = class_paint(&mut rng, other);
        let r = s * rng.range(0.1, 0.22);
        things.push(place(&mut rng, class_style(other).shape, other, p, r, 0.0));
    }
    rng.shuffle(&mut things);
    objects.extend(things);

    // Which object is on top at every pixel (0 = background, k = objects[k - 1]).
    let mut top = paint_order(&objects, size);
    let main_pos = objects
        .iter()
        .rposition(|o| o.label == class)
        .unwrap_or(first_object);
    let visible = top
        .iter()
        .filter(|&&t| t > 0 && objects[t as usize - 1].label == class)
        .count();
    let alone = objects[main_pos];
    let area = paint_order(std::slice::from_ref(&alone), size)
        .iter()
        .filter(|&&t| t > 0)
        .count();
    if visible * 2 < area || visible < size * size / 64 {
        // Too occluded: bring the main object to the front.
        let m = objects.remove(main_pos);
        objects.push(m);
        top = paint_order(&objects, size);
    }

    // Colours, lighting and noise.
    let light_angle = rng.range(0.0, std::f32::consts::TAU);
    let (lc, ls, gain) = (light_angle.cos(), light_angle.sin(), rng.range(0.0, 0.35));
    let noise_amp = rng.range(4.0, 12.0);
    let mut image = Image::zeros(size, size);
    let plane = size * size;
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let (nx, ny) = (2.0 * px / s - 1.0, 2.0 * py / s - 1.0);
            let rgb = match top[i] {
                0 => bg.color(nx * bg_freq, ny * bg_freq),
                t => {
                    let o = &objects[t as usize - 1];
                    let (u, v) = o.local(px, py);
                    o.paint.color(u, v)
                }
            };
            let light = 1.0 + gain * 0.5 * (nx * lc + ny * ls);
            let n = rng.next_u64();
            for (c, value) in rgb.iter().enumerate() {
                let bits = ((n >> (21 * c)) & 0x1F_FFFF) as f32 * (1.0 / 0x1F_FFFF as f32);
                let noisy = value * light + noise_amp * (2.0 * bits - 1.0);
                image.data[c * plane + i] = noisy.clamp(0.0, 255.0);
            }
        }
    }

    let labels: Vec<u8> = top
        .iter()
        .map(|&t| {
            if t == 0 {
                0
            } else {
                objects[t as usize - 1].label
            }
        })
        .collect();
    let labels = add_ignore_band(
        Mask {
            height: size,
            width: size,
            data: labels,
        },
        ignore_band(size),
    );
    Scene { image, labels }
}
// ANCHOR_END: scene

fn paint_order(objects: &[Placed], size: usize) -> Vec<u8> {
    let mut top = vec![0u8; size * size];
    for (k, o) in objects.iter().enumerate() {
        let (x0, y0, x1, y1) = o.bounds(size);
        for y in y0..y1 {
            for x in x0..x1 {
                let (u, v) = o.local(x as f32 + 0.5, y as f32 + 0.5);
                if o.shape.contains(u, v) {
                    top[y * size + x] = (k + 1) as u8;
                }
            }
        }
    }
    top
}

// ANCHOR: ignore_band
/// Marks with [`IGNORE`] every pixel whose `(2r+1)^2` neighbourhood holds more than one label:
/// a band of width `2r` (about) on every border between labels, as PASCAL's annotation has.
pub fn add_ignore_band(mut labels: Mask, r: usize) -> Mask {
    let (h, w) = labels.size();
    let window = |line: &[u8], out_min: &mut [u8], out_max: &mut [u8]| {
        let n = line.len();
        for i in 0..n {
            let (a, b) = (i.saturating_sub(r), (i + r + 1).min(n));
            let seg = &line[a..b];
            out_min[i] = *seg.iter().min().unwrap_or(&0);
            out_max[i] = *seg.iter().max().unwrap_or(&0);
        }
    };
    let (mut hmin, mut hmax) = (vec![0u8; h * w], vec![0u8; h * w]);
    for y in 0..h {
        let row = &labels.data[y * w..(y + 1) * w];
        let (mn, mx) = (&mut hmin[y * w..(y + 1) * w], &mut hmax[y * w..(y + 1) * w]);
        window(row, mn, mx);
    }
    let (mut col_min, mut col_max) = (vec![0u8; h], vec![0u8; h]);
    let (mut cmin, mut cmax, mut dummy) = (vec![0u8; h], vec![0u8; h], vec![0u8; h]);
    for x in 0..w {
        for y in 0..h {
            col_min[y] = hmin[y * w + x];
            col_max[y] = hmax[y * w + x];
        }
        window(&col_min, &mut cmin, &mut dummy);
        window(&col_max, &mut dummy, &mut cmax);
        for y in 0..h {
            if cmin[y] != cmax[y] {
                labels.data[y * w + x] = IGNORE;
            }
        }
    }
    labels
}
// ANCHOR_END: ignore_band

/// Settings of synthetic-5i.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyntheticConfig {
    /// Side of the generated (square) images in pixels.
    pub size: usize,
    /// How many distinct images each class has in the train pool and in the test pool.
    pub train_images_per_class: usize,
    pub test_images_per_class: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            size: 96,
            train_images_per_class: 10_000,
            test_images_per_class: 1_000,
        }
    }
}

/// The synthetic-5i benchmark.
#[derive(Clone, Debug, Default)]
pub struct Synthetic5i {
    pub config: SyntheticConfig,
}

impl Synthetic5i {
    pub fn new(config: SyntheticConfig) -> Self {
        Synthetic5i { config }
    }

    /// With the default pools at `size` pixels.
    pub fn with_size(size: usize) -> Self {
        Synthetic5i {
            config: SyntheticConfig {
                size,
                ..SyntheticConfig::default()
            },
        }
    }

    fn pool(&self, split: Split) -> usize {
        match split {
            Split::Train => self.config.train_images_per_class,
            Split::Test => self.config.test_images_per_class,
        }
    }

    /// The id of image `index` of `class` in `split`'s pool, e.g. `test-c03-00042`.
    pub fn image_id(class: ClassId, split: Split, index: usize) -> String {
        format!("{}-c{:02}-{:05}", split.name(), class, index)
    }
}

impl Benchmark for Synthetic5i {
    fn name(&self) -> String {
        SYNTHETIC_NAME.to_string()
    }

    fn num_classes(&self) -> usize {
        SYNTHETIC_CLASSES.len()
    }

    fn class_name(&self, class: ClassId) -> String {
        super::sampler::class_name_in(&SYNTHETIC_CLASSES, class)
    }

    fn classes(&self, fold: usize, split: Split) -> Vec<ClassId> {
        split_classes(SYNTHETIC_CLASSES.len(), SYNTHETIC_FOLDS, fold, split)
    }

    fn plan(&self, spec: &EpisodeSpec, index: u64) -> Result<EpisodePlan, DataError> {
        validate_spec(spec)?;
        let pool = self.pool(spec.split);
        if pool < spec.shots + 1 {
            return Err(DataError::InvalidSpec(format!(
                "synthetic-5i {} pool has {pool} images per class, fewer than shots + 1",
                spec.split
            )));
        }
        // Same draws as `sampler::plan_episode`: a class, then K + 1 distinct images.
        let classes = self.classes(spec.fold, spec.split);
        let mut rng = episode_rng(spec, index);
        let class_id = classes[rng.below(classes.len())];
        let picks = rng.distinct(pool, spec.shots + 1);
        let to_ref = |i: usize| ImageRef {
            id: Self::image_id(class_id, spec.split, i),
            key: i,
        };
        Ok(EpisodePlan {
            spec: *spec,
            index,
            class_id,
            query: to_ref(picks[0]),
            supports: picks[1..].iter().map(|&i| to_ref(i)).collect(),
        })
    }

    fn load(&self, plan: &EpisodePlan) -> Result<Episode, DataError> {
        let size = self.config.size;
        if size < 8 {
            return Err(DataError::InvalidSpec(
                "synthetic-5i images must be at least 8 pixels".into(),
            ));
        }
        let shot = |r: &ImageRef| {
            let scene = render_scene(plan.class_id, plan.spec.split, r.key as u64, size);
            Shot {
                id: r.id.clone(),
                image: scene.image,
                mask: scene.labels.binary_for(plan.class_id),
                original_size: (size, size),
            }
        };
        Ok(Episode {
            benchmark: self.name(),
            fold: plan.spec.fold,
            split: plan.spec.split,
            index: plan.index,
            class_id: plan.class_id,
            class_name: self.class_name(plan.class_id),
            supports: plan.supports.iter().map(shot).collect(),
            query: shot(&plan.query),
            query_original_mask: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_covers_a_reasonable_area() {
        for c in 1..=20u8 {
            let shape = class_style(c).shape;
            let n = 200;
            let inside = (0..n * n)
                .filter(|i| {
                    let (u, v) = (
                        2.0 * (i % n) as f32 / n as f32 - 1.0,
                        2.0 * (i / n) as f32 / n as f32 - 1.0,
                    );
                    shape.contains(u, v)
                })
                .count() as f32
                / (n * n) as f32;
            assert!((0.12..0.85).contains(&inside), "class {c} covers {inside}");
        }
    }

    #[test]
    fn ignore_band_marks_borders_only() {
        let mut m = Mask::filled(10, 10, 0);
        for y in 3..7 {
            for x in 3..7 {
                m.data[y * 10 + x] = 4;
            }
        }
        let b = add_ignore_band(m, 1);
        assert_eq!(b.data[0], 0);
        assert_eq!(b.data[5 * 10 + 5], 4);
        assert_eq!(b.data[3 * 10 + 3], IGNORE);
        assert_eq!(b.data[2 * 10 + 2], IGNORE);
        assert_eq!(b.data[10 + 1], 0);
    }
}
