//! The SRPNet model, one file per component of the paper's Fig. 2:
//! images -> [`backbone`] -> [`pyramid`] -> [`prototype`] -> [`fidelity`] ->
//! ([`srp`] support loss | [`iqi`] iterative query inference); [`panet`] is the baseline's PAR;
//! [`srpnet`] assembles them into one episode forward, with the losses of [`loss`].

pub mod backbone;
pub mod fidelity;
pub mod iqi;
pub mod loss;
pub mod panet;
pub mod prototype;
pub mod pyramid;
pub mod srp;
pub mod srpnet;

pub use srpnet::{EpisodeOutput, EpisodeTensors, Losses, ModelConfig, Phase, Profile, SrpNet};

use burn::tensor::Tensor;

/// What can go wrong when building or running the model. Every variant says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model config: `{field}` = {value}: {hint}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        hint: &'static str,
    },
    #[error("episode tensors do not fit together: {0}")]
    Shape(String),
    #[error(
        "the support {region} is empty in all {shots} shot(s): no {region} prototype can be pooled; \
         give a support mask with both foreground (1) and background (0) pixels"
    )]
    EmptyMask { region: &'static str, shots: usize },
    #[error("{0}: the input holds NaN or infinite values; check the image files and normalisation")]
    NonFinite(&'static str),
    #[error("the backend failed while reading a tensor back: {0}")]
    Backend(String),
}

impl ModelError {
    pub(crate) fn config(
        field: &'static str,
        value: impl Into<String>,
        hint: &'static str,
    ) -> Self {
        Self::InvalidConfig {
            field,
            value: value.into(),
            hint,
        }
    }
}

/// Copies a float tensor to the host (a device sync).
pub(crate) fn host_values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, ModelError> {
    t.try_into_data()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))?
        .convert::<f32>()
        .try_into_vec()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}
