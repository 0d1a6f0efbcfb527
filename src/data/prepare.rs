//! `srpnet data prepare pascal`: PASCAL-5i built from the two official archives, read directly:
//! VOC2012 (`VOCtrainval_11-May-2012.tar`) and SBD (`benchmark.tgz`, Hariharan et al.).
//!
//! Writes `VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation}` as VOC has
//! them, `SegmentationClassAug/` (one-channel class ids: VOC's own mask where it has one, with its
//! 255 boundaries, else SBD's `GTcls.Segmentation`), and `trainaug.txt`. Every file is written
//! under a temporary name and renamed, so a file under its final name is complete; a rerun skips
//! what is there (resumable, idempotent).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::episode::Mask;
use super::error::DataError;
use super::images::{load_class_map, save_mask};
use super::mat::read_uint8_field;
use super::pascal::{PASCAL_NAME, read_list};

/// What `prepare` found and wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub voc_root: PathBuf,
    pub images: usize,
    /// Masks of `SegmentationClassAug`: from VOC, from SBD.
    pub masks_from_voc: usize,
    pub masks_from_sbd: usize,
    pub trainaug: usize,
    /// Files already complete from an earlier run, left as they were.
    pub reused: usize,
}

/// The fix printed with every archive error.
const ARCHIVE_FIX: &str = "the archive is truncated or corrupt: download it again \
(VOCtrainval_11-May-2012.tar from host.robots.ox.ac.uk, benchmark.tgz from the SBD page)";

fn archive_error(archive: &Path, member: &str, reason: impl std::fmt::Display) -> DataError {
    DataError::BadArchive {
        archive: archive.to_path_buf(),
        member: member.to_string(),
        reason: reason.to_string(),
        fix: ARCHIVE_FIX.into(),
    }
}

