//! The similarity between pixel features and prototypes: SRPNet's fidelity, PANet's cosine, and
//! the classical fidelity of two distributions, with the logit scale.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::model::ModelError;
use crate::model::prototype::Prototypes;

/// Guards every norm: a zero feature vector has similarity 0 to everything, not NaN.
pub const EPS: f64 = 1e-12;

// ANCHOR: config
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// SRPNet's fidelity [ours: the formula]: the squared cosine, the fidelity of two pure states,
    /// `(u.v)^2 / (|u|^2 |v|^2)`, in [0, 1].
    Fidelity,
    /// PANet's cosine similarity, in [-1, 1].
    Cosine,
    /// The classical fidelity (squared Bhattacharyya coefficient) of the channel distributions
    /// `p = relu(u) / sum relu(u)`: `(sum_i sqrt(p_i q_i))^2`, in [0, 1].
    ClassicalFidelity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricConfig {
    pub metric: Metric,
    /// Logits are `scale * similarity` (PANet's 20): a similarity in [0, 1] alone would give the
    /// two-class softmax at most e : 1 odds.
    pub scale: f64,
}
// ANCHOR_END: config

impl Default for MetricConfig {
    fn default() -> Self {
        Self {
            metric: Metric::Fidelity,
            scale: 20.0,
        }
    }
}

impl MetricConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(ModelError::config(
                "metric.scale",
                self.scale.to_string(),
                "the logit scale must be a positive number (PANet uses 20)",
            ));
        }
        Ok(())
    }

    /// `scale * similarity`: [N, C, h, w] features -> [N, 2, h, w] logits (background, foreground).
    pub fn logits(&self, features: Tensor<4>, prototypes: &Prototypes) -> Tensor<4> {
        similarity(features, prototypes, self.metric).mul_scalar(self.scale)
    }
}

// ANCHOR: similarity
/// Similarity of every pixel feature to both prototypes.
/// `features`: [N, C, h, w]; `prototypes`: [2, C]; returns [N, 2, h, w].
pub fn similarity(features: Tensor<4>, prototypes: &Prototypes, metric: Metric) -> Tensor<4> {
    match metric {
        Metric::Cosine => cosine(features, prototypes.0.clone()),
        Metric::Fidelity => cosine(features, prototypes.0.clone()).powi_scalar(2),
        Metric::ClassicalFidelity => {
            // sum_i sqrt(p_i q_i) is the cosine of sqrt(p) and sqrt(q), both of unit norm.
            // sqrt(p + eps) - sqrt(eps) keeps the gradient finite at p = 0 and a zero
            // feature at zero (no distribution, no similarity).
            let root = |x: Tensor<4>| {
                let x = relu(x);
                let total = x.clone().sum_dim(1).add_scalar(EPS);
                (x / total).add_scalar(EPS).sqrt().sub_scalar(EPS.sqrt())
            };
            let p = prototypes.0.clone().unsqueeze_dims::<4>(&[2, 3]); // [2, C, 1, 1]
            let q = root(p).squeeze_dims::<2>(&[2, 3]);
            cosine(root(features), q).clamp_min(0.0).powi_scalar(2)
        }
    }
}

/// Cosine of [N, C, h, w] features with [P, C] prototypes -> [N, P, h, w], clamped to [-1, 1]
/// so that rounding never lets a fidelity exceed 1.
fn cosine(features: Tensor<4>, prototypes: Tensor<2>) -> Tensor<4> {
    let [n, c, h, w] = features.dims();
    let [p, _] = prototypes.dims();
    let unit_features = normalize(features, 1).reshape([n, c, h * w]);
    let unit_prototypes = normalize(prototypes, 1).unsqueeze::<3>().expand([n, p, c]);
    unit_prototypes
        .matmul(unit_features)
        .reshape([n, p, h, w])
        .clamp(-1.0, 1.0)
}
// ANCHOR_END: similarity

// ANCHOR: normalize
/// `x / sqrt(|x|^2 + eps)` along `dim`: unit vectors, and 0 for a zero vector.
///
/// Where `|x|^2` overflows f32 (a component above about 1.8e19) the vector is first divided
/// by its largest magnitude `m`; the guard then counts for eps / m^2 of the result, far below
/// f32's precision. Every other vector is divided by exactly 1, so its result and gradient are
/// bit for bit the plain formula's. (Dividing back by a norm that large would also lose the
/// gradient: autodiff's `-x / norm^2` overflows.) A NaN or infinite component gives NaN,
/// never a plausible finite value.
pub fn normalize<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    let overflow = x.clone().powi_scalar(2).sum_dim(dim).is_inf();
    let m = x.clone().max_abs_dim(dim).detach();
    let x = x / m.ones_like().mask_where(overflow, m);
    let norm = x.clone().powi_scalar(2).sum_dim(dim).add_scalar(EPS).sqrt();
    x / norm
}
// ANCHOR_END: normalize
