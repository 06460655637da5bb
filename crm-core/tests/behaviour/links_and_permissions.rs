//! Links between records stay inside one organization; the permission matrix for the trash;
//! who may change a record's owner.

use crm_core::{
    AccountId, AccountPatch, ActivityKind, ActivityPatch, EntityKind, Error, NewAccount,
    NewActivity, NewContact, NewUser, Role, TenantContext, UserId,
};

use serde_json::json;

use crate::harness::{Fixtures as _, Org, assert_not_found};

async fn links_only_reach_live_records_of_the_same_organization(crm: crm_core::Crm) {
    let acme = Org::new(&crm, "Acme").await;
    let other = Org::new(&crm, "Other").await;
    let t = acme.admin(&crm);
    let mine = t.account("Mine").await;
    let theirs = other.admin(&crm).account("Theirs").await;

    let contact = |account_id: AccountId| NewContact {
        last_name: Some("Doe".into()),
        account_id: Some(account_id),
        ..Default::default()
    };
    let c = t.contacts().create(contact(mine.id)).await.unwrap();
    assert_eq!(c.account_id, Some(mine.id));

    // Another organization's account is "not found", exactly like a random id.
    for target in [theirs.id, AccountId::new()] {
        let err = t.contacts().create(contact(target)).await.unwrap_err();
        assert!(
            matches!(err, Error::NotFound { entity: "account", id: Some(id) } if id == target.uuid()),
            "{err:?}"
        );
        let err = t
            .update_json(c.id, json!({ "account_id": target }))
            .await
            .unwrap_err();
        assert_not_found(&err, "account");
    }
    // So is a user of another organization as owner.
    let err = t
        .update_json(mine.id, json!({ "owner_id": other.admin }))
        .await
        .unwrap_err();
    assert_not_found(&err, "user");
    let owned = t
        .update_json(mine.id, json!({ "owner_id": acme.user }))
        .await
        .unwrap();
    assert_eq!(owned.owner_id, Some(acme.user));

    // A soft-deleted account cannot be linked to, and a linked account cannot be purged.
    let gone = t.account("Gone").await;
    t.accounts().delete(gone.id).await.unwrap();
    assert!(matches!(
        t.contacts().create(contact(gone.id)).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        t.accounts().purge(mine.id).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        t.contacts().get(c.id).await.unwrap().account_id,
        Some(mine.id),
        "nothing lost"
    );
}

async fn users_trash_only_their_own_records(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let (admin, user) = (org.admin(&crm), org.user(&crm));
    let by_admin = admin.account("Admin's").await;
    let by_user = user.account("User's").await;
    let owned_by_user = admin
        .accounts()
        .create(NewAccount {
            name: "Owned".into(),
            owner_id: Some(org.user),
            ..Default::default()
        })
        .await
        .unwrap();

    assert!(matches!(
        user.accounts().delete(by_admin.id).await,
        Err(Error::Forbidden(_))
    ));
    user.accounts().delete(by_user.id).await.unwrap();
    user.accounts().restore(by_user.id).await.unwrap();
    user.accounts().delete(owned_by_user.id).await.unwrap();
    user.accounts().restore(owned_by_user.id).await.unwrap();
    // Everyone may update records of their organization.
    user.accounts()
        .update(
            by_admin.id,
            AccountPatch {
                city: Some(Some("Lyon".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    admin.accounts().delete(by_admin.id).await.unwrap();
    assert!(matches!(
        user.accounts().restore(by_admin.id).await,
        Err(Error::Forbidden(_))
    ));
    // Purge is for company admins only.
    assert!(matches!(
        user.accounts().purge(by_user.id).await,
        Err(Error::Forbidden(_))
    ));
    admin.accounts().purge(by_user.id).await.unwrap();
    let _: UserId = org.user;
}

fn is_not_owner<T: std::fmt::Debug>(out: &Result<T, Error>) -> bool {
    matches!(out, Err(Error::Forbidden(r)) if r.code == "not_owner")
}

async fn only_admins_and_owners_change_the_owner(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let (admin, user) = (org.admin(&crm), org.user(&crm));
    let colleague = admin
        .users()
        .create(NewUser {
            email: "colleague@example.com".into(),
            name: "Colleague".into(),
            password: None,
            role: Role::User,
        })
        .await
        .unwrap()
        .id;
    let colleague_t = crm.tenant(&TenantContext::user(org.id, colleague, Role::User));
    let owner = |id: UserId| AccountPatch {
        owner_id: Some(Some(id)),
        ..Default::default()
    };

    // The attack: make oneself the owner of someone else's record, then delete it.
    let unowned = admin.account("Unowned").await;
    let theirs = admin
        .accounts()
        .create(NewAccount {
            name: "Theirs".into(),
            owner_id: Some(colleague),
            ..Default::default()
        })
        .await
        .unwrap();
    for id in [unowned.id, theirs.id] {
        assert!(is_not_owner(
            &user.accounts().update(id, owner(org.user)).await
        ));
        assert!(matches!(
            user.accounts().delete(id).await,
            Err(Error::Forbidden(_))
        ));
    }
    let clear = AccountPatch {
        owner_id: Some(None),
        ..Default::default()
    };
    assert!(is_not_owner(
        &user.accounts().update(theirs.id, clear).await
    ));
    // Other edits, and a patch naming the same owner, stay open to everyone.
    let same = AccountPatch {
        owner_id: Some(Some(colleague)),
        city: Some(Some("Lyon".into())),
        ..Default::default()
    };
    let edited = user.accounts().update(theirs.id, same).await.unwrap();
    assert_eq!(
        (edited.owner_id, edited.city.as_deref()),
        (Some(colleague), Some("Lyon"))
    );

    // The current owner hands the record over; then it is no longer theirs to give.
    let handed = colleague_t
        .accounts()
        .update(theirs.id, owner(org.user))
        .await
        .unwrap();
    assert_eq!(handed.owner_id, Some(org.user));
    assert!(is_not_owner(
        &colleague_t
            .accounts()
            .update(theirs.id, owner(colleague))
            .await
    ));
    // Company admins reassign anything.
    let reassigned = admin
        .accounts()
        .update(unowned.id, owner(org.user))
        .await
        .unwrap();
    assert_eq!(reassigned.owner_id, Some(org.user));
    user.accounts().delete(unowned.id).await.unwrap();

    // The same rule for every entity's owner column: an activity's assignee.
    let task = admin
        .activities()
        .create(NewActivity {
            kind: ActivityKind::Task,
            subject: "Call back".into(),
            related_entity: EntityKind::Account,
            related_id: theirs.id.uuid(),
            assignee_id: Some(colleague),
            ..Default::default()
        })
        .await
        .unwrap();
    let assign = |id: UserId| ActivityPatch {
        assignee_id: Some(Some(id)),
        ..Default::default()
    };
    assert!(is_not_owner(
        &user.activities().update(task.id, assign(org.user)).await
    ));
    colleague_t
        .activities()
        .update(task.id, assign(org.user))
        .await
        .unwrap();

    // A create may name any user of the organization as owner (assigning work); the creator
    // may trash it, but not take it back.
    let assigned = user
        .accounts()
        .create(NewAccount {
            name: "For a colleague".into(),
            owner_id: Some(colleague),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(assigned.owner_id, Some(colleague));
    assert!(is_not_owner(
        &user.accounts().update(assigned.id, owner(org.user)).await
    ));
    user.accounts().delete(assigned.id).await.unwrap();
}

crate::on_both_backends!(
    links_only_reach_live_records_of_the_same_organization,
    users_trash_only_their_own_records,
    only_admins_and_owners_change_the_owner
);
