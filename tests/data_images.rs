//! Own images (the foreground rule for masks), image decoding errors, and transforms.

use std::path::{Path, PathBuf};

use srpnet::data::images::{
    OwnImages, load_binary_mask, load_image, save_mask, save_palette_mask, save_rgb, voc_color,
};
use srpnet::data::rng::Rng;
use srpnet::data::synthetic::Synthetic5i;
use srpnet::data::transforms::{normalize, resize_bilinear, resize_nearest};
use srpnet::data::{
    Benchmark, DataError, EpisodeSpec, IGNORE, Image, Mask, Normalization, Split, Transform,
};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srpnet-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn gray(path: &Path, w: usize, h: usize, f: impl Fn(usize, usize) -> u8) {
    let data = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| f(x, y))
        .collect();
    save_mask(
        path,
        &Mask {
            height: h,
            width: w,
            data,
        },
    )
    .expect("write mask");
}

fn rgb_image(path: &Path, w: usize, h: usize) {
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
    save_rgb(path, &Image::from_rgb8(h, w, &rgb)).expect("write image");
}

#[test]
fn own_mask_rule_binary_forms() {
    let d = temp_dir("own-rule");
    // 0/255: 255 is foreground.
    let p = d.join("a.png");
    gray(&p, 4, 2, |x, _| if x < 2 { 0 } else { 255 });
    assert_eq!(
        load_binary_mask(&p, None).unwrap().data,
        vec![0, 0, 1, 1, 0, 0, 1, 1]
    );
    // 0/1: 1 is foreground.
    gray(&p, 4, 1, |x, _| (x % 2) as u8);
    assert_eq!(load_binary_mask(&p, None).unwrap().data, vec![0, 1, 0, 1]);
    // 0/1/255: 255 is ignored.
    gray(&p, 3, 1, |x, _| [0, 1, 255][x]);
    assert_eq!(load_binary_mask(&p, None).unwrap().data, vec![0, 1, IGNORE]);
    // A single class id with a VOC ignore band.
    gray(&p, 3, 1, |x, _| [0, 15, 255][x]);
    assert_eq!(load_binary_mask(&p, None).unwrap().data, vec![0, 1, IGNORE]);
    // Several classes: ambiguous without --class-id, fine with it.
    gray(&p, 4, 1, |x, _| [0, 15, 3, 255][x]);
    let err = load_binary_mask(&p, None).unwrap_err();
    assert!(matches!(err, DataError::AmbiguousMask { .. }), "{err}");
    assert!(err.to_string().contains("a.png") && err.to_string().contains("--class-id"));
    assert_eq!(
        load_binary_mask(&p, Some(3)).unwrap().data,
        vec![0, 0, 1, IGNORE]
    );
}

#[test]
fn own_mask_rule_palette_colours() {
    let d = temp_dir("own-palette");
    let p = d.join("pal.png");
    let m = Mask {
        height: 1,
        width: 4,
        data: vec![0, 12, 12, 255],
    };
    save_palette_mask(&p, &m).unwrap();
    assert_eq!(
        load_binary_mask(&p, None).unwrap().data,
        vec![0, 1, 1, IGNORE]
    );
    let m = Mask {
        height: 1,
        width: 4,
        data: vec![0, 12, 8, 255],
    };
    save_palette_mask(&p, &m).unwrap();
    assert!(load_binary_mask(&p, None).is_err());
    assert_eq!(
        load_binary_mask(&p, Some(8)).unwrap().data,
        vec![0, 0, 1, IGNORE]
    );
    assert_eq!(voc_color(12), [64, 0, 128]);
}

