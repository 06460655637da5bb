//! OpenAPI schemas of crm-core types that the API sends and receives as they are (pipelines,
//! custom field definitions, lead conversion, timelines).
//!
//! crm-core has no utoipa, so their shapes are declared here for the description only; the
//! handlers (de)serialize the crm-core types themselves. Keep each in step with its crm-core
//! type (the OpenAPI tests read real responses against some of them).
#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// What reaching a stage means for an opportunity.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum StageKind {
    /// Still being worked.
    Open,
    /// Closed and won.
    Won,
    /// Closed and lost.
    Lost,
}

/// A stage of a pipeline.
#[derive(ToSchema)]
pub(crate) struct Stage {
    /// Id.
    id: Uuid,
    /// Its pipeline.
    pipeline_id: Uuid,
    /// Name.
    name: String,
    /// Order within the pipeline, from 0.
    position: i32,
    /// Win probability in percent.
    probability: i64,
    /// Open, won or lost.
    kind: StageKind,
}

/// A sales process: ordered stages.
#[derive(ToSchema)]
pub(crate) struct Pipeline {
    /// Id.
    id: Uuid,
    /// Organization.
    organization_id: Uuid,
    /// Name.
    name: String,
    /// Whether new opportunities without a pipeline go here.
    is_default: bool,
    /// Created at.
    created_at: DateTime<Utc>,
    /// Updated at.
    updated_at: DateTime<Utc>,
    /// Version.
    version: i64,
    /// Its stages, in order.
    stages: Vec<Stage>,
}

/// The pipelines of the organization, the default first.
#[derive(ToSchema)]
pub(crate) struct PipelineList {
    /// Every pipeline.
    data: Vec<Pipeline>,
    /// Always `null`: the list is never paged.
    next_cursor: Option<String>,
}

/// A stage of a new pipeline.
#[derive(ToSchema)]
pub(crate) struct NewStage {
    /// Name.
    name: String,
    /// Win probability in percent (0-100).
    probability: i64,
    /// Open, won or lost; a pipeline needs at least one of each.
    kind: StageKind,
}

/// A new pipeline.
#[derive(ToSchema)]
pub(crate) struct NewPipeline {
    /// Name.
    name: String,
    /// Its stages, in order.
    stages: Vec<NewStage>,
}

/// An amount in one currency.
#[derive(ToSchema)]
pub(crate) struct StageAmount {
    /// ISO 4217 currency; `null` for opportunities without an amount.
    currency: Option<String>,
    /// Sum in minor units.
    amount_minor: i64,
}

/// The opportunities of one stage.
#[derive(ToSchema)]
pub(crate) struct StageSummary {
    /// The stage.
    stage: Stage,
    /// How many live opportunities are in it.
    count: i64,
    /// Their amounts, per currency.
    amounts: Vec<StageAmount>,
}

/// Count and amount of live opportunities per stage of a pipeline.
#[derive(ToSchema)]
pub(crate) struct PipelineSummary {
    /// The pipeline.
    pipeline: Pipeline,
    /// One entry per stage, in order.
    stages: Vec<StageSummary>,
}

/// The type of a custom field.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum CustomFieldType {
    /// Text.
    Text,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 date-time.
    Datetime,
    /// One of the options.
    Select,
    /// Several distinct options.
    MultiSelect,
    /// An email address.
    Email,
    /// An `http(s)` URL.
    Url,
    /// `{"amount_minor": 12345, "currency": "EUR"}`.
    Currency,
}

/// A custom field definition.
#[derive(ToSchema)]
pub(crate) struct CustomFieldDefinition {
    /// Id.
    id: Uuid,
    /// Organization.
    organization_id: Uuid,
    /// The entity, singular (`account`).
    entity: String,
    /// The key in records' `custom_fields`.
    key: String,
    /// Display label.
    label: String,
    /// Type.
    field_type: CustomFieldType,
    /// Whether records must have a value.
    required: bool,
    /// Choices of `select` and `multi_select`.
    options: Vec<String>,
    /// Value given to new records without one.
    default_value: Option<Value>,
    /// Archived definitions keep their values but take no new ones.
    archived: bool,
    /// Created at.
    created_at: DateTime<Utc>,
    /// Updated at.
    updated_at: DateTime<Utc>,
    /// Version.
    version: i64,
}

