//! PASCAL-5i: a tiny VOC tree written by the test, both protocols, golden episodes, bad input.

use std::path::{Path, PathBuf};

use srpnet::data::images::{save_mask, save_palette_mask, save_rgb};
use srpnet::data::pascal::{OSLSM_MIN_PIXELS, Pascal5i, PascalConfig, PascalProtocol};
use srpnet::data::{
    Benchmark, DataError, EpisodeSpec, Episodes, IGNORE, Image, Mask, Split, Transform,
};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srpnet-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A mask of `h x w`: class `c` on the left `cols` columns, a 255 column after it, 0 elsewhere.
fn mask(h: usize, w: usize, c: u8, cols: usize) -> Mask {
    let mut m = Mask::filled(h, w, 0);
    for y in 0..h {
        for x in 0..w {
            m.data[y * w + x] = if x < cols {
                c
            } else if x == cols {
                IGNORE
            } else {
                0
            };
        }
    }
    m
}

fn image(voc: &Path, name: &str, h: usize, w: usize) {
    let rgb: Vec<u8> = (0..h * w * 3).map(|i| (i * 13 % 256) as u8).collect();
    save_rgb(
        &voc.join("JPEGImages").join(format!("{name}.jpg")),
        &Image::from_rgb8(h, w, &rgb),
    )
    .unwrap();
}

/// Three 12 x 16 images per class (`c{cc}_{k}`); k = 2 goes to val. Returns the VOC folder.
fn voc_tree(name: &str, per_class: usize) -> (PathBuf, PathBuf) {
    let root = temp_dir(name);
    let voc = root.join("VOCdevkit/VOC2012");
    for d in [
        "JPEGImages",
        "SegmentationClassAug",
        "SegmentationClass",
        "ImageSets/Segmentation",
    ] {
        std::fs::create_dir_all(voc.join(d)).unwrap();
    }
    let (mut trainaug, mut val) = (vec![], vec![]);
    for c in 1..=20u8 {
        for k in 0..per_class {
            let n = format!("c{c:02}_{k}");
            image(&voc, &n, 12, 16);
            save_mask(
                &voc.join(format!("SegmentationClassAug/{n}.png")),
                &mask(12, 16, c, 4 + k),
            )
            .unwrap();
            trainaug.push(n.clone());
            if k == 2 {
                val.push(n);
            }
        }
    }
    write_list(&voc, "trainaug.txt", &trainaug);
    write_list(&voc, "val.txt", &val);
    (root, voc)
}

fn write_list(voc: &Path, file: &str, names: &[String]) {
    std::fs::write(
        voc.join("ImageSets/Segmentation").join(file),
        names.join("\n") + "\n",
    )
    .unwrap();
}

fn open(root: &Path, protocol: PascalProtocol) -> Result<Pascal5i, DataError> {
    Pascal5i::open(&PascalConfig {
        root: root.to_path_buf(),
        protocol,
        min_object_pixels: None,
    })
}

fn golden(bench: &Pascal5i, split: Split) -> Vec<String> {
    (0..4)
        .flat_map(|fold| (0..2).map(move |i| (fold, i)))
        .map(|(fold, i)| {
            let p = bench
                .plan(
                    &EpisodeSpec {
                        fold,
                        split,
                        shots: 1,
                        seed: 0,
                    },
                    i,
                )
                .unwrap();
            format!(
                "{}:{}>{}",
                p.class_id,
                p.support_ids().join(","),
                p.query.id
            )
        })
        .collect()
}

#[test]
fn panet_protocol_fixture_and_golden_episodes() {
    let (root, _) = voc_tree("voc-panet", 3);
    let bench = open(&root, PascalProtocol::Panet).unwrap();
    assert!(bench.skipped().is_empty(), "{}", bench.skipped());
    assert_eq!(bench.name(), "pascal-5i/panet");
    assert_eq!(bench.records.len(), 60);
    assert_eq!(
        bench.class_counts(0, Split::Test),
        vec![(1, 3), (2, 3), (3, 3), (4, 3), (5, 3)]
    );
    let spec = EpisodeSpec {
        fold: 2,
        split: Split::Test,
        shots: 2,
        seed: 5,
    };
    let ep = bench.episode(&spec, 0).unwrap();
    assert!((11..=15).contains(&ep.class_id));
    assert_eq!(
        ep.class_name,
        srpnet::data::folds::PASCAL_CLASSES[ep.class_id as usize - 1]
    );
    for s in ep.supports.iter().chain([&ep.query]) {
        assert_eq!(s.original_size, (12, 16));
        assert!(s.mask.count(1) >= 4 * 12);
        assert_eq!(s.mask.count(IGNORE), 12);
    }
    assert_eq!(
        golden(&bench, Split::Test),
        GOLDEN_PANET_TEST,
        "golden episodes changed"
    );
    let train = bench
        .plan(
            &EpisodeSpec {
                fold: 0,
                split: Split::Train,
                shots: 1,
                seed: 0,
            },
            0,
        )
        .unwrap();
    assert!(train.class_id > 5);
}

