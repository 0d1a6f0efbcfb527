//! `srpnet data prepare pascal` on tiny archives built here: a VOC2012-shaped tar and an
//! SBD-shaped tgz whose `cls/*.mat` are level-5 MAT files written by this test. The converted
//! masks are compared pixel for pixel with what was put in; truncated archives and a corrupt
//! .mat give errors naming the member; a rerun reuses what is complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use srpnet::data::images::{load_class_map, save_palette_mask, save_rgb};
use srpnet::data::mat::read_uint8_field;
use srpnet::data::pascal::{Pascal5i, PascalConfig, PascalProtocol, read_list};
use srpnet::data::prepare::prepare_pascal;
use srpnet::data::{DataError, IGNORE, Image, Mask};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srpnet-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

// ---- a level-5 MAT writer: just what SBD's cls/*.mat hold ----

/// A data element: tag (type, bytes) and data padded to 8 bytes.
fn element(kind: u32, data: &[u8]) -> Vec<u8> {
    let mut out = [kind.to_le_bytes(), (data.len() as u32).to_le_bytes()].concat();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(8) * 8, 0);
    out
}

/// A `miMATRIX` of `class` with dimensions, name and the elements that follow them.
fn matrix(class: u8, dims: &[i32], name: &str, body: &[u8]) -> Vec<u8> {
    let dims: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
    let mut data = element(6, &[class, 0, 0, 0, 0, 0, 0, 0]);
    data.extend(element(5, &dims));
    data.extend(element(1, name.as_bytes()));
    data.extend_from_slice(body);
    element(14, &data)
}

/// `GTcls` as SBD stores it: a 1x1 struct with `Boundaries` (a cell), `Segmentation` (uint8,
/// column-major) and `CategoriesPresent`; the variable compressed or not.
fn sbd_mat(mask: &Mask, compressed: bool) -> Vec<u8> {
    let (h, w) = (mask.height, mask.width);
    let column_major: Vec<u8> = (0..h * w).map(|i| mask.data[(i % h) * w + i / h]).collect();
    let boundaries = matrix(1, &[1, 1], "", &matrix(6, &[0, 0], "", &element(9, &[])));
    let segmentation = matrix(9, &[h as i32, w as i32], "", &element(2, &column_major));
    let categories = matrix(9, &[1, 1], "", &element(2, &[mask.data[0]]));
    let mut body = Vec::new();
    // Field-name length 32, as a small element (type 5, 4 bytes, inside the tag).
    body.extend([5, 0, 4, 0]);
    body.extend(32i32.to_le_bytes());
    let mut names = Vec::new();
    for n in ["Boundaries", "Segmentation", "CategoriesPresent"] {
        let mut b = n.as_bytes().to_vec();
        b.resize(32, 0);
        names.extend(b);
    }
    body.extend(element(1, &names));
    body.extend(boundaries);
    body.extend(segmentation);
    body.extend(categories);
    let variable = matrix(2, &[1, 1], "GTcls", &body);
    let mut file =
        format!("{:<116}", "MATLAB 5.0 MAT-file, written by srpnet's tests").into_bytes();
    file.extend([0u8; 8]);
    file.extend(0x0100u16.to_le_bytes());
    file.extend(b"IM");
    if compressed {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&variable).unwrap();
        let z = z.finish().unwrap();
        file.extend(15u32.to_le_bytes());
        file.extend((z.len() as u32).to_le_bytes());
        file.extend(z);
    } else {
        file.extend(variable);
    }
    file
}

// ---- the fixture: four images, VOC masks for two, SBD masks for three ----

/// Class `c` in a block whose place depends on `seed`; with `boundary`, a 255 ring around it.
fn mask(h: usize, w: usize, c: u8, seed: usize, boundary: bool) -> Mask {
    let mut m = Mask::filled(h, w, 0);
    let (y0, x0) = (seed % 4, (seed * 3) % 5);
    for y in 0..h {
        for x in 0..w {
            let inside = (y0..y0 + 5).contains(&y) && (x0..x0 + 7).contains(&x);
            let ring = (y0.saturating_sub(1)..y0 + 6).contains(&y)
                && (x0.saturating_sub(1)..x0 + 8).contains(&x);
            m.data[y * w + x] = if inside {
                c
            } else if boundary && ring {
                IGNORE
            } else {
                0
            };
        }
    }
    m
}

fn jpeg_bytes(dir: &Path, h: usize, w: usize, seed: usize) -> Vec<u8> {
    let rgb: Vec<u8> = (0..h * w * 3)
        .map(|i| ((i * 7 + seed * 31) % 256) as u8)
        .collect();
    let p = dir.join("x.jpg");
    save_rgb(&p, &Image::from_rgb8(h, w, &rgb)).unwrap();
    std::fs::read(p).unwrap()
}

fn png_bytes(dir: &Path, m: &Mask) -> Vec<u8> {
    let p = dir.join("x.png");
    save_palette_mask(&p, m).unwrap();
    std::fs::read(p).unwrap()
}

