//! Rebuilding the duplicate-match keys (`record_match_keys`) of records written before the write
//! path kept them: a database upgraded to migration `0014_duplicates_and_merge` has none for its
//! existing records, so duplicate detection would not see them until their next change.
//! `crm rebuild-match-keys` (or [`Tenant::rebuild_match_keys`]) fills them in, once.

use std::future::Future;
use std::pin::Pin;

use super::entity::Entity;
use super::keys::{self, Keys};
use super::row::Record;
use super::service::Records;
use super::values::to_object;
use crate::entities::{EntityKind, EntityVisitor};
use crate::error::Result;
use crate::id::Id;
use crate::storage::Sql;
use crate::tenant::Tenant;

/// Records per transaction of a rebuild.
const PAGE: i64 = 1_000;

impl<E: Entity> Records<'_, E> {
    /// Recomputes the match keys of every record of `E`, trash included (as the write path
    /// keeps them), a page of records per transaction; answers how many records it read.
    async fn rebuild_match_keys(&self) -> Result<u64> {
        if E::MATCH_ON.is_empty() {
            return Ok(0);
        }
        let mut after: Option<Id<E>> = None;
        let mut n = 0;
        loop {
            let mut s = self.tenant.session().await?;
            let mut tx = s.begin().await?;
            let out = async {
                let mut q = Sql::new("select ");
                q.push(E::SELECT).push(" from ").push(E::TABLE);
                q.push(" where organization_id = ").bind(self.org());
                if let Some(after) = after {
                    q.push(" and id > ").bind(after);
                }
                // Locked, so that a write of one of them waits for its new keys.
                let lock = tx.conn().backend().lock_rows();
                q.push(" order by id limit ").bind(PAGE).push(lock);
                let records: Vec<Record<E>> = tx.conn().fetch_all(&q).await?;
                let ids: Vec<_> = records.iter().map(|r| r.id.uuid()).collect();
                keys::forget_matches(&mut tx.conn(), self.org(), E::NAME, &ids).await?;
                let mut computed = Vec::with_capacity(records.len());
                for r in &records {
                    let keys = Keys {
                        unique: Vec::new(),
                        matches: keys::matches_of::<E>(&to_object(&r.fields)?),
                    };
                    computed.push((r.id.uuid(), keys));
                }
                let keyed: Vec<_> = computed.iter().map(|(id, k)| (*id, k)).collect();
                keys::insert(&mut tx.conn(), self.org(), E::NAME, &keyed).await?;
                Ok((records.len() as u64, records.last().map(|r| r.id)))
            }
            .await;
            let (read, last) = tx.settle(out).await?;
            n += read;
            match last {
                Some(last) => after = Some(last),
                None => return Ok(n),
            }
        }
    }
}

/// Rebuilds the match keys of the visited kind.
struct RebuildKind<'t>(&'t Tenant);

impl<'t> EntityVisitor for RebuildKind<'t> {
    type Output = Pin<Box<dyn Future<Output = Result<u64>> + Send + 't>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move { self.0.records::<E>().rebuild_match_keys().await })
    }
}

impl Tenant {
    /// Recomputes the duplicate-match keys of every record of the organization whose kind
    /// declares some ([`Entity::MATCH_ON`]), trash included, a thousand records per
    /// transaction: for records written before migration `0014_duplicates_and_merge`, which
    /// duplicate detection does not see until then. Safe to run again, and while others write.
    /// Answers how many records it read. Company admins (and the system) only.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let read = t.rebuild_match_keys().await?;
    /// # let _ = read;
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] for anyone but company admins and the system.
    pub async fn rebuild_match_keys(&self) -> Result<u64> {
        crate::access::roles::require_admin(self.context(), "rebuild the duplicate-match keys")?;
        let mut n = 0;
        for kind in EntityKind::ALL {
            n += kind.visit(RebuildKind(self)).await?;
        }
        Ok(n)
    }
}
