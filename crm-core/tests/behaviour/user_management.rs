//! User management by company admins.

use crm_core::{Error, NewUser, Password, PasswordKind, Role};

use crate::harness::Org;

async fn roles_deactivation_and_the_last_admin(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let pw = Password::new("correct horse battery");
    let bob = admin
        .users()
        .create(NewUser {
            email: "bob@acme.test".into(),
            name: "Bob".into(),
            password: Some(pw.clone()),
            role: Role::User,
        })
        .await
        .unwrap();
    admin
        .users()
        .authenticate("bob@acme.test", &pw)
        .await
        .unwrap();

    // Deactivated users cannot authenticate; reactivated they can again.
    let off = admin.users().deactivate(bob.id).await.unwrap();
    assert!(!off.is_active);
    assert!(matches!(
        admin.users().authenticate("bob@acme.test", &pw).await,
        Err(Error::Unauthenticated)
    ));
    admin.users().reactivate(bob.id).await.unwrap();
    admin
        .users()
        .authenticate("bob@acme.test", &pw)
        .await
        .unwrap();

    // Roles: up to one's own, never above.
    let promoted = admin
        .users()
        .set_role(bob.id, Role::CompanyAdmin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::CompanyAdmin);
    assert!(matches!(
        admin.users().set_role(bob.id, Role::SuperAdmin).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        org.user(&crm).users().deactivate(bob.id).await,
        Err(Error::Forbidden(_))
    ));

    // Two admins: one may go; the last one may not be demoted or deactivated.
    admin.users().set_role(bob.id, Role::User).await.unwrap();
    for err in [
        admin.users().set_role(org.admin, Role::User).await,
        admin.users().deactivate(org.admin).await,
    ] {
        assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");
    }
    let events = admin.events().for_record(bob.id, 10, None).await.unwrap();
    let actions: Vec<_> = events.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "role_changed",
            "role_changed",
            "reactivated",
            "deactivated",
            "created"
        ]
    );

    // Another organization's user is not found.
    let other = Org::new(&crm, "Other").await;
    assert!(matches!(
        other.admin(&crm).users().deactivate(bob.id).await,
        Err(Error::NotFound { .. })
    ));
}

crate::on_both_backends!(
    roles_deactivation_and_the_last_admin,
    a_password_set_by_someone_else_is_temporary,
);

/// Whether `org`'s plain user must change their password, as the user and their principal say.
async fn must_change(crm: &crm_core::Crm, org: &Org) -> bool {
    let user = org.admin(crm).users().get(org.user).await.unwrap();
    let principal = crm.auth().principal(org.id, org.user).await.unwrap();
    assert_eq!(user.must_change_password, principal.must_change_password);
    user.must_change_password
}

/// A password an admin or operator sets is temporary unless they say otherwise: the user and
/// their principal carry `must_change_password` until the user changes it themselves (to
/// something else); the change is in the event log, the password nowhere.
async fn a_password_set_by_someone_else_is_temporary(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let temporary = Password::new("temporary password");
    assert!(
        !must_change(&crm, &org).await,
        "a new user has nothing to change"
    );

    assert!(matches!(
        org.user(&crm)
            .users()
            .set_password(org.admin, &temporary, PasswordKind::Temporary)
            .await,
        Err(Error::Forbidden(_))
    ));
    let make_temporary = |t: crm_core::Tenant| {
        let temporary = temporary.clone();
        async move {
            let users = t.users();
            let set = users.set_password(org.user, &temporary, PasswordKind::Temporary);
            set.await.unwrap();
        }
    };
    make_temporary(admin.clone()).await;
    assert!(must_change(&crm, &org).await);
    let me = org.user(&crm);
    me.users()
        .authenticate("user@example.com", &temporary)
        .await
        .unwrap();
    let unchanged = me
        .users()
        .change_own_password(&temporary, &temporary, None)
        .await;
    assert!(
        matches!(unchanged, Err(Error::Validation(_))),
        "{unchanged:?}"
    );
    assert!(must_change(&crm, &org).await, "still temporary");
    let own = Password::new("my own passphrase");
    me.users()
        .change_own_password(&temporary, &own, None)
        .await
        .unwrap();
    assert!(!must_change(&crm, &org).await);

    // An operator (a system context, as `crm user set-password --permanent`) may hand over a
    // password that stays.
    let system = crm.tenant(&crm_core::TenantContext::system(org.id));
    make_temporary(system.clone()).await;
    assert!(must_change(&crm, &org).await);
    system
        .users()
        .set_password(org.user, &own, PasswordKind::Permanent)
        .await
        .unwrap();
    assert!(
        !must_change(&crm, &org).await,
        "a permanent password ends the requirement"
    );

    let events = admin.events().for_record(org.user, 10, None).await.unwrap();
    let changes: Vec<_> = events
        .data
        .iter()
        .filter(|e| e.action.as_str() == "password_changed")
        .map(|e| e.changes.get("must_change_password").cloned())
        .collect();
    let flip =
        |before: bool, after: bool| Some(serde_json::json!({ "before": before, "after": after }));
    assert_eq!(
        changes,
        [
            flip(true, false),
            flip(false, true),
            flip(true, false),
            flip(false, true)
        ]
    );
    let text = serde_json::to_string(&events.data).unwrap();
    for secret in ["temporary password", "my own passphrase"] {
        assert!(!text.contains(secret), "the event log holds a password");
    }
}
