//! SRPNet assembled: the model config, the episode tensors, and the one forward that returns the
//! query logits, the support-recovery logits and the losses the config asks for.

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::backbone::{Backbone, BackboneConfig};
use crate::model::fidelity::{Metric, MetricConfig};
use crate::model::iqi::{IqiConfig, iterative_query_inference};
use crate::model::loss::segmentation_cross_entropy;
use crate::model::panet::{ParConfig, prototype_alignment_loss};
use crate::model::prototype::{MaskPooling, masked_average_pool};
use crate::model::pyramid::{Pyramid, PyramidConfig, bilinear_to};
use crate::model::srp::{SrpConfig, support_loss, support_recovery};

// ANCHOR: config
/// Everything that defines a model. Every field has a default (SRPNet, paper profile); a TOML or
/// JSON file need only name what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub backbone: BackboneConfig,
    pub pyramid: PyramidConfig,
    pub pooling: MaskPooling,
    pub metric: MetricConfig,
    pub srp: SrpConfig,
    pub par: ParConfig,
    pub iqi: IqiConfig,
}
// ANCHOR_END: config

/// The two scales this project runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// ResNet-50 at 417x417, as PANet: for GPUs.
    Paper,
    /// A small ResNet at 97x97 trained from scratch: minutes on a 2-core CPU.
    Embedded,
}

impl Profile {
    /// Square input size (8k + 1, so that output stride 8 lands on pixel centres as in PANet).
    pub fn image_size(self) -> usize {
        match self {
            Profile::Paper => 417,
            Profile::Embedded => 97,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::srpnet(Profile::Paper)
    }
}

impl ModelConfig {
    /// SRPNet: fidelity x 20, SRP support loss, IQI at inference.
    pub fn srpnet(profile: Profile) -> Self {
        let (backbone, channels) = match profile {
            // ImageNet weights (the fetched Keras ResNet50: epsilon 1e-3) and frozen batch norm:
            // one-episode batches of two images are too small for batch statistics.
            Profile::Paper => (
                BackboneConfig {
                    frozen_batch_norm: true,
                    batch_norm_epsilon: crate::weights::tfjs::KERAS_BN_EPSILON,
                    ..BackboneConfig::resnet50()
                },
                512,
            ),
            Profile::Embedded => (BackboneConfig::small(), 128),
        };
        Self {
            backbone,
            pyramid: PyramidConfig {
                channels,
                ..PyramidConfig::default()
            },
            pooling: MaskPooling::Transposed,
            metric: MetricConfig::default(),
            srp: SrpConfig::default(),
            par: ParConfig::default(),
            iqi: IqiConfig::default(),
        }
    }

    /// The PANet baseline on the same backbone and pyramid: cosine x 20 and PAR, no SRP, no IQI,
    /// and, as in PANet, no ReLU after the last layer: its cosine sees signed features.
    pub fn panet(profile: Profile) -> Self {
        let srpnet = Self::srpnet(profile);
        Self {
            pyramid: PyramidConfig {
                final_relu: false,
                ..srpnet.pyramid.clone()
            },
            metric: MetricConfig {
                metric: Metric::Cosine,
                scale: 20.0,
            },
            srp: SrpConfig { lambda: 0.0 },
            par: ParConfig { lambda: 1.0 },
            iqi: IqiConfig {
                iterations: 0,
                ..IqiConfig::default()
            },
            ..srpnet
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        self.backbone.validate()?;
        self.pyramid.validate()?;
        self.metric.validate()?;
        if !self.pyramid.final_relu && self.metric.metric != Metric::Cosine {
            return Err(ModelError::config(
                "pyramid.final_relu",
                "false",
                "the fidelity metrics need non-negative features: the squared cosine scores u and \
                 -u alike, and the classical fidelity treats features as distributions; set \
                 pyramid.final_relu = true, or use metric = \"cosine\" for signed features",
            ));
        }
        self.srp.validate()?;
        self.par.validate()?;
        self.iqi.validate()
    }

    pub fn init(&self, device: &Device) -> Result<SrpNet, ModelError> {
        self.validate()?;
        Ok(SrpNet {
            backbone: self.backbone.init(device)?,
            pyramid: self.pyramid.init(&self.backbone, device)?,
            config: self.clone(),
        })
    }
}

// ANCHOR: episode
/// One episode on a device. Images are normalised already; masks hold 0 (background),
/// 1 (foreground) or 255 (ignore).
#[derive(Debug, Clone)]
pub struct EpisodeTensors {
    /// [K, 3, H, W]
    pub support_images: Tensor<4>,
    /// [K, H, W]
    pub support_masks: Tensor<3>,
    /// [1, 3, H, W]
    pub query_image: Tensor<4>,
    /// [1, H, W], when the query's ground truth is known (training, evaluation).
    pub query_mask: Option<Tensor<3>>,
}
// ANCHOR_END: episode

impl EpisodeTensors {
    /// Checks that the shapes fit together (K shots, 3 channels, one image size).
    pub fn new(
        support_images: Tensor<4>,
        support_masks: Tensor<3>,
        query_image: Tensor<4>,
        query_mask: Option<Tensor<3>>,
    ) -> Result<Self, ModelError> {
        let [k, c, h, w] = support_images.dims();
        let check = |ok: bool, what: String| {
            if ok {
                Ok(())
            } else {
                Err(ModelError::Shape(what))
            }
        };
        check(k > 0, "an episode needs at least one support shot".into())?;
        check(
            c == 3,
            format!("support images have {c} channels; give RGB images [K, 3, H, W]"),
        )?;
        check(
            support_masks.dims() == [k, h, w],
            format!(
                "support masks are {:?} but the support images need [{k}, {h}, {w}]: \
                 resize each mask to its image (nearest neighbour)",
                support_masks.dims()
            ),
        )?;
        check(
            query_image.dims() == [1, 3, h, w],
            format!(
                "the query image is {:?}; it must be [1, 3, {h}, {w}], the size of the supports",
                query_image.dims()
            ),
        )?;
        if let Some(mask) = &query_mask {
            check(
                mask.dims() == [1, h, w],
                format!(
                    "the query mask is {:?}; it must be [1, {h}, {w}]",
                    mask.dims()
                ),
            )?;
        }
        Ok(Self {
            support_images,
            support_masks,
            query_image,
            query_mask,
        })
    }

