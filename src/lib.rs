//! srpnet: a literate, reproducible SRPNet (Self-Regularized Prototypical Network for few-shot
//! semantic segmentation; Ding, Zhang, Jiang, Pattern Recognition 2023) on Burn.
//!
//! Read it with the book (`book/`): each module of [`model`] is one component of the paper.

pub mod backend;
pub mod bench;
pub mod commands;
pub mod data;
pub mod eval;
pub mod experiment;
pub mod figures;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod reproduce;
pub mod stats;
pub mod train;
pub mod weights;
