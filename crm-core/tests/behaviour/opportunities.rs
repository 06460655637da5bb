//! Pipelines, opportunities moving through stages, closing, and the pipeline summary.

use crm_core::{
    Action, Error, NewOpportunity, NewPipeline, NewStage, OpportunityPatch, OpportunityStatus,
    StageKind,
};

use serde_json::json;

use crate::harness::{Fixtures as _, Org};

fn deal(name: &str, amount: i64, currency: &str) -> NewOpportunity {
    NewOpportunity {
        name: name.into(),
        amount_minor: Some(amount),
        currency: Some(currency.into()),
        ..Default::default()
    }
}

async fn default_pipeline_stages_and_closing(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    let pipelines = t.pipelines().list().await.unwrap();
    assert_eq!(
        pipelines.len(),
        1,
        "every new organization has a default pipeline"
    );
    let p = &pipelines[0];
    assert!(p.is_default);
    assert_eq!(
        p.stages.iter().map(|s| s.position).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );

    let account = t.account("Globex").await;
    let mut new = deal("Big one", 1_000_000, "EUR");
    new.account_id = Some(account.id);
    new.expected_close_date = Some("2027-01-31".parse().unwrap());
    let o = t.opportunities().create(new).await.unwrap();
    assert_eq!(o.pipeline_id, Some(p.id));
    assert_eq!(o.stage_id, Some(p.stages[0].id), "first stage by default");
    assert_eq!(
        (o.status, o.probability),
        (OpportunityStatus::Open, Some(10))
    );

    // A stage change is recorded as such, with before and after.
    let o = t
        .update_json(o.id, json!({ "stage_id": p.stages[2].id }))
        .await
        .unwrap();
    assert_eq!(o.probability, Some(50));
    let events = t.events().for_record(o.id, 10, None).await.unwrap();
    assert_eq!(events.data[0].action, Action::StageChanged);
    assert_eq!(
        events.data[0].changes["stage_id"]["before"],
        serde_json::json!(p.stages[0].id)
    );

    let won = t.opportunities().close_won(o.id).await.unwrap();
    assert_eq!(won.status, OpportunityStatus::Won);
    assert_eq!(
        won.stage_id,
        p.stages
            .iter()
            .find(|s| s.kind == StageKind::Won)
            .map(|s| s.id)
    );
    assert!(won.closed_at.is_some());
    assert!(matches!(
        t.opportunities().close_lost(o.id, None).await,
        Err(Error::Conflict(_))
    ));

    let o2 = t
        .opportunities()
        .create(deal("Lost one", 5, "EUR"))
        .await
        .unwrap();
    let lost = t
        .opportunities()
        .close_lost(o2.id, Some("Too expensive".into()))
        .await
        .unwrap();
    assert_eq!(
        (lost.status, lost.lost_reason.as_deref()),
        (OpportunityStatus::Lost, Some("Too expensive"))
    );
    // Moving back to an open stage reopens it.
    let reopened = t
        .update_json(o2.id, json!({ "stage_id": p.stages[1].id }))
        .await
        .unwrap();
    assert_eq!(
        (
            reopened.status,
            reopened.closed_at,
            reopened.lost_reason.clone()
        ),
        (OpportunityStatus::Open, None, None)
    );
}

async fn stages_must_belong_to_the_pipeline(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Other").await;
    let t = org.admin(&crm);
    let stages = vec![
        NewStage {
            name: "Talk".into(),
            probability: 20,
            kind: StageKind::Open,
        },
        NewStage {
            name: "Yes".into(),
            probability: 100,
            kind: StageKind::Won,
        },
        NewStage {
            name: "No".into(),
            probability: 0,
            kind: StageKind::Lost,
        },
    ];
    let partners = t
        .pipelines()
        .create(NewPipeline {
            name: "Partners".into(),
            stages,
        })
        .await
        .unwrap();
    let default = t
        .pipelines()
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.is_default)
        .unwrap();

    let mut new = deal("Mismatch", 1, "EUR");
    new.pipeline_id = Some(partners.id);
    new.stage_id = Some(default.stages[1].id);
    let err = t.opportunities().create(new).await.unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "stage_id"),
        "{err:?}"
    );

    // Another organization's pipeline does not exist here.
    let theirs = other
        .admin(&crm)
        .pipelines()
        .list()
        .await
        .unwrap()
        .remove(0);
    let mut new = deal("Foreign", 1, "EUR");
    new.pipeline_id = Some(theirs.id);
    let err = t.opportunities().create(new).await.unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e[0].field == "pipeline_id"),
        "{err:?}"
    );
    assert!(matches!(
        t.pipelines().get(theirs.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        t.pipelines().summary(theirs.id).await,
        Err(Error::NotFound { .. })
    ));

    // Only admins create pipelines; a pipeline needs open, won and lost stages.
    let stageless = || NewPipeline {
        name: "X".into(),
        stages: vec![],
    };
    let err = org.user(&crm).pipelines().create(stageless()).await;
    assert!(matches!(err, Err(Error::Forbidden(_))), "{err:?}");
    let err = t.pipelines().create(stageless()).await;
    assert!(matches!(err, Err(Error::Validation(_))), "{err:?}");
}

async fn pipeline_summary(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.user(&crm);
    let p = t.pipelines().list().await.unwrap().remove(0);
    for (name, amount, currency) in [("a", 100, "EUR"), ("b", 250, "EUR"), ("c", 70, "USD")] {
        t.opportunities()
            .create(deal(name, amount, currency))
            .await
            .unwrap();
    }
    let moved = t
        .opportunities()
        .create(deal("d", 1_000, "EUR"))
        .await
        .unwrap();
    t.opportunities()
        .update(
            moved.id,
            OpportunityPatch {
                stage_id: Some(Some(p.stages[3].id)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gone = t.opportunities().create(deal("e", 9, "EUR")).await.unwrap();
    t.opportunities().delete(gone.id).await.unwrap();

    let summary = t.pipelines().summary(p.id).await.unwrap();
    assert_eq!(summary.stages.len(), 6);
    let first = &summary.stages[0];
    assert_eq!(first.count, 3, "trashed opportunities do not count");
    let amounts: Vec<_> = first
        .amounts
        .iter()
        .map(|a| (a.currency.as_deref(), a.amount_minor))
        .collect();
    assert_eq!(
        amounts,
        [(Some("EUR"), 350), (Some("USD"), 70)],
        "never adds currencies together"
    );
    assert_eq!(
        (
            summary.stages[3].count,
            summary.stages[3].amounts[0].amount_minor
        ),
        (1, 1_000)
    );
    assert_eq!(summary.stages[1].count, 0);
}

crate::on_both_backends!(
    default_pipeline_stages_and_closing,
    stages_must_belong_to_the_pipeline,
    pipeline_summary
);