fn add(tar: &mut tar::Builder<impl Write>, path: &str, bytes: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, path, bytes).unwrap();
}

struct Fixture {
    voc: PathBuf,
    sbd: PathBuf,
    /// The SegmentationClassAug each name must get.
    expected: Vec<(&'static str, Mask)>,
}

const NAMES: [&str; 4] = ["2008_000001", "2008_000002", "2009_000003", "2010_000004"];

/// VOC has masks for images 0 (train) and 1 (val); SBD for 0 (a different mask: VOC's must win),
/// 2 (compressed .mat, SBD train) and 3 (uncompressed, SBD val); SBD val also lists image 1.
fn fixture(dir: &Path) -> Fixture {
    let (h, w) = (12, 16);
    let voc_masks = [mask(h, w, 3, 0, true), mask(h, w, 15, 1, true)];
    let sbd_masks = [
        mask(h, w, 7, 2, false),
        mask(h, w, 12, 3, false),
        mask(h, w, 20, 5, false),
    ];
    let voc = dir.join("VOCtrainval_11-May-2012.tar");
    let mut t = tar::Builder::new(std::fs::File::create(&voc).unwrap());
    let root = "VOCdevkit/VOC2012";
    for (i, n) in NAMES.iter().enumerate() {
        add(
            &mut t,
            &format!("{root}/JPEGImages/{n}.jpg"),
            &jpeg_bytes(dir, h, w, i),
        );
        add(
            &mut t,
            &format!("{root}/Annotations/{n}.xml"),
            b"<annotation/>",
        );
    }
    for (n, m) in NAMES.iter().zip(&voc_masks) {
        add(
            &mut t,
            &format!("{root}/SegmentationClass/{n}.png"),
            &png_bytes(dir, m),
        );
    }
    let sets = format!("{root}/ImageSets/Segmentation");
    add(
        &mut t,
        &format!("{sets}/train.txt"),
        format!("{}\n", NAMES[0]).as_bytes(),
    );
    add(
        &mut t,
        &format!("{sets}/val.txt"),
        format!("{}\n", NAMES[1]).as_bytes(),
    );
    t.finish().unwrap();

    let sbd = dir.join("benchmark.tgz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&sbd).unwrap(),
        flate2::Compression::fast(),
    );
    let mut t = tar::Builder::new(gz);
    let ds = "benchmark_RELEASE/dataset";
    for (k, (n, m)) in [NAMES[0], NAMES[2], NAMES[3]]
        .iter()
        .zip(&sbd_masks)
        .enumerate()
    {
        add(&mut t, &format!("{ds}/cls/{n}.mat"), &sbd_mat(m, k != 2));
        add(&mut t, &format!("{ds}/img/{n}.jpg"), b"not read");
    }
    add(
        &mut t,
        &format!("{ds}/train.txt"),
        format!("{}\n{}\n", NAMES[0], NAMES[2]).as_bytes(),
    );
    add(
        &mut t,
        &format!("{ds}/val.txt"),
        format!("{}\n{}\n", NAMES[3], NAMES[1]).as_bytes(),
    );
    t.into_inner().unwrap().finish().unwrap();
    Fixture {
        voc,
        sbd,
        expected: vec![
            (NAMES[0], voc_masks[0].clone()),
            (NAMES[1], voc_masks[1].clone()),
            (NAMES[2], sbd_masks[1].clone()),
            (NAMES[3], sbd_masks[2].clone()),
        ],
    }
}

#[test]
fn the_mat_reader_returns_the_segmentation_written() {
    let m = mask(5, 9, 11, 1, false);
    for compressed in [true, false] {
        let (h, w, data) =
            read_uint8_field(&sbd_mat(&m, compressed), "GTcls", "Segmentation").unwrap();
        assert_eq!((h, w), (5, 9));
        assert_eq!(data, m.data, "compressed {compressed}");
    }
    let file = sbd_mat(&m, true);
    let e = read_uint8_field(&file, "GTcls", "Outline").unwrap_err();
    assert!(
        e.0.contains("no field Outline") && e.0.contains("Segmentation"),
        "{e}"
    );
    let e = read_uint8_field(&file, "GTinst", "Segmentation").unwrap_err();
    assert!(e.0.contains("no variable GTinst"), "{e}");
    let e = read_uint8_field(&file[..file.len() - 10], "GTcls", "Segmentation").unwrap_err();
    assert!(e.0.contains("truncated"), "{e}");
    assert!(read_uint8_field(&file[..100], "GTcls", "Segmentation").is_err());
}

#[test]
fn prepare_builds_pascal_5i_from_the_archives_pixel_for_pixel() {
    let dir = temp_dir("prepare");
    let f = fixture(&dir);
    let out = dir.join("DATA");
    let p = prepare_pascal(&f.voc, &f.sbd, &out).unwrap();
    assert_eq!((p.images, p.masks_from_voc, p.masks_from_sbd), (4, 2, 2));
    assert_eq!(p.reused, 0);
    let voc = out.join("VOCdevkit/VOC2012");
    for (name, want) in &f.expected {
        let got = load_class_map(
            &voc.join(format!("SegmentationClassAug/{name}.png")),
            20,
            "t",
        )
        .unwrap();
        assert_eq!(&got, want, "{name}");
    }
    // VOC's boundaries survive; SBD's mask of image 0 lost to VOC's.
    assert!(f.expected[0].1.count(IGNORE) > 0);
    // trainaug = (SBD train + SBD val + VOC train) - VOC val.
    let trainaug = read_list(&voc.join("ImageSets/Segmentation/trainaug.txt")).unwrap();
    assert_eq!(trainaug, vec![NAMES[0], NAMES[2], NAMES[3]]);
    assert_eq!(p.trainaug, 3);
    assert!(!voc.join("Annotations").exists());
    // The tree opens as PASCAL-5i under both protocols, nothing skipped.
    for protocol in [PascalProtocol::Panet, PascalProtocol::Oslsm] {
        let b = Pascal5i::open(&PascalConfig {
            root: out.clone(),
            protocol,
            min_object_pixels: Some(1),
        })
        .unwrap();
        assert!(b.skipped.is_empty(), "{:?}", b.skipped);
    }
    // A rerun reuses every file and changes none.
    let before = std::fs::read(voc.join(format!("SegmentationClassAug/{}.png", NAMES[2]))).unwrap();
    let again = prepare_pascal(&f.voc, &f.sbd, &out).unwrap();
    assert_eq!(again.reused, 4 + 2 + 2 + 2 + 2, "{again:?}");
    assert_eq!(
        std::fs::read(voc.join(format!("SegmentationClassAug/{}.png", NAMES[2]))).unwrap(),
        before
    );
}

#[track_caller]
fn assert_names(err: DataError, parts: &[&str]) {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not name {p:?}");
    }
}