/// Writes `bytes` to `path` through a temporary name in the same folder and a rename.
fn write_complete(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let tmp = temp_name(path);
    std::fs::write(&tmp, bytes).map_err(|e| DataError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

/// `.NAME.part-PID.EXT` beside `path`: hidden, unique to this process, and keeping the
/// extension (the PNG encoder goes by it).
fn temp_name(path: &Path) -> PathBuf {
    let stem = path.file_stem().and_then(|n| n.to_str()).unwrap_or("file");
    let ext = path.extension().and_then(|n| n.to_str()).unwrap_or("tmp");
    path.with_file_name(format!(".{stem}.part-{}.{ext}", std::process::id()))
}

/// Removes what an interrupted run left under temporary names in `dir`.
fn remove_partial(dir: &Path) -> Result<(), DataError> {
    for e in std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .flatten()
    {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".part-") {
            std::fs::remove_file(e.path()).map_err(|err| DataError::io(&e.path(), err))?;
        }
    }
    Ok(())
}

/// Calls `f(member path, bytes)` for every regular file of a tar stream whose path `want` accepts.
/// A read error names the member being read (or the last one read, for a broken header).
fn each_member(
    archive: &Path,
    reader: impl Read,
    want: impl Fn(&str) -> bool,
    mut f: impl FnMut(&str, Vec<u8>) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut tar = tar::Archive::new(reader);
    let mut last = String::new();
    let after = |last: &str| {
        if last.is_empty() {
            "1 (the first)".to_string()
        } else {
            format!("after {last}")
        }
    };
    let entries = tar
        .entries()
        .map_err(|e| archive_error(archive, &after(&last), e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(archive, &after(&last), e))?;
        let path = entry
            .path()
            .map_err(|e| archive_error(archive, &after(&last), e))?
            .to_string_lossy()
            .into_owned();
        last.clone_from(&path);
        if !entry.header().entry_type().is_file() || !want(&path) {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| archive_error(archive, &path, e))?;
        // A tar cut short ends a member early without an error from the reader.
        if bytes.len() as u64 != entry.size() {
            return Err(archive_error(
                archive,
                &path,
                format!("{} of its {} bytes present", bytes.len(), entry.size()),
            ));
        }
        f(&path, bytes)?;
    }
    Ok(())
}

fn open(archive: &Path) -> Result<std::fs::File, DataError> {
    std::fs::File::open(archive).map_err(|e| DataError::MissingFile {
        path: archive.to_path_buf(),
        fix: format!("({e}) give the path of the downloaded archive"),
    })
}

/// The file name without folder and extension, e.g. `2008_000002`.
fn stem(member: &str) -> &str {
    let file = member.rsplit('/').next().unwrap_or(member);
    file.rsplit_once('.').map_or(file, |(s, _)| s)
}

// ANCHOR: prepare
/// Builds PASCAL-5i under `out` from the VOC2012 tar and the SBD tgz.
pub fn prepare_pascal(voc_tar: &Path, sbd_tgz: &Path, out: &Path) -> Result<Prepared, DataError> {
    // Both archives open before anything is written under `out`.
    let (voc_file, sbd_file) = (open(voc_tar)?, open(sbd_tgz)?);
    let voc = out.join("VOCdevkit/VOC2012");
    let (aug, sets) = (
        voc.join("SegmentationClassAug"),
        voc.join("ImageSets/Segmentation"),
    );
    for d in [
        "JPEGImages",
        "SegmentationClass",
        "SegmentationClassAug",
        "ImageSets/Segmentation",
    ] {
        std::fs::create_dir_all(voc.join(d)).map_err(|e| DataError::io(&voc.join(d), e))?;
        remove_partial(&voc.join(d))?;
    }
    let mut done = Prepared {
        voc_root: voc.clone(),
        ..Prepared::default()
    };

    // 1. VOC: images, its own masks and lists, as they are in the archive.
    let keep = |p: &str| {
        let p = p.trim_start_matches("./");
        (p.starts_with("VOCdevkit/VOC2012/JPEGImages/") && p.ends_with(".jpg"))
            || (p.starts_with("VOCdevkit/VOC2012/SegmentationClass/") && p.ends_with(".png"))
            || (p.starts_with("VOCdevkit/VOC2012/ImageSets/Segmentation/") && p.ends_with(".txt"))
    };
    each_member(voc_tar, voc_file, keep, |member, bytes| {
        let path = out.join(member.trim_start_matches("./"));
        if member.contains("/JPEGImages/") {
            done.images += 1;
        }
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            done.reused += 1;
            return Ok(());
        }
        write_complete(&path, &bytes)
    })?;

    // 2. VOC's masks (palette PNGs) as class ids: they win over SBD's, 255 boundaries kept.
    let voc_masks: BTreeSet<String> = std::fs::read_dir(voc.join("SegmentationClass"))
        .map_err(|e| DataError::io(&voc.join("SegmentationClass"), e))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".png"))
                .map(String::from)
        })
        .collect();
    for name in &voc_masks {
        let target = aug.join(format!("{name}.png"));
        done.masks_from_voc += 1;
        if target.is_file() {
            done.reused += 1;
            continue;
        }
        let mask = load_class_map(
            &voc.join(format!("SegmentationClass/{name}.png")),
            20,
            PASCAL_NAME,
        )?;
        save_complete(&target, &mask)?;
    }

    // 3. SBD: GTcls.Segmentation of every cls/*.mat that VOC has no mask for; its lists.
    let gz = flate2::read::GzDecoder::new(sbd_file);
    let mut sbd_names = BTreeSet::new();
    let want = |p: &str| {
        let p = p.trim_start_matches("./");
        (p.starts_with("benchmark_RELEASE/dataset/cls/") && p.ends_with(".mat"))
            || p == "benchmark_RELEASE/dataset/train.txt"
            || p == "benchmark_RELEASE/dataset/val.txt"
    };
    each_member(sbd_tgz, gz, want, |member, bytes| {
        if member.ends_with(".txt") {
            let text = String::from_utf8_lossy(&bytes);
            sbd_names.extend(text.split_whitespace().map(String::from));
            return Ok(());
        }
        let name = stem(member);
        if voc_masks.contains(name) {
            return Ok(());
        }
        done.masks_from_sbd += 1;
        let target = aug.join(format!("{name}.png"));
        if target.is_file() {
            done.reused += 1;
            return Ok(());
        }
        let (height, width, data) = read_uint8_field(&bytes, "GTcls", "Segmentation")
            .map_err(|e| archive_error(sbd_tgz, member, format!("not an SBD class mask: {e}")))?;
        save_complete(
            &target,
            &Mask {
                height,
                width,
                data,
            },
        )
    })?;

    // 4. trainaug = (SBD train + SBD val + VOC train) - VOC val, DeepLab's list.
    let val: BTreeSet<String> = read_list(&sets.join("val.txt"))?.into_iter().collect();
    let train = read_list(&sets.join("train.txt"))?;
    let trainaug: BTreeSet<String> = sbd_names
        .into_iter()
        .chain(train)
        .filter(|n| !val.contains(n))
        .collect();
    let text: String = trainaug.iter().map(|n| format!("{n}\n")).collect();
    write_complete(&sets.join("trainaug.txt"), text.as_bytes())?;
    done.trainaug = trainaug.len();
    Ok(done)
}
// ANCHOR_END: prepare

fn save_complete(path: &Path, mask: &Mask) -> Result<(), DataError> {
    let tmp = temp_name(path);
    save_mask(&tmp, mask)?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}
