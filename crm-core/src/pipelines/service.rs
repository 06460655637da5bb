//! [`Pipelines`]: the service that creates and reads pipelines and summarizes them.

use serde_json::{Map, json};
use uuid::Uuid;

use super::model::{
    NewPipeline, Pipeline, PipelineId, PipelineSummary, Stage, StageAmount, StageId, StageKind,
    StageSummary,
};
use crate::access::rules::{FieldRule, Need};
use crate::entities::EntityKind;
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::record::reach_scope;
use crate::storage::{Conn, Sql};
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::Validator;

impl Tenant {
    /// Pipelines and their stages.
    pub fn pipelines(&self) -> Pipelines<'_> {
        Pipelines::new(self)
    }
}

/// The pipelines of one organization. Reached through [`Tenant::pipelines`].
#[derive(Debug, Clone, Copy)]
pub struct Pipelines<'t> {
    tenant: &'t Tenant,
}

impl<'t> Pipelines<'t> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self { tenant }
    }

    fn org(&self) -> OrganizationId {
        self.tenant.context().organization_id()
    }

    /// Every pipeline with its stages, the default first.
    pub async fn list(&self) -> Result<Vec<Pipeline>> {
        self.tenant.require_settings().await?;
        let mut s = self.tenant.session().await?;
        let mut q = Sql::new("select * from pipelines where organization_id = ");
        q.bind(self.org())
            .push(" order by is_default desc, name, id");
        let mut pipelines: Vec<Pipeline> = s.conn().fetch_all(&q).await?;
        let mut q = Sql::new("select * from pipeline_stages where organization_id = ");
        q.bind(self.org()).push(" order by pipeline_id, position");
        let stages: Vec<Stage> = s.conn().fetch_all(&q).await?;
        for p in &mut pipelines {
            p.stages = stages
                .iter()
                .filter(|st| st.pipeline_id == p.id)
                .cloned()
                .collect();
        }
        Ok(pipelines)
    }

    /// One pipeline with its stages.
    pub async fn get(&self, id: PipelineId) -> Result<Pipeline> {
        self.tenant.require_settings().await?;
        let mut s = self.tenant.session().await?;
        load(&mut s.conn(), self.org(), Some(id)).await
    }

    /// Creates a pipeline (company admins).
    pub async fn create(&self, new: NewPipeline) -> Result<Pipeline> {
        crate::access::roles::require_admin(self.tenant.context(), "create pipelines")?;
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let p = insert(&mut tx.conn(), self.org(), &new, false).await?;
            let mut changes = Map::new();
            changes.insert("name".into(), json!({ "after": p.name }));
            events::append(
                &mut tx.conn(),
                self.tenant.context(),
                events::PIPELINE,
                p.id.uuid(),
                Action::Created,
                changes,
            )
            .await?;
            Ok(p)
        }
        .await;
        tx.settle(out).await
    }

    /// Count and amount of live opportunities per stage of pipeline `id`.
    pub async fn summary(&self, id: PipelineId) -> Result<PipelineSummary> {
        self.tenant.require_settings().await?;
        // The opportunities the caller reaches, and their amounts unless hidden from them.
        let grants = self.tenant.grants().await?;
        let table = EntityKind::Opportunity.table();
        grants.require_some(table, Need::Read)?;
        let amounts_hidden = grants.field_rule(table, "amount_minor") == Some(FieldRule::Hidden);
        let mut s = self.tenant.reading(&grants).await?;
        let pipeline = load(&mut s.conn(), self.org(), Some(id)).await?;
        // Summed in two halves so that no sum overflows 64 bits in the database (amounts are
        // capped at `MAX_MINOR`, but a stage may hold any number of them): the high and low 32
        // bits, put back together in 128 bits below.
        let mut q = Sql::new(
            "select stage_id, currency, count(*) as n, \
             cast(coalesce(sum(amount_minor / 4294967296), 0) as bigint) as high, \
             cast(coalesce(sum(amount_minor % 4294967296), 0) as bigint) as low \
             from opportunities where organization_id = ",
        );
        q.bind(self.org()).push(" and pipeline_id = ").bind(id);
        q.push(" and not is_deleted");
        let kind = EntityKind::Opportunity;
        let scope = reach_scope(table, table, kind.name(), kind.columns());
        grants.push_reach(&mut q, scope, Need::Read);
        q.push(" group by stage_id, currency order by currency");
        let rows: Vec<(Uuid, Option<String>, i64, i64, i64)> = s.conn().fetch_all(&q).await?;
        let stages = pipeline
            .stages
            .iter()
            .map(|stage| {
                let mine = rows.iter().filter(|r| r.0 == stage.id.uuid());
                StageSummary {
                    stage: stage.clone(),
                    count: mine.clone().map(|r| r.2).sum(),
                    amounts: mine
                        .filter(|_| !amounts_hidden)
                        .map(|r| StageAmount {
                            currency: r.1.clone(),
                            amount_minor: joined_sum(r.3, r.4),
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(PipelineSummary { pipeline, stages })
    }
}

/// The sum of 64-bit amounts summed as high and low 32-bit halves, saturating at `i64::MAX`
/// (reached only by more than 9,000 amounts at the `MAX_MINOR` cap in one stage and currency).
fn joined_sum(high: i64, low: i64) -> i64 {
    let sum = (i128::from(high) << 32) + i128::from(low);
    i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX })
}

/// [`load`] through the cache of `tenant`'s [`crate::Crm`].
pub(crate) async fn load_cached(
    tenant: &Tenant,
    conn: &mut Conn<'_>,
    id: Option<PipelineId>,
) -> Result<std::sync::Arc<Pipeline>> {
    let key = (tenant.context().organization_id(), id);
    if let Some(p) = tenant.crm().pipeline_cache().get(&key) {
        return Ok(p);
    }
    let p = std::sync::Arc::new(load(conn, key.0, id).await?);
    tenant.crm().pipeline_cache().insert(key, p.clone());
    Ok(p)
}

/// Pipeline `id` (the default one when `None`) with its stages, read on `conn`.
pub(crate) async fn load(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    id: Option<PipelineId>,
) -> Result<Pipeline> {
    let mut q = Sql::new("select * from pipelines where organization_id = ");
    q.bind(org);
    match id {
        Some(id) => q.push(" and id = ").bind(id),
        None => q.push(" and is_default"),
    };
    let mut p: Pipeline = conn.fetch_optional(&q).await?.ok_or(Error::NotFound {
        entity: "pipeline",
        id: id.map(Id::uuid),
    })?;
    let mut q = Sql::new("select * from pipeline_stages where organization_id = ");
    q.bind(org)
        .push(" and pipeline_id = ")
        .bind(p.id)
        .push(" order by position");
    p.stages = conn.fetch_all(&q).await?;
    Ok(p)
}

/// Inserts a pipeline and its stages on `conn` (inside the caller's transaction).
pub(crate) async fn insert(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    new: &NewPipeline,
    is_default: bool,
) -> Result<Pipeline> {
    let mut v = Validator::new();
    v.text("name", &new.name, true, 200);
    v.check(
        (1..=50).contains(&new.stages.len()),
        "stages",
        "invalid_length",
        "a pipeline has 1 to 50 stages",
    );
    for kind in StageKind::ALL {
        v.check(
            new.stages.iter().any(|s| s.kind == *kind),
            "stages",
            "missing_kind",
            &format!("a pipeline needs a {kind} stage"),
        );
    }
    for (i, s) in new.stages.iter().enumerate() {
        v.text(&format!("stages[{i}].name"), &s.name, true, 200);
        v.check(
            (0..=100).contains(&s.probability),
            &format!("stages[{i}].probability"),
            "out_of_range",
            "must be between 0 and 100",
        );
    }
    v.finish()?;

    let at = now();
    let mut p = Pipeline {
        id: PipelineId::new(),
        organization_id: org,
        name: new.name.trim().into(),
        is_default,
        created_at: at,
        updated_at: at,
        version: 1,
        stages: Vec::new(),
    };
    let mut q = Sql::new(
        "insert into pipelines (organization_id, id, name, is_default, created_at, updated_at, version) values (",
    );
    q.bind(org)
        .push(", ")
        .bind(p.id)
        .push(", ")
        .bind(p.name.as_str());
    q.push(", ")
        .bind(is_default)
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(at)
        .push(", 1)");
    conn.execute(&q).await?;
    let mut q = Sql::new(
        "insert into pipeline_stages (organization_id, id, pipeline_id, name, position, probability, kind) values ",
    );
    for (i, s) in new.stages.iter().enumerate() {
        let stage = Stage {
            id: StageId::new(),
            pipeline_id: p.id,
            name: s.name.trim().into(),
            position: i32::try_from(i).unwrap_or(i32::MAX),
            probability: s.probability,
            kind: s.kind,
        };
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(org)
            .push(", ")
            .bind(stage.id)
            .push(", ")
            .bind(p.id);
        q.push(", ")
            .bind(stage.name.as_str())
            .push(", ")
            .bind(i64::from(stage.position));
        q.push(", ")
            .bind(stage.probability)
            .push(", ")
            .bind(stage.kind.as_str())
            .push(")");
        p.stages.push(stage);
    }
    conn.execute(&q).await?;
    Ok(p)
}