/// Every file under its final name is complete: no temporary left, every JPEG as archived.
fn assert_nothing_half_written(voc: &Path, dir: &Path) {
    for sub in ["JPEGImages", "SegmentationClass", "SegmentationClassAug"] {
        for e in std::fs::read_dir(voc.join(sub)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".part-"), "{name} left behind");
            if sub == "JPEGImages" {
                let i = NAMES.iter().position(|n| name.starts_with(n)).unwrap();
                assert_eq!(std::fs::read(e.path()).unwrap(), jpeg_bytes(dir, 12, 16, i));
            }
        }
    }
}

#[test]
fn truncated_archives_and_a_corrupt_mat_name_the_member() {
    let dir = temp_dir("prepare-bad");
    let f = fixture(&dir);
    let out = dir.join("DATA");
    // The VOC tar cut inside its third member (the second image).
    let bytes = std::fs::read(&f.voc).unwrap();
    let cut = dir.join("cut.tar");
    let offset = bytes.windows(11).position(|w| w == b"2008_000002").unwrap();
    std::fs::write(&cut, &bytes[..offset + 700]).unwrap();
    let e = prepare_pascal(&cut, &f.sbd, &out).unwrap_err();
    assert_names(
        e,
        &["cut.tar", "member", "2008_000002.jpg", "download it again"],
    );
    assert_nothing_half_written(&out.join("VOCdevkit/VOC2012"), &dir);

    // The SBD tgz cut in half.
    let bytes = std::fs::read(&f.sbd).unwrap();
    let cut = dir.join("cut.tgz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = prepare_pascal(&f.voc, &cut, &out).unwrap_err();
    assert_names(e, &["cut.tgz", "member", "download it again"]);
    assert_nothing_half_written(&out.join("VOCdevkit/VOC2012"), &dir);

    // A .mat whose compressed variable is garbage.
    let sbd = dir.join("corrupt.tgz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&sbd).unwrap(),
        flate2::Compression::fast(),
    );
    let mut t = tar::Builder::new(gz);
    let mut bad = sbd_mat(&mask(12, 16, 4, 0, false), true);
    let n = bad.len();
    bad[n - 40..].fill(0x5a);
    add(
        &mut t,
        &format!("benchmark_RELEASE/dataset/cls/{}.mat", NAMES[2]),
        &bad,
    );
    t.into_inner().unwrap().finish().unwrap();
    let e = prepare_pascal(&f.voc, &sbd, &out).unwrap_err();
    assert_names(
        e,
        &[
            "corrupt.tgz",
            &format!("cls/{}.mat", NAMES[2]),
            "not an SBD class mask",
        ],
    );
    let aug = out.join(format!(
        "VOCdevkit/VOC2012/SegmentationClassAug/{}.png",
        NAMES[2]
    ));
    assert!(!aug.exists(), "a mask was written from a corrupt file");
    assert_nothing_half_written(&out.join("VOCdevkit/VOC2012"), &dir);

    // A missing archive names itself.
    let e = prepare_pascal(&dir.join("nope.tar"), &f.sbd, &out).unwrap_err();
    assert_names(e, &["nope.tar", "downloaded archive"]);
}
