//! Activities: notes, tasks, calls and meetings attached to any record of the organization.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::entities::EntityKind;
use crate::error::{Error, Result};
use crate::events::Action;
use crate::id::Id;
use crate::record::{Entity, Kind, Operation, Record, Records};
use crate::time::now;
use crate::users::UserId;
use crate::validation::Validator;

/// The id of an activity.
pub type ActivityId = Id<Activity>;

crate::text_enum! {
    /// What kind of activity.
    pub enum ActivityKind {
        /// A note.
        Note = "note",
        /// Something to do, with a due time, an assignee and completion.
        Task = "task",
        /// A phone call.
        Call = "call",
        /// A meeting.
        Meeting = "meeting",
    }
}

crate::record_type! {
    /// A note, task, call or meeting about one record.
    pub struct Activity / NewActivity / ActivityPatch {
        /// Note, task, call or meeting (default note).
        kind: ActivityKind [sortable],
        /// Subject line (required).
        subject: String [sortable, max_length(500)],
        /// Body text.
        body: Option<String> [max_length(100_000)],
        /// The kind of record it is attached to (any entity with a timeline: not an activity).
        #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::attachable_kinds))]
        related_entity: EntityKind [only(EntityKind::WITH_TIMELINE)],
        /// The record it is attached to (live, same organization).
        related_id: Uuid,
        /// When a task is due.
        due_at: Option<DateTime<Utc>> [sortable],
        /// When a call or meeting took place.
        occurred_at: Option<DateTime<Utc>>,
        /// How long a call or meeting took.
        duration_minutes: Option<i64> [range(0, 1_000_000)],
        /// The user a task is assigned to.
        assignee_id: Option<UserId> [owner],
    }
    readonly {
        /// When a task was completed.
        completed_at: Option<DateTime<Utc>>,
    }
}

impl Entity for Activity {
    const KIND: EntityKind = EntityKind::Activity;
    const ANY_LINK: Option<(&'static str, &'static str)> = Some(("related_entity", "related_id"));

    fn validate(&self, v: &mut Validator) {
        let task = self.kind == ActivityKind::Task;
        v.check(
            task || self.due_at.is_none(),
            "due_at",
            "not_allowed",
            "only tasks have a due time",
        );
        v.check(
            task || self.assignee_id.is_none(),
            "assignee_id",
            "not_allowed",
            "only tasks have an assignee",
        );
    }

    /// The record it is attached to must be a live record of the organization: another
    /// organization's id is "not found", as everywhere.
    fn links(&self) -> Vec<(Kind, Uuid)> {
        let kind = Kind::Ref {
            table: self.related_entity.table(),
            entity: self.related_entity.name(),
            soft_delete: true,
        };
        vec![(kind, self.related_id)]
    }
}

impl Records<'_, Activity> {
    /// Marks a task done.
    pub async fn complete(&self, id: ActivityId) -> Result<Record<Activity>> {
        self.set_completed(id, Action::Completed, Some(now())).await
    }

    /// Reopens a completed task.
    pub async fn reopen(&self, id: ActivityId) -> Result<Record<Activity>> {
        self.set_completed(id, Action::Reopened, None).await
    }

    async fn set_completed(
        &self,
        id: ActivityId,
        action: Action,
        at: Option<DateTime<Utc>>,
    ) -> Result<Record<Activity>> {
        self.change(id, None, Operation::Verb(action), action, move |current| {
            if current.kind != ActivityKind::Task {
                return Err(Error::conflict(
                    "not_a_task",
                    format!("activity {id} is a {}, not a task", current.kind),
                ));
            }
            if current.completed_at.is_some() == at.is_some() {
                let state = if at.is_some() { "completed" } else { "open" };
                return Err(Error::conflict(
                    "wrong_state",
                    format!("task {id} is already {state}"),
                ));
            }
            let mut a = current.fields.clone();
            a.completed_at = at;
            Ok((a, current.custom_fields.clone()))
        })
        .await
    }
}