/// The custom field definitions of an entity, archived ones included.
#[derive(ToSchema)]
pub(crate) struct CustomFieldList {
    /// Every definition, by key.
    data: Vec<CustomFieldDefinition>,
    /// Always `null`: the list is never paged.
    next_cursor: Option<String>,
}

/// A new custom field definition.
#[derive(ToSchema)]
pub(crate) struct NewCustomField {
    /// Key: 1-63 characters of a-z, 0-9 and `_`, starting with a letter.
    key: String,
    /// Display label.
    label: String,
    /// Type (cannot change later).
    field_type: CustomFieldType,
    /// Whether records must have a value (default false).
    required: Option<bool>,
    /// Choices of `select` and `multi_select`.
    options: Option<Vec<String>>,
    /// Value given to new records without one.
    default_value: Option<Value>,
}

/// A change to a custom field definition; absent fields are kept.
#[derive(ToSchema)]
pub(crate) struct CustomFieldPatch {
    /// Display label.
    label: Option<String>,
    /// Whether records must have a value.
    required: Option<bool>,
    /// Choices (existing values must stay valid).
    options: Option<Vec<String>>,
    /// Default value; `null` removes it.
    default_value: Option<Value>,
    /// Archive or unarchive.
    archived: Option<bool>,
}

/// Create a new record from the lead, or link an existing one: `"create"` or
/// `{"existing": "<id>"}`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Target {
    /// Create it from the lead.
    Create,
    /// Link this existing record (live, same organization); the lead fills its empty fields.
    Existing(Uuid),
}

/// The opportunity a conversion creates.
#[derive(ToSchema)]
pub(crate) struct ConvertOpportunity {
    /// Name; from the lead when absent.
    name: Option<String>,
    /// Amount in minor units.
    amount_minor: Option<i64>,
    /// ISO 4217 currency (required with an amount).
    currency: Option<String>,
    /// Expected close date.
    expected_close_date: Option<NaiveDate>,
    /// Pipeline; the default when absent.
    pipeline_id: Option<Uuid>,
    /// Stage; the pipeline's first open stage when absent.
    stage_id: Option<Uuid>,
}

/// How to convert a lead.
#[derive(ToSchema)]
pub(crate) struct ConvertLead {
    /// The account (default `create`).
    account: Option<Target>,
    /// The contact (default `create`).
    contact: Option<Target>,
    /// An opportunity to create too, if any.
    opportunity: Option<ConvertOpportunity>,
}

/// Whether the opportunity was won or lost.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Moves it to its pipeline's won stage.
    Won,
    /// Moves it to its pipeline's lost stage.
    Lost,
}

/// How an opportunity closed.
#[derive(ToSchema)]
pub(crate) struct CloseOpportunity {
    /// Won or lost.
    outcome: Outcome,
    /// Why it was lost (only with `lost`; up to 1,000 characters).
    reason: Option<String>,
}

/// The kind of a timeline entry.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum TimelineItemType {
    /// An activity attached to the record; the activity's fields follow.
    Activity,
    /// An event-log entry: `action`, `actor_kind`, `actor_id`, `changes`, `occurred_at`…
    Event,
}

/// One entry of a timeline: `type`, then the activity's or the event's fields.
#[derive(ToSchema)]
pub(crate) struct TimelineItem {
    /// What the entry is.
    r#type: TimelineItemType,
    /// Its id (UUIDv7: ids order entries in time).
    id: Uuid,
}

/// One page of a timeline, newest first.
#[derive(ToSchema)]
pub(crate) struct Timeline {
    /// The entries.
    data: Vec<TimelineItem>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// What an erasure (GDPR) removed; only a tombstone event remains of the record.
#[derive(ToSchema)]
pub(crate) struct Erasure {
    /// `contact` or `lead`.
    entity: String,
    /// The erased record's id.
    id: Uuid,
    /// When.
    erased_at: DateTime<Utc>,
    /// Records that linked to it and now link to nothing.
    unlinked: u64,
    /// Activities attached to it, removed with it.
    activities_removed: u64,
    /// Event-log entries whose changes were blanked.
    events_scrubbed: u64,
}
