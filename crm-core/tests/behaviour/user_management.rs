//! User management by company admins.

use crm_core::{Error, NewUser, Password, Role};

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

crate::on_both_backends!(roles_deactivation_and_the_last_admin);
