-- Full-text search over accounts, contacts, leads and opportunities (`Tenant::search`).
--
-- Each entity has an immutable function of its row giving the tsvector of its searchable
-- columns (the `[searchable]` / `[title]` columns of its `record_type!`; a test compares them),
-- and a GIN index on (organization_id, that tsvector): btree_gin lets the organization lead, so
-- a search reads one organization's part of the index. The vector is not stored: record reads
-- do not carry it, and a write is searchable the moment it commits. The `simple` configuration
-- (no stemming, no stop words: names and addresses are not prose) after the punctuation that
-- joins words in emails, domains and URLs became spaces, as the query side splits words.

create extension if not exists btree_gin;

create function crm_search_accounts(r accounts) returns tsvector
    language sql immutable parallel safe
    return to_tsvector('simple', translate(coalesce(r.name, '') || ' ' || coalesce(r.domain, '') || ' ' || coalesce(r.website, '') || ' ' || coalesce(r.industry, '') || ' ' || coalesce(r.phone, '') || ' ' || coalesce(r.city, '') || ' ' || coalesce(r.country, ''), '@./:_-+', '       '));
create index accounts_search_idx on accounts using gin (organization_id, crm_search_accounts(accounts));

create function crm_search_contacts(r contacts) returns tsvector
    language sql immutable parallel safe
    return to_tsvector('simple', translate(coalesce(r.first_name, '') || ' ' || coalesce(r.last_name, '') || ' ' || coalesce(r.email, '') || ' ' || coalesce(r.phone, '') || ' ' || coalesce(r.mobile, '') || ' ' || coalesce(r.title, ''), '@./:_-+', '       '));
create index contacts_search_idx on contacts using gin (organization_id, crm_search_contacts(contacts));

create function crm_search_leads(r leads) returns tsvector
    language sql immutable parallel safe
    return to_tsvector('simple', translate(coalesce(r.first_name, '') || ' ' || coalesce(r.last_name, '') || ' ' || coalesce(r.email, '') || ' ' || coalesce(r.phone, '') || ' ' || coalesce(r.company, '') || ' ' || coalesce(r.title, ''), '@./:_-+', '       '));
create index leads_search_idx on leads using gin (organization_id, crm_search_leads(leads));

create function crm_search_opportunities(r opportunities) returns tsvector
    language sql immutable parallel safe
    return to_tsvector('simple', translate(coalesce(r.name, '') || ' ' || coalesce(r.description, ''), '@./:_-+', '       '));
create index opportunities_search_idx on opportunities using gin (organization_id, crm_search_opportunities(opportunities));
