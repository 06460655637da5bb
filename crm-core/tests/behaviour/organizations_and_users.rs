//! Organizations and users.

use crm_core::{
    Error, NewOrganization, NewUser, OrganizationStatus, Password, Role, TenantContext,
};

use crate::harness::Org;

async fn organizations(crm: crm_core::Crm) {
    let orgs = crm.organizations();
    let a = orgs
        .create(NewOrganization {
            name: "Acme Corp".into(),
            slug: None,
        })
        .await
        .unwrap();
    assert_eq!(a.slug, "acme-corp");
    assert_eq!(a.status, OrganizationStatus::Active);
    assert_eq!(orgs.get(a.id).await.unwrap(), a);
    assert_eq!(orgs.get_by_slug("acme-corp").await.unwrap().id, a.id);

    let err = orgs
        .create(NewOrganization {
            name: "Acme Corp".into(),
            slug: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let err = orgs
        .create(NewOrganization {
            name: " ".into(),
            slug: Some("Bad Slug".into()),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e.len() == 2),
        "{err:?}"
    );

    let b = orgs
        .create(NewOrganization {
            name: "Beta".into(),
            slug: Some("beta".into()),
        })
        .await
        .unwrap();
    let listed = orgs.list(None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id).collect::<Vec<_>>(),
        [a.id, b.id]
    );
    assert_eq!(orgs.list(Some(a.id), 10).await.unwrap().len(), 1);

    let suspended = orgs
        .set_status(b.id, OrganizationStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(suspended.status, OrganizationStatus::Suspended);
}

async fn users(crm: crm_core::Crm) {
    let org = Org::new(&crm, "Acme").await;
    let admin = org.admin(&crm);
    let new = |email: &str, role| NewUser {
        email: email.into(),
        name: "Ann".into(),
        password: Some(Password::new("correct horse battery")),
        role,
    };
    let ann = admin
        .users()
        .create(new("Ann@Example.com", Role::User))
        .await
        .unwrap();
    assert_eq!(ann.email, "Ann@Example.com");
    assert!(ann.is_active);

    // Unique per organization, ignoring case; fine in another organization.
    let err = admin
        .users()
        .create(new("ann@example.COM", Role::User))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let other = Org::new(&crm, "Other").await;
    other
        .admin(&crm)
        .users()
        .create(new("ann@example.com", Role::User))
        .await
        .unwrap();

    // No escalation: admins cannot create super admins; users cannot create users.
    let err = admin
        .users()
        .create(new("boss@example.com", Role::SuperAdmin))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    let err = org
        .user(&crm)
        .users()
        .create(new("x@example.com", Role::User))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    let err = admin
        .users()
        .create(NewUser {
            password: Some(Password::new("short")),
            ..new("bad-email", Role::User)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(e) if e.len() == 2),
        "{err:?}"
    );

    // Passwords.
    let ok = admin
        .users()
        .authenticate("ANN@example.com", &Password::new("correct horse battery"))
        .await
        .unwrap();
    assert_eq!(ok.id, ann.id);
    for (email, pw) in [
        ("ann@example.com", "wrong password"),
        ("nobody@example.com", "correct horse battery"),
    ] {
        let err = admin
            .users()
            .authenticate(email, &Password::new(pw))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated), "{err:?}");
    }
    // The organization's users only.
    let other_admin = crm.tenant(&TenantContext::system(other.id));
    assert!(matches!(
        other_admin.users().get(ann.id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(admin.users().get(ann.id).await.unwrap(), ann);
    assert_eq!(admin.users().list(None, 100).await.unwrap().len(), 3);
}

crate::on_both_backends!(organizations, users);
