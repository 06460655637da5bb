//! Pipelines and stages, their summary, the organization's default, and the cache of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::record::Referable;

/// The id of a pipeline.
pub type PipelineId = Id<Pipeline>;
/// The id of a pipeline stage.
pub type StageId = Id<Stage>;

crate::text_enum! {
    /// What reaching a stage means for an opportunity.
    pub enum StageKind {
        /// Still being worked.
        Open = "open",
        /// Closed and won.
        Won = "won",
        /// Closed and lost.
        Lost = "lost",
    }
}

/// A sales process.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pipeline {
    /// Its id.
    pub id: PipelineId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Display name.
    pub name: String,
    /// Whether new opportunities without a pipeline go here (one per organization).
    pub is_default: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Its stages, in order.
    #[sqlx(skip)]
    pub stages: Vec<Stage>,
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stage {
    /// Its id.
    pub id: StageId,
    /// Its pipeline.
    pub pipeline_id: PipelineId,
    /// Display name.
    pub name: String,
    /// Order within the pipeline, from 0.
    pub position: i32,
    /// Win probability in percent, copied to opportunities that reach it.
    pub probability: i64,
    /// Open, won or lost.
    pub kind: StageKind,
}

impl Referable for Pipeline {
    const TABLE: &'static str = "pipelines";
    const NAME: &'static str = "pipeline";
    const SOFT_DELETE: bool = false;
}

impl Referable for Stage {
    const TABLE: &'static str = "pipeline_stages";
    const NAME: &'static str = "stage";
    const SOFT_DELETE: bool = false;
}

/// Input of `Pipelines::create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPipeline {
    /// Display name.
    pub name: String,
    /// Stages in order: at least one open, one won and one lost.
    pub stages: Vec<NewStage>,
}

/// A stage of a [`NewPipeline`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewStage {
    /// Display name.
    pub name: String,
    /// Win probability, 0–100.
    pub probability: i64,
    /// Open, won or lost.
    pub kind: StageKind,
}

impl NewStage {
    fn new(name: &str, probability: i64, kind: StageKind) -> Self {
        Self {
            name: name.into(),
            probability,
            kind,
        }
    }
}

/// The pipeline every new organization starts with.
pub fn default_pipeline() -> NewPipeline {
    use StageKind::*;
    NewPipeline {
        name: "Sales".into(),
        stages: vec![
            NewStage::new("Prospecting", 10, Open),
            NewStage::new("Qualification", 25, Open),
            NewStage::new("Proposal", 50, Open),
            NewStage::new("Negotiation", 75, Open),
            NewStage::new("Closed won", 100, Won),
            NewStage::new("Closed lost", 0, Lost),
        ],
    }
}

/// Count and amounts of the live opportunities in one stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageSummary {
    /// The stage.
    pub stage: Stage,
    /// How many opportunities are in it.
    pub count: i64,
    /// Their summed amounts, one entry per currency (amounts in different currencies are
    /// never added up).
    pub amounts: Vec<StageAmount>,
}

/// A sum of amounts in one currency.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageAmount {
    /// ISO 4217 code (`None` for opportunities without an amount).
    pub currency: Option<String>,
    /// Sum in minor units.
    pub amount_minor: i64,
}

/// A pipeline with its per-stage totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineSummary {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// One entry per stage, in order (stages without opportunities included).
    pub stages: Vec<StageSummary>,
}

/// The process-wide cache of pipelines. Pipelines and their stages never change once created
/// (and an organization's default pipeline stays its default), so an entry is never stale;
/// writes to opportunities look their pipeline up here instead of in the database.
pub(crate) type PipelineCache =
    moka::sync::Cache<(OrganizationId, Option<PipelineId>), std::sync::Arc<Pipeline>>;

pub(crate) fn new_cache() -> PipelineCache {
    moka::sync::Cache::builder().max_capacity(10_000).build()
}
