//! Folds and class splits as named constants. Fold `i` holds out its test classes; training
//! uses the other classes of the benchmark.

use super::episode::{ClassId, Split};

/// How a benchmark's classes are cut into folds. Named in every output that depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FoldConvention {
    /// Fold `i` = classes `n*i + 1 ..= n*i + n` (PASCAL-5i, synthetic-5i, PANet's COCO split).
    Consecutive,
    /// Fold `i` = classes `4k + i + 1`, k = 0.. (the "FWB" COCO-20i split of HSNet, PFENet, BAM).
    Interleaved,
}

impl FoldConvention {
    pub fn name(self) -> &'static str {
        match self {
            FoldConvention::Consecutive => "consecutive",
            FoldConvention::Interleaved => "interleaved",
        }
    }
}

impl std::fmt::Display for FoldConvention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FoldConvention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "consecutive" => Ok(FoldConvention::Consecutive),
            "interleaved" => Ok(FoldConvention::Interleaved),
            _ => Err(format!(
                "unknown fold convention {s:?}: use interleaved or consecutive"
            )),
        }
    }
}

/// The number of folds of every benchmark here.
pub const NUM_FOLDS: usize = 4;

// ANCHOR: folds
/// The test classes of `fold` for a benchmark of `num_classes` classes (ids 1..=num_classes).
pub fn test_classes(num_classes: usize, convention: FoldConvention, fold: usize) -> Vec<ClassId> {
    let per_fold = num_classes / NUM_FOLDS;
    match convention {
        FoldConvention::Consecutive => (per_fold * fold + 1..=per_fold * fold + per_fold)
            .map(|c| c as ClassId)
            .collect(),
        FoldConvention::Interleaved => (0..per_fold)
            .map(|k| (NUM_FOLDS * k + fold + 1) as ClassId)
            .collect(),
    }
}

/// The classes episodes of `split` use in `fold`: the held-out ones for test, the others for train.
pub fn split_classes(
    num_classes: usize,
    convention: FoldConvention,
    fold: usize,
    split: Split,
) -> Vec<ClassId> {
    let test = test_classes(num_classes, convention, fold);
    match split {
        Split::Test => test,
        Split::Train => (1..=num_classes as ClassId)
            .filter(|c| !test.contains(c))
            .collect(),
    }
}
// ANCHOR_END: folds

/// PASCAL VOC's 20 classes in VOC order (id = position + 1).
pub const PASCAL_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// COCO's 80 classes in category order (id = position + 1).
pub const COCO_CLASSES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// COCO's sparse category ids (1..=90) of the 80 classes, in the order of [`COCO_CLASSES`].
pub const COCO_CATEGORY_IDS: [u32; 80] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_the_classes() {
        for (n, conv) in [
            (20, FoldConvention::Consecutive),
            (80, FoldConvention::Consecutive),
            (80, FoldConvention::Interleaved),
        ] {
            let mut all: Vec<ClassId> = (0..NUM_FOLDS)
                .flat_map(|f| test_classes(n, conv, f))
                .collect();
            all.sort_unstable();
            assert_eq!(all, (1..=n as ClassId).collect::<Vec<_>>());
            for f in 0..NUM_FOLDS {
                assert_eq!(
                    split_classes(n, conv, f, Split::Train).len(),
                    n - n / NUM_FOLDS
                );
            }
        }
    }
}
