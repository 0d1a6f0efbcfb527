//! srpnet: a literate, reproducible SRPNet (Self-Regularized Prototypical Network for few-shot
//! semantic segmentation; Ding, Zhang, Jiang, Pattern Recognition 2023) on Burn.
//!
//! Read it with the book (`book/`): each module of [`model`] is one component of the paper.

pub mod backend;
pub mod bench;
pub mod experiment;
pub mod metrics;
pub mod data;
pub mod model;
