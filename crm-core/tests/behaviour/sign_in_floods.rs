//! A flood of wrong sign-ins from everywhere (no per-address limit holds it back): password
//! checks queue for a bounded time, so neither the flood nor the owner's sign-in waits behind
//! the whole of it.

use std::time::{Duration, Instant};

use crm_core::{Crm, Error, NewUser, Password, Role, TenantContext};

use crate::harness::Org;

crate::on_both_backends!(a_flood_of_wrong_sign_ins_does_not_starve_the_right_one);

const EMAIL: &str = "owner@example.com";
const RIGHT: &str = "correct horse battery";

async fn a_flood_of_wrong_sign_ins_does_not_starve_the_right_one(crm: Crm) {
    let org = Org::new(&crm, "acme").await;
    let system = crm.tenant(&TenantContext::system(org.id));
    let users = system.users();
    users
        .create(NewUser {
            email: EMAIL.into(),
            name: "Owner".into(),
            password: Some(Password::new(RIGHT)),
            role: Role::User,
        })
        .await
        .unwrap();
    // What one check costs here, alone (debug builds hash slowly).
    let started = Instant::now();
    let _ = users.authenticate(EMAIL, &Password::new("wrong")).await;
    let one = started.elapsed();
    // Half a second of queue (the most a check waits for a thread) and a few checks: however
    // many cores. Waiting behind all 64 would take 64 checks' time over the cores.
    let bound = Duration::from_secs(1) + one * 4;

    let flood: Vec<_> = (0..64)
        .map(|_| {
            let tenant = crm.tenant(&TenantContext::system(org.id));
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = tenant
                    .users()
                    .authenticate(EMAIL, &Password::new("wrong"))
                    .await;
                (answer.map(|_| ()), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(one / 2).await;
    // The owner signs in meanwhile, retrying on 503 as a client following `Retry-After` would
    // (a short retry here: the test measures the wait, not the client).
    let asked = Instant::now();
    let owner = loop {
        match users.authenticate(EMAIL, &Password::new(RIGHT)).await {
            Err(Error::Overloaded(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            answer => break answer.unwrap(),
        }
    };
    let took = asked.elapsed();
    assert_eq!(owner.email, EMAIL);
    assert!(
        took < bound,
        "the owner's sign-in took {took:?} during the flood (one check: {one:?})"
    );
    for attempt in flood {
        let (answer, took) = attempt.await.unwrap();
        assert!(
            matches!(answer, Err(Error::Unauthenticated | Error::Overloaded(_))),
            "{answer:?}"
        );
        assert!(
            took < bound,
            "a wrong sign-in took {took:?} (one check: {one:?})"
        );
    }
}