    /// Builds the tensors from host buffers (CHW images, row-major masks), checking the lengths,
    /// that images are finite and that masks hold only 0, 1 and 255.
    pub fn from_host(
        shots: usize,
        size: [usize; 2],
        support_images: &[f32],
        support_masks: &[u8],
        query_image: &[f32],
        query_mask: Option<&[u8]>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let [h, w] = size;
        let pixels = h * w;
        let expect = |name: &str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(ModelError::Shape(format!(
                    "{name} holds {got} values; {shots} shot(s) of {h}x{w} need {want}"
                )))
            }
        };
        expect("support images", support_images.len(), shots * 3 * pixels)?;
        expect("support masks", support_masks.len(), shots * pixels)?;
        expect("query image", query_image.len(), 3 * pixels)?;
        if let Some(m) = query_mask {
            expect("query mask", m.len(), pixels)?;
        }
        if !support_images
            .iter()
            .chain(query_image)
            .all(|v| v.is_finite())
        {
            return Err(ModelError::NonFinite("episode images"));
        }
        let masks = support_masks.iter().chain(query_mask.unwrap_or(&[]));
        if let Some(bad) = masks.copied().find(|&v| v > 1 && v != 255) {
            return Err(ModelError::Shape(format!(
                "a mask holds the value {bad}; episode masks hold only 0 (background), \
                 1 (foreground) and 255 (ignore)"
            )));
        }
        let mask = |m: &[u8], n: usize| {
            let values: Vec<f32> = m.iter().map(|&v| v as f32).collect();
            Tensor::<3>::from_data(TensorData::new(values, [n, h, w]), device)
        };
        let image = |x: &[f32], n: usize| {
            Tensor::<4>::from_data(TensorData::new(x.to_vec(), [n, 3, h, w]), device)
        };
        Self::new(
            image(support_images, shots),
            mask(support_masks, shots),
            image(query_image, 1),
            query_mask.map(|m| mask(m, 1)),
        )
    }

    /// The tensors of a data-module episode (already resized and normalised by its transform).
    pub fn from_episode(
        episode: &crate::data::Episode,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let (h, w) = episode.query.image.size();
        let mut images = Vec::with_capacity(episode.supports.len() * 3 * h * w);
        let mut masks = Vec::with_capacity(episode.supports.len() * h * w);
        for (i, shot) in episode.supports.iter().enumerate() {
            if shot.image.size() != (h, w) || shot.mask.size() != (h, w) {
                return Err(ModelError::Shape(format!(
                    "support {i} ({}) is {:?} with a {:?} mask but the query is {:?}: resize \
                     the episode to one size (the transform does)",
                    shot.id,
                    shot.image.size(),
                    shot.mask.size(),
                    (h, w)
                )));
            }
            images.extend_from_slice(&shot.image.data);
            masks.extend_from_slice(&shot.mask.data);
        }
        if episode.query.mask.size() != (h, w) {
            return Err(ModelError::Shape(format!(
                "the query mask of {} is {:?} but its image is {:?}",
                episode.query.id,
                episode.query.mask.size(),
                (h, w)
            )));
        }
        Self::from_host(
            episode.supports.len(),
            [h, w],
            &images,
            &masks,
            &episode.query.image.data,
            Some(&episode.query.mask.data),
            device,
        )
    }

    pub fn shots(&self) -> usize {
        self.support_images.dims()[0]
    }

    pub fn image_size(&self) -> [usize; 2] {
        let [_, _, h, w] = self.support_images.dims();
        [h, w]
    }
}

/// Training computes the losses and segments the query with P_0 only; inference applies IQI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Train,
    Infer,
}

