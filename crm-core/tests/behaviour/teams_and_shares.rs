//! Teams and record shares: who manages them, and how they widen what a restricted user sees
//! and changes.

use crm_core::access::{
    EntityAccess, Grantee, NewPermissionSet, NewTeam, Reach, Share, ShareAccess, Team, TeamPatch,
};
use crm_core::{
    Action, Contact, Crm, EntityKind, Error, Id, ListQuery, NewUser, Role, Tenant, TenantContext,
    UserId,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Fixtures, Org, assert_not_found};

/// A new user of `org` with `role`.
async fn person(crm: &Crm, org: &Org, name: &str, role: Role) -> UserId {
    crm.tenant(&TenantContext::system(org.id))
        .users()
        .create(NewUser {
            email: format!("{name}@example.com"),
            name: name.to_owned(),
            password: None,
            role,
        })
        .await
        .unwrap()
        .id
}

fn as_user(crm: &Crm, org: &Org, user: UserId) -> Tenant {
    crm.tenant(&TenantContext::user(org.id, user, Role::User))
}

/// Gives `user` a permission set reaching contacts with `read` and `write`.
async fn restrict(crm: &Crm, org: &Org, user: UserId, read: Reach, write: Reach) {
    let admin = org.admin(crm);
    let set = admin
        .permission_sets()
        .create(NewPermissionSet {
            name: format!("contacts {read} {write} {}", Uuid::now_v7().simple()),
            entities: [(
                "contacts".to_owned(),
                EntityAccess {
                    read,
                    write,
                    delete: Reach::None,
                },
            )]
            .into(),
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .permission_sets()
        .assign_to_user(user, Some(set.id))
        .await
        .unwrap();
}

/// The ids of the contacts `t` lists.
async fn visible(t: &Tenant) -> Vec<Id<Contact>> {
    let mut ids: Vec<_> = t
        .contacts()
        .list(&ListQuery::default())
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

/// A new team of `t`'s organization named `name`.
async fn team(t: &Tenant, name: &str) -> Team {
    t.teams()
        .create(NewTeam {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Shares contact `c` with `grantee` for `access`, as `t`.
async fn share(t: &Tenant, c: Id<Contact>, grantee: Grantee, access: ShareAccess) -> Share {
    t.shares()
        .share(EntityKind::Contact, c.uuid(), grantee, access)
        .await
        .unwrap()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

async fn teams_are_managed_by_admins_with_versions(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let ann = person(&crm, &org, "ann", Role::User).await;
    let team = admin
        .teams()
        .create(NewTeam {
            name: "West".into(),
            description: "West coast".into(),
            manager_id: Some(org.user),
        })
        .await
        .unwrap();
    assert_eq!(
        (team.name.as_str(), team.manager_id, team.version),
        ("West", Some(org.user), 1)
    );
    assert_eq!(admin.teams().get(team.id).await.unwrap(), team);
    assert_eq!(admin.teams().list().await.unwrap(), vec![team.clone()]);

    // Names are unique ignoring case; managers and members are active users of the org.
    let dup = admin
        .teams()
        .create(NewTeam {
            name: "west".into(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(dup, Err(Error::Conflict(ref r)) if r.code == "duplicate"),
        "{dup:?}"
    );
    let stranger = Id::from_uuid(Uuid::now_v7());
    let bad = admin
        .teams()
        .create(NewTeam {
            name: "East".into(),
            manager_id: Some(stranger),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(bad, Err(Error::Validation(ref e)) if e[0].field == "manager_id"),
        "{bad:?}"
    );
    let bad = admin.teams().add_member(team.id, stranger).await;
    assert!(
        matches!(bad, Err(Error::Validation(ref e)) if e[0].field == "user_id"),
        "{bad:?}"
    );

    // Optimistic versions.
    let renamed = admin
        .teams()
        .update(
            team.id,
            Some(1),
            TeamPatch {
                name: Some("West Coast".into()),
                manager_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.manager_id, renamed.version),
        ("West Coast", None, 2)
    );
    let stale = admin
        .teams()
        .update(
            team.id,
            Some(1),
            TeamPatch {
                name: Some("Stale".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(Error::VersionMismatch {
                expected: 1,
                actual: 2
            })
        ),
        "{stale:?}"
    );

    // Membership.
    let m = admin.teams().add_member(team.id, ann).await.unwrap();
    assert_eq!((m.team_id, m.user_id), (team.id, ann));
    admin.teams().add_member(team.id, ann).await.unwrap();
    admin.teams().add_member(team.id, org.user).await.unwrap();
    let members: Vec<UserId> = admin
        .teams()
        .members(team.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(sorted(members), sorted(vec![ann, org.user]));
    admin.teams().remove_member(team.id, ann).await.unwrap();
    assert_not_found(
        &admin.teams().remove_member(team.id, ann).await.unwrap_err(),
        "team_member",
    );
    assert_eq!(admin.teams().members(team.id).await.unwrap().len(), 1);

    // Plain users read teams and change none.
    let user = org.user(&crm);
    assert_eq!(user.teams().list().await.unwrap().len(), 1);
    let refused = [
        user.teams()
            .create(NewTeam {
                name: "Mine".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        user.teams()
            .update(team.id, None, TeamPatch::default())
            .await
            .map(|_| ()),
        user.teams().add_member(team.id, ann).await.map(|_| ()),
        user.teams().remove_member(team.id, org.user).await,
        user.teams().delete(team.id).await,
    ];
    for r in refused {
        assert!(
            matches!(r, Err(Error::Forbidden(ref r)) if r.code == "admin_only"),
            "{r:?}"
        );
    }

    // Deleting a team takes its members and its shares with it.
    let c = admin.contact("Shared").await;
    share(&admin, c.id, Grantee::Team(team.id), ShareAccess::Read).await;
    admin.teams().delete(team.id).await.unwrap();
    assert_not_found(&admin.teams().get(team.id).await.unwrap_err(), "team");
    assert!(
        admin
            .shares()
            .list_for_record(EntityKind::Contact, c.id.uuid())
            .await
            .unwrap()
            .is_empty()
    );
    let logged = admin
        .events()
        .for_record(team.id, 50, None)
        .await
        .unwrap()
        .data;
    let actions: Vec<Action> = logged.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::Purged,
            Action::Updated,
            Action::Updated,
            Action::Updated,
            Action::Updated,
            Action::Created
        ],
        "create, rename, add ann, add user, remove ann, delete"
    );
}

async fn team_reach_follows_membership(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let (ann, bob, carl) = (
        person(&crm, &org, "ann", Role::User).await,
        person(&crm, &org, "bob", Role::User).await,
        person(&crm, &org, "carl", Role::User).await,
    );
    restrict(&crm, &org, ann, Reach::Team, Reach::Own).await;
    let team = team(&admin, "West").await;
    admin.teams().add_member(team.id, ann).await.unwrap();
    admin.teams().add_member(team.id, bob).await.unwrap();
    let by_bob = as_user(&crm, &org, bob).contact("Bob's").await;
    let by_carl = as_user(&crm, &org, carl).contact("Carl's").await;
    let ann_t = as_user(&crm, &org, ann);
    let own = ann_t.contact("Ann's").await;

    assert_eq!(visible(&ann_t).await, sorted(vec![by_bob.id, own.id]));
    ann_t.contacts().get(by_bob.id).await.unwrap();
    assert_not_found(
        &ann_t.contacts().get(by_carl.id).await.unwrap_err(),
        "contact",
    );
    // Reading a teammate's record is not changing it.
    let err = ann_t
        .update_json::<Contact>(by_bob.id, json!({ "first_name": "X" }))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");

    admin.teams().remove_member(team.id, bob).await.unwrap();
    assert_eq!(visible(&ann_t).await, vec![own.id]);
    assert_not_found(
        &ann_t.contacts().get(by_bob.id).await.unwrap_err(),
        "contact",
    );
}

async fn shares_widen_own_reach_until_revoked(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let ann = person(&crm, &org, "ann", Role::User).await;
    restrict(&crm, &org, ann, Reach::Own, Reach::Own).await;
    let ann_t = as_user(&crm, &org, ann);
    let c = admin.contact("Theirs").await;
    let kind = EntityKind::Contact;
    assert!(visible(&ann_t).await.is_empty());
    assert_not_found(&ann_t.contacts().get(c.id).await.unwrap_err(), "contact");

    let given = share(&admin, c.id, Grantee::User(ann), ShareAccess::Read).await;
    assert_eq!(
        (given.entity.as_str(), given.grantee_id, given.access),
        ("contact", ann.uuid(), ShareAccess::Read)
    );
    assert_eq!(visible(&ann_t).await, vec![c.id]);
    ann_t.contacts().get(c.id).await.unwrap();
    let err = ann_t
        .update_json::<Contact>(c.id, json!({ "first_name": "Ann" }))
        .await
        .unwrap_err();
    // Her write reach is `own`: refused with the code own-only callers have always had.
    assert!(
        matches!(err, Error::Forbidden(ref r) if r.code == "not_owner"),
        "{err:?}"
    );
    // A reader may not share further.
    let err = ann_t
        .shares()
        .share(
            kind,
            c.id.uuid(),
            Grantee::User(org.user),
            ShareAccess::Read,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");

    // Sharing again changes the access.
    share(&admin, c.id, Grantee::User(ann), ShareAccess::Write).await;
    let shares = admin
        .shares()
        .list_for_record(kind, c.id.uuid())
        .await
        .unwrap();
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].access, ShareAccess::Write);
    let changed = ann_t
        .update_json::<Contact>(c.id, json!({ "first_name": "Ann" }))
        .await
        .unwrap();
    assert_eq!(changed.fields.first_name.as_deref(), Some("Ann"));

    // Bad grantees and records.
    let err = admin
        .shares()
        .share(
            kind,
            c.id.uuid(),
            Grantee::User(Id::from_uuid(Uuid::now_v7())),
            ShareAccess::Read,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Validation(ref e) if e[0].field == "grantee_id"),
        "{err:?}"
    );
    let err = admin
        .shares()
        .share(kind, Uuid::now_v7(), Grantee::User(ann), ShareAccess::Read)
        .await
        .unwrap_err();
    assert_not_found(&err, "contact");

    admin
        .shares()
        .revoke(kind, c.id.uuid(), ann.uuid())
        .await
        .unwrap();
    assert!(visible(&ann_t).await.is_empty());
    assert_not_found(&ann_t.contacts().get(c.id).await.unwrap_err(), "contact");
    assert_not_found(
        &admin
            .shares()
            .revoke(kind, c.id.uuid(), ann.uuid())
            .await
            .unwrap_err(),
        "share",
    );

    // A record in the trash cannot be shared; a purged one keeps no share.
    share(&admin, c.id, Grantee::User(ann), ShareAccess::Read).await;
    admin.contacts().delete(c.id).await.unwrap();
    let err = admin
        .shares()
        .share(
            kind,
            c.id.uuid(),
            Grantee::User(org.user),
            ShareAccess::Read,
        )
        .await
        .unwrap_err();
    assert_not_found(&err, "contact");
    admin.contacts().purge(c.id).await.unwrap();
    let d = admin.contact("Other").await;
    share(&admin, d.id, Grantee::User(ann), ShareAccess::Read).await;
    assert_eq!(
        visible(&ann_t).await,
        vec![d.id],
        "the purged share is gone"
    );
}

async fn a_share_with_a_team_reaches_its_members(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let (ann, bob) = (
        person(&crm, &org, "ann", Role::User).await,
        person(&crm, &org, "bob", Role::User).await,
    );
    restrict(&crm, &org, ann, Reach::Own, Reach::Own).await;
    restrict(&crm, &org, bob, Reach::Own, Reach::Own).await;
    let team = team(&admin, "Readers").await;
    admin.teams().add_member(team.id, ann).await.unwrap();
    let c = admin.contact("For the team").await;
    share(&admin, c.id, Grantee::Team(team.id), ShareAccess::Write).await;
    let (ann_t, bob_t) = (as_user(&crm, &org, ann), as_user(&crm, &org, bob));
    assert_eq!(visible(&ann_t).await, vec![c.id]);
    assert!(visible(&bob_t).await.is_empty());
    ann_t
        .update_json::<Contact>(c.id, json!({ "first_name": "Team" }))
        .await
        .unwrap();
    // Ownership moves; the share stays.
    admin
        .update_json::<Contact>(c.id, json!({ "owner_id": org.user }))
        .await
        .unwrap();
    assert_eq!(visible(&ann_t).await, vec![c.id]);
    admin.teams().add_member(team.id, bob).await.unwrap();
    assert_eq!(visible(&bob_t).await, vec![c.id]);
}

async fn concurrent_members_and_shares(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let team = team(&admin, "Crowd").await;
    let c = admin.contact("Popular").await;
    let mut people = Vec::new();
    for i in 0..8 {
        people.push(person(&crm, &org, &format!("p{i}"), Role::User).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in people.iter().copied().enumerate() {
        let t = org.admin(&crm);
        tasks.spawn(async move {
            t.teams().add_member(team.id, p).await?;
            let access = if i % 2 == 0 {
                ShareAccess::Read
            } else {
                ShareAccess::Write
            };
            t.shares()
                .share(EntityKind::Contact, c.id.uuid(), Grantee::User(p), access)
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(admin.teams().members(team.id).await.unwrap().len(), 8);
    let shares = admin
        .shares()
        .list_for_record(EntityKind::Contact, c.id.uuid())
        .await
        .unwrap();
    assert_eq!(shares.len(), 8);
}

crate::on_both_backends!(
    teams_are_managed_by_admins_with_versions,
    team_reach_follows_membership,
    shares_widen_own_reach_until_revoked,
    a_share_with_a_team_reaches_its_members,
    concurrent_members_and_shares,
);
