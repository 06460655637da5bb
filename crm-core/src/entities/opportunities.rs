//! Opportunities: deals moving through a pipeline's stages, won or lost.

use chrono::{DateTime, NaiveDate, Utc};

use crate::entities::EntityKind;
use crate::entities::{AccountId, ContactId};
use crate::error::{Error, Result};
use crate::events::Action;
use crate::id::Id;
use crate::money::{MAX_MINOR, Money};
use crate::pipelines::{self, PipelineId, StageId, StageKind};
use crate::record::{Entity, Operation, Record, Records, WriteContext};
use crate::time::now;
use crate::users::UserId;
use crate::validation::Validator;

/// The id of an opportunity.
pub type OpportunityId = Id<Opportunity>;

crate::text_enum! {
    /// Whether an opportunity is still being worked; follows its stage's kind.
    pub enum OpportunityStatus {
        /// In an open stage.
        Open = "open",
        /// In a won stage.
        Won = "won",
        /// In a lost stage.
        Lost = "lost",
    }
}

crate::record_type! {
    /// A potential deal with an account.
    pub struct Opportunity / NewOpportunity / OpportunityPatch {
        /// Name (required).
        name: String [sortable, max_length(200), title],
        /// The account (same organization).
        account_id: Option<AccountId>,
        /// The main contact (same organization).
        primary_contact_id: Option<ContactId>,
        /// The user working the deal.
        owner_id: Option<UserId> [owner],
        /// Pipeline; the organization's default when absent.
        pipeline_id: Option<PipelineId>,
        /// Stage of that pipeline; its first stage when absent. Moving to a won or lost stage
        /// closes the opportunity; back to an open one reopens it.
        stage_id: Option<StageId>,
        /// Amount in minor units of `currency`.
        amount_minor: Option<i64> [sortable, range(0, MAX_MINOR)],
        /// ISO 4217 currency of the amount.
        currency: Option<String> [currency],
        /// When it is expected to close.
        expected_close_date: Option<NaiveDate> [sortable],
        /// Free text.
        description: Option<String> [max_length(10_000), searchable],
    }
    readonly {
        /// Open, won or lost, from the stage.
        status: OpportunityStatus [sortable],
        /// Win probability in percent, from the stage.
        probability: Option<i64>,
        /// When it was won or lost.
        closed_at: Option<DateTime<Utc>>,
        /// Why it was lost.
        lost_reason: Option<String> [max_length(1_000)],
    }
}

impl Opportunity {
    /// Its amount, when it has one.
    pub fn amount(&self) -> Option<Money> {
        Money::from_columns(self.amount_minor, self.currency.as_deref())
    }
}

impl Entity for Opportunity {
    const KIND: EntityKind = EntityKind::Opportunity;

    fn validate(&self, v: &mut Validator) {
        v.check(
            self.amount_minor.is_none() || self.currency.is_some(),
            "currency",
            "required",
            "is required with amount_minor",
        );
    }

    /// Resolves the pipeline and stage (defaults, stage belongs to pipeline, the won or lost
    /// stage for a close), then derives status, probability and `closed_at` from the stage.
    async fn before_write(
        &mut self,
        w: &mut WriteContext<'_, '_>,
        before: Option<&Self>,
    ) -> Result<()> {
        let closing = matches!(w.operation(), Operation::Verb(Action::Closed));
        let moved =
            before.is_none_or(|b| b.pipeline_id != self.pipeline_id || b.stage_id != self.stage_id);
        if !moved && !closing {
            return Ok(());
        }
        let tenant = w.tenant();
        let pipeline = pipelines::load_cached(tenant, &mut w.conn(), self.pipeline_id)
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } if self.pipeline_id.is_some() => Error::invalid(
                    "pipeline_id",
                    "not_found",
                    "no such pipeline in this organization",
                ),
                other => other,
            })?;
        self.pipeline_id = Some(pipeline.id);
        let stage = if closing {
            let kind = if self.status == OpportunityStatus::Won {
                StageKind::Won
            } else {
                StageKind::Lost
            };
            pipeline.stages.iter().find(|s| s.kind == kind)
        } else {
            match self.stage_id {
                Some(id) => pipeline.stages.iter().find(|s| s.id == id),
                None => pipeline
                    .stages
                    .iter()
                    .find(|s| s.kind == StageKind::Open)
                    .or(pipeline.stages.first()),
            }
        };
        let Some(stage) = stage.cloned() else {
            return Err(Error::invalid(
                "stage_id",
                "not_in_pipeline",
                "the stage is not a stage of this opportunity's pipeline",
            ));
        };
        self.stage_id = Some(stage.id);
        self.probability = Some(stage.probability);
        self.status = match stage.kind {
            StageKind::Open => OpportunityStatus::Open,
            StageKind::Won => OpportunityStatus::Won,
            StageKind::Lost => OpportunityStatus::Lost,
        };
        let was_open = before.is_none_or(|b| b.status == OpportunityStatus::Open);
        match (self.status, was_open) {
            (OpportunityStatus::Open, _) => {
                self.closed_at = None;
                self.lost_reason = None;
            }
            (_, true) => self.closed_at = Some(now()),
            (_, false) => {}
        }
        if self.status != OpportunityStatus::Lost {
            self.lost_reason = None;
        }
        if before.is_some_and(|b| b.stage_id != self.stage_id) && !closing {
            w.set_action(Action::StageChanged);
        }
        Ok(())
    }
}

impl Records<'_, Opportunity> {
    /// Closes the opportunity as won: it moves to its pipeline's won stage and gets `closed_at`.
    pub async fn close_won(&self, id: OpportunityId) -> Result<Record<Opportunity>> {
        self.close(id, OpportunityStatus::Won, None).await
    }

    /// Closes the opportunity as lost, with a reason.
    pub async fn close_lost(
        &self,
        id: OpportunityId,
        reason: Option<String>,
    ) -> Result<Record<Opportunity>> {
        if let Some(r) = &reason {
            let mut v = Validator::new();
            v.text("lost_reason", r, false, 1000);
            v.finish()?;
        }
        self.close(id, OpportunityStatus::Lost, reason).await
    }

    async fn close(
        &self,
        id: OpportunityId,
        status: OpportunityStatus,
        reason: Option<String>,
    ) -> Result<Record<Opportunity>> {
        self.change(
            id,
            None,
            Operation::Verb(Action::Closed),
            Action::Closed,
            move |current| {
                if current.status != OpportunityStatus::Open {
                    return Err(Error::conflict(
                        "wrong_state",
                        format!("opportunity {id} is already {}", current.status),
                    ));
                }
                let mut o = current.fields.clone();
                o.status = status;
                o.lost_reason = reason.clone();
                Ok((o, current.custom_fields.clone()))
            },
        )
        .await
    }
}
