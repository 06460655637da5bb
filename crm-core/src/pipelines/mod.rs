//! Pipelines: per-organization sales processes made of ordered stages, and their summary.

mod model;
mod service;

pub use model::{
    NewPipeline, NewStage, Pipeline, PipelineId, PipelineSummary, Stage, StageAmount, StageId,
    StageKind, StageSummary, default_pipeline,
};
pub(crate) use model::{PipelineCache, new_cache};
pub use service::Pipelines;
pub(crate) use service::{insert, load_cached};