#[test]
fn own_episode_from_paths_and_its_errors() {
    let d = temp_dir("own-episode");
    rgb_image(&d.join("s.png"), 6, 4);
    gray(
        &d.join("s_mask.png"),
        6,
        4,
        |x, _| if x > 2 { 255 } else { 0 },
    );
    rgb_image(&d.join("q.jpg"), 5, 5);
    let own = OwnImages {
        supports: vec![(d.join("s.png"), d.join("s_mask.png"))],
        queries: vec![(d.join("q.jpg"), None)],
        class_id: None,
        class_name: "thing".into(),
    };
    let eps = own.episodes().unwrap();
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0].supports[0].mask.count(1), 12);
    assert_eq!(eps[0].query.image.size(), (5, 5));
    assert!(eps[0].query.mask.data.iter().all(|&v| v == IGNORE));

    // A mask whose size differs from its image.
    gray(&d.join("bad_mask.png"), 3, 3, |_, _| 255);
    let own2 = OwnImages {
        supports: vec![(d.join("s.png"), d.join("bad_mask.png"))],
        ..own.clone()
    };
    let err = own2.episodes().unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("bad_mask.png"));

    // An empty support mask.
    gray(&d.join("empty.png"), 6, 4, |_, _| 0);
    let own3 = OwnImages {
        supports: vec![(d.join("s.png"), d.join("empty.png"))],
        ..own
    };
    assert!(own3.episodes().is_err());
}

#[test]
fn truncated_missing_and_non_images_are_errors_naming_the_file() {
    let d = temp_dir("bad-images");
    let p = d.join("full.png");
    rgb_image(&p, 32, 32);
    let bytes = std::fs::read(&p).unwrap();
    let t = d.join("truncated.png");
    std::fs::write(&t, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_image(&t).unwrap_err();
    assert!(err.to_string().contains("truncated.png"), "{err}");

    let j = d.join("full.jpg");
    rgb_image(&j, 64, 64);
    let bytes = std::fs::read(&j).unwrap();
    let tj = d.join("truncated.jpg");
    std::fs::write(&tj, &bytes[..bytes.len() / 3]).unwrap();
    let err = load_image(&tj).unwrap_err();
    assert!(err.to_string().contains("truncated.jpg"), "{err}");

    let n = d.join("notes.jpg");
    std::fs::write(&n, "not an image").unwrap();
    assert!(
        load_image(&n)
            .unwrap_err()
            .to_string()
            .contains("notes.jpg")
    );
    assert!(
        load_image(&d.join("absent.jpg"))
            .unwrap_err()
            .to_string()
            .contains("absent.jpg")
    );
}

#[test]
fn transforms_resize_flip_normalise() {
    let bench = Synthetic5i::with_size(80);
    let spec = EpisodeSpec {
        fold: 1,
        split: Split::Test,
        shots: 2,
        seed: 3,
    };
    let ep = bench.episode(&spec, 0).unwrap();
    let t = Transform::eval_original_size(65, Normalization::Torchvision);
    let out = t.apply(ep.clone(), &mut Rng::new(0));
    for s in out.supports.iter().chain([&out.query]) {
        assert_eq!(s.image.size(), (65, 65));
        assert_eq!(s.mask.size(), (65, 65));
        assert_eq!(s.image.normalization, Normalization::Torchvision);
        assert!(s.mask.data.iter().all(|&v| v <= 1 || v == IGNORE));
        assert_eq!(s.original_size, (80, 80));
    }
    assert_eq!(out.query_original_mask.as_ref().unwrap(), &ep.query.mask);

    // Nearest keeps only existing labels; bilinear stays in range.
    let r = resize_nearest(&ep.query.mask, 129, 129);
    assert!(r.data.iter().all(|v| ep.query.mask.data.contains(v)));
    let img = resize_bilinear(&ep.query.image, 33, 47);
    assert!(img.data.iter().all(|&v| (0.0..=255.0).contains(&v)));

    // Training flips are decided by the rng: the same seed gives the same flips.
    let t = Transform::train(80, Normalization::None);
    let a = t.apply(ep.clone(), &mut Rng::new(9));
    let b = t.apply(ep.clone(), &mut Rng::new(9));
    assert_eq!(a.query.image, b.query.image);
    let flipped: Vec<bool> = (0..16)
        .map(|s| t.apply(ep.clone(), &mut Rng::new(s)).query.mask != ep.query.mask)
        .collect();
    assert!(flipped.contains(&true) && flipped.contains(&false));

    // Caffe: BGR minus mean.
    let px = Image::from_rgb8(1, 1, &[200, 100, 50]);
    assert_eq!(
        normalize(px, Normalization::CaffeBgr).data,
        vec![50.0 - 103.939, 100.0 - 116.779, 200.0 - 123.68]
    );
}