/// The loss terms of one episode (scalars, [1]).
#[derive(Debug, Clone)]
pub struct Losses {
    /// L_que: query cross-entropy.
    pub query: Tensor<1>,
    /// L_sup: SRP support loss, when `srp.lambda > 0`.
    pub support: Option<Tensor<1>>,
    /// PANet's alignment loss, when `par.lambda > 0` and the query prediction has a foreground.
    pub alignment: Option<Tensor<1>>,
    /// L_que + lambda_sup * L_sup + lambda_par * L_par.
    pub total: Tensor<1>,
}

#[derive(Debug, Clone)]
pub struct EpisodeOutput {
    /// [1, 2, H, W] query logits from the support prototypes P_0 (what L_que sees).
    pub query_logits: Tensor<4>,
    /// [1, 2, H, W] query probabilities: softmax of `query_logits`, or IQI's combination.
    pub query_probabilities: Tensor<4>,
    /// [K, 2, H, W] the support masks recovered by the support prototypes.
    pub support_logits: Tensor<4>,
    /// Present in the training phase, when the query mask is known.
    pub losses: Option<Losses>,
    /// IQI's support score of P_0..P_T (inference phase with T > 0).
    pub iqi_scores: Vec<f32>,
}

/// The whole network. Its only parameters are the backbone's and the pyramid's: SRP and IQI add
/// none.
#[derive(Module, Debug)]
pub struct SrpNet {
    pub backbone: Backbone,
    pub pyramid: Pyramid,
    #[module(skip)]
    pub config: ModelConfig,
}

impl SrpNet {
    // ANCHOR: features
    /// Pyramid features of a batch of images: [N, 3, H, W] -> [N, C, h, w].
    pub fn features(&self, images: Tensor<4>) -> Tensor<4> {
        let levels = self.backbone.forward(images, &self.config.pyramid.levels);
        self.pyramid.forward(levels)
    }
    // ANCHOR_END: features

    // ANCHOR: forward
    pub fn forward(
        &self,
        episode: &EpisodeTensors,
        phase: Phase,
    ) -> Result<EpisodeOutput, ModelError> {
        self.head(self.episode_features(episode), episode, phase)
    }

    /// The pyramid features of an episode's K supports and its query: [K + 1, C, h, w].
    /// Support and query share the backbone: one batch of K + 1 images.
    pub fn episode_features(&self, episode: &EpisodeTensors) -> Tensor<4> {
        let images = Tensor::cat(
            vec![episode.support_images.clone(), episode.query_image.clone()],
            0,
        );
        self.features(images)
    }

    /// Everything after the features: prototypes, similarity, support recovery, IQI and the
    /// losses, under `self.config`. `features` are [`SrpNet::episode_features`] of `episode`
    /// (evaluation computes them once for every IQI setting of a table).
    pub fn head(
        &self,
        features: Tensor<4>,
        episode: &EpisodeTensors,
        phase: Phase,
    ) -> Result<EpisodeOutput, ModelError> {
        let config = &self.config;
        let k = episode.shots();
        let size = episode.image_size();
        let [_, c, h, w] = features.dims();
        let support_features = features.clone().slice([0..k, 0..c, 0..h, 0..w]);
        let query_features = features.slice([k..k + 1, 0..c, 0..h, 0..w]);

        let prototypes = masked_average_pool(
            support_features.clone(),
            episode.support_masks.clone(),
            config.pooling,
        )?;
        let query_low_res = config.metric.logits(query_features.clone(), &prototypes);
        let query_logits = interpolate(query_low_res.clone(), bilinear_to(size));
        let support_logits =
            support_recovery(support_features.clone(), &prototypes, &config.metric, size);

        let (query_probabilities, iqi_scores) = match phase {
            Phase::Infer if config.iqi.iterations > 0 => {
                let out = iterative_query_inference(
                    &config.iqi,
                    &config.metric,
                    query_features.clone(),
                    support_features.clone(),
                    episode.support_masks.clone(),
                    &prototypes,
                )?;
                (out.probabilities, out.support_scores)
            }
            _ => (softmax(query_logits.clone(), 1), Vec::new()),
        };

        let losses = match (phase, &episode.query_mask) {
            (Phase::Train, Some(query_mask)) => {
                let query = segmentation_cross_entropy(query_logits.clone(), query_mask.clone());
                let mut total = query.clone();
                let support = (config.srp.lambda > 0.0)
                    .then(|| support_loss(support_logits.clone(), episode.support_masks.clone()));
                if let Some(l) = &support {
                    total = total + l.clone().mul_scalar(config.srp.lambda);
                }
                let alignment = if config.par.lambda > 0.0 {
                    prototype_alignment_loss(
                        &config.metric,
                        query_features,
                        query_low_res,
                        support_features,
                        episode.support_masks.clone(),
                    )?
                } else {
                    None
                };
                if let Some(l) = &alignment {
                    total = total + l.clone().mul_scalar(config.par.lambda);
                }
                Some(Losses {
                    query,
                    support,
                    alignment,
                    total,
                })
            }
            _ => None,
        };
        Ok(EpisodeOutput {
            query_logits,
            query_probabilities,
            support_logits,
            losses,
            iqi_scores,
        })
    }
    // ANCHOR_END: forward
}
