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

/// An error and its causes for the terminal, each said once: a cause whose text the message
/// before it already shows (errors that print their source in their own message) is not
/// repeated, so `{path}: {io error}` does not become `...: {io error}: {io error}`.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut shown: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !shown
            .last()
            .is_some_and(|previous| previous.contains(&text))
        {
            shown.push(text);
        }
    }
    shown.join(": ")
}