const GOLDEN_PANET_TEST: [&str; 8] = [
    "4:c04_1>c04_0",
    "2:c02_0>c02_1",
    "7:c07_0>c07_1",
    "7:c07_1>c07_0",
    "13:c13_1>c13_0",
    "12:c12_0>c12_1",
    "19:c19_1>c19_2",
    "17:c17_0>c17_1",
];

#[test]
fn oslsm_protocol_uses_val_and_the_small_object_filter() {
    let (root, voc) = voc_tree("voc-oslsm", 3);
    let bench = open(&root, PascalProtocol::Oslsm).unwrap();
    // Train list = trainaug without val; test list = val.
    assert_eq!(bench.list_lengths, (40, 20));
    // 12 x 16 images are far below 2048 pixels: every class is empty after filtering.
    assert_eq!(bench.min_object_pixels, OSLSM_MIN_PIXELS);
    let err = bench
        .plan(
            &EpisodeSpec {
                fold: 0,
                split: Split::Test,
                shots: 1,
                seed: 0,
            },
            0,
        )
        .unwrap_err();
    assert!(matches!(err, DataError::EmptyClass { .. }), "{err}");
    assert!(
        err.to_string().contains("aeroplane") && err.to_string().contains("--min-object-pixels")
    );

    // Large objects pass the filter; add two 48 x 64 val images of class 1 with 2100+ pixels.
    let mut val: Vec<String> = (1..=20u8).map(|c| format!("c{c:02}_2")).collect();
    for k in 0..2 {
        let n = format!("big_{k}");
        image(&voc, &n, 48, 64);
        save_mask(
            &voc.join(format!("SegmentationClassAug/{n}.png")),
            &mask(48, 64, 1, 45 + k),
        )
        .unwrap();
        val.push(n);
    }
    write_list(&voc, "val.txt", &val);
    let bench = open(&root, PascalProtocol::Oslsm).unwrap();
    assert_eq!(bench.class_counts(0, Split::Test)[0], (1, 2));
    assert_eq!(bench.class_counts(0, Split::Test)[1], (2, 0));
    let relaxed = Pascal5i::open(&PascalConfig {
        root,
        protocol: PascalProtocol::Oslsm,
        min_object_pixels: Some(1),
    })
    .unwrap();
    assert_eq!(relaxed.class_counts(0, Split::Test)[0], (1, 3));
    // Val holds one image of class 2: too few for a 1-shot episode, and the error says which.
    let err = relaxed
        .plan(
            &EpisodeSpec {
                fold: 0,
                split: Split::Test,
                shots: 1,
                seed: 0,
            },
            0,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            DataError::EmptyClass {
                class: 2,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_input_is_skipped_counted_and_named() {
    let (root, voc) = voc_tree("voc-bad", 3);
    let mut names: Vec<String> =
        std::fs::read_to_string(voc.join("ImageSets/Segmentation/trainaug.txt"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
    // A list entry without its image, one without its mask.
    save_mask(
        &voc.join("SegmentationClassAug/no_image.png"),
        &mask(12, 16, 1, 4),
    )
    .unwrap();
    image(&voc, "no_mask", 12, 16);
    // A non-image file and a truncated JPEG.
    std::fs::write(voc.join("JPEGImages/not_image.jpg"), "hello").unwrap();
    save_mask(
        &voc.join("SegmentationClassAug/not_image.png"),
        &mask(12, 16, 1, 4),
    )
    .unwrap();
    image(&voc, "truncated", 12, 16);
    let bytes = std::fs::read(voc.join("JPEGImages/truncated.jpg")).unwrap();
    std::fs::write(
        voc.join("JPEGImages/truncated.jpg"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    save_mask(
        &voc.join("SegmentationClassAug/truncated.png"),
        &mask(12, 16, 1, 4),
    )
    .unwrap();
    // A mask whose size differs from its image; a class id outside 0..=20.
    image(&voc, "wrong_size", 12, 16);
    save_mask(
        &voc.join("SegmentationClassAug/wrong_size.png"),
        &mask(10, 10, 1, 4),
    )
    .unwrap();
    image(&voc, "bad_class", 12, 16);
    save_mask(
        &voc.join("SegmentationClassAug/bad_class.png"),
        &mask(12, 16, 33, 4),
    )
    .unwrap();
    // A VOC palette mask (SegmentationClass) is fine.
    image(&voc, "palette", 12, 16);
    save_palette_mask(
        &voc.join("SegmentationClass/palette.png"),
        &mask(12, 16, 15, 6),
    )
    .unwrap();
    for n in [
        "no_image",
        "no_mask",
        "not_image",
        "truncated",
        "wrong_size",
        "bad_class",
        "palette",
    ] {
        names.push(n.to_string());
    }
    write_list(&voc, "trainaug.txt", &names);

    let bench = open(&root, PascalProtocol::Panet).unwrap();
    let skipped = bench.skipped();
    assert_eq!(skipped.len(), 6, "{skipped}");
    let text = skipped.to_string();
    for n in [
        "no_image.jpg",
        "no_mask.png",
        "not_image.jpg",
        "truncated.jpg",
        "wrong_size.png",
        "bad_class.png",
    ] {
        assert!(text.contains(n), "{n} not reported in\n{text}");
    }
    assert!(text.contains("class id 33") && text.contains("10x10"));
    assert_eq!(
        bench.class_counts(2, Split::Test)[4],
        (15, 4),
        "the palette mask counts for person"
    );

    // A file broken after opening: the episode stream skips it, counts it and goes on.
    std::fs::write(voc.join("JPEGImages/c01_0.jpg"), "broken").unwrap();
    let spec = EpisodeSpec {
        fold: 0,
        split: Split::Test,
        shots: 1,
        seed: 0,
    };
    let mut eps = Episodes::new(&bench, spec, Transform::default());
    let got: Vec<_> = eps.by_ref().take(30).collect();
    assert!(got.iter().all(Result::is_ok));
    assert!(!eps.skipped.is_empty());
    assert!(eps.skipped.skipped[0].contains("c01_0.jpg"));
}

#[test]
fn missing_root_and_split_files_are_errors_with_a_fix() {
    let err = open(Path::new("/nonexistent/srpnet-data"), PascalProtocol::Panet).unwrap_err();
    assert!(matches!(err, DataError::MissingRoot { .. }), "{err}");
    assert!(err.to_string().contains("SRPNET_DATA"));
    let (root, voc) = voc_tree("voc-nolist", 3);
    std::fs::remove_file(voc.join("ImageSets/Segmentation/val.txt")).unwrap();
    assert!(open(&root, PascalProtocol::Panet).is_ok());
    let err = open(&root, PascalProtocol::Oslsm).unwrap_err();
    assert!(matches!(err, DataError::MissingSplitFile { .. }), "{err}");
    assert!(err.to_string().contains("val.txt"));
    // An empty class: one image of class 3 cannot make a 1-shot episode.
    let (root, voc) = voc_tree("voc-empty", 3);
    let names: Vec<String> =
        std::fs::read_to_string(voc.join("ImageSets/Segmentation/trainaug.txt"))
            .unwrap()
            .lines()
            .filter(|n| !n.starts_with("c03_1") && !n.starts_with("c03_2"))
            .map(String::from)
            .collect();
    write_list(&voc, "trainaug.txt", &names);
    let bench = open(&root, PascalProtocol::Panet).unwrap();
    let err = bench
        .plan(
            &EpisodeSpec {
                fold: 0,
                split: Split::Test,
                shots: 1,
                seed: 0,
            },
            0,
        )
        .unwrap_err();
    assert!(
        matches!(err, DataError::EmptyClass { class: 3, .. }),
        "{err}"
    );
    assert!(
        bench
            .plan(
                &EpisodeSpec {
                    fold: 1,
                    split: Split::Test,
                    shots: 1,
                    seed: 0
                },
                0
            )
            .is_ok()
    );
}
