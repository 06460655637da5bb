-- Full-text search over accounts, contacts, leads and opportunities (`Tenant::search`), with
-- FTS5.
--
-- One FTS5 table per entity, its columns the entity's searchable columns (the `[searchable]` /
-- `[title]` columns of its `record_type!`; a test compares them), kept by triggers in the
-- writing transaction. Its rowids are the keys of `search_keys`, an INTEGER PRIMARY KEY that
-- VACUUM keeps (the entity tables' own rowids it may renumber). `secure-delete` removes a
-- deleted or erased record's words from the index at once, not at the next merge.

create table search_keys (
    key             integer primary key,
    organization_id blob not null,
    entity          text not null,
    id              blob not null,
    unique (organization_id, entity, id)
);

create virtual table accounts_search using fts5(name, domain, website, industry, phone, city, country, tokenize = 'unicode61 remove_diacritics 2');
insert into accounts_search (accounts_search, rank) values ('secure-delete', 1);
insert into search_keys (organization_id, entity, id) select organization_id, 'accounts', id from accounts;
insert into accounts_search (rowid, name, domain, website, industry, phone, city, country)
    select k.key, r.name, r.domain, r.website, r.industry, r.phone, r.city, r.country from accounts r
    join search_keys k on k.organization_id = r.organization_id and k.entity = 'accounts' and k.id = r.id;

create trigger accounts_search_insert after insert on accounts begin
    insert into search_keys (organization_id, entity, id) values (new.organization_id, 'accounts', new.id);
    insert into accounts_search (rowid, name, domain, website, industry, phone, city, country) values (last_insert_rowid(), new.name, new.domain, new.website, new.industry, new.phone, new.city, new.country);
end;
create trigger accounts_search_update after update of name, domain, website, industry, phone, city, country on accounts begin
    update accounts_search set name = new.name, domain = new.domain, website = new.website, industry = new.industry, phone = new.phone, city = new.city, country = new.country where rowid = (select key from search_keys where organization_id = new.organization_id and entity = 'accounts' and id = new.id);
end;
create trigger accounts_search_delete after delete on accounts begin
    delete from accounts_search where rowid = (select key from search_keys where organization_id = old.organization_id and entity = 'accounts' and id = old.id);
    delete from search_keys where organization_id = old.organization_id and entity = 'accounts' and id = old.id;
end;

create virtual table contacts_search using fts5(first_name, last_name, email, phone, mobile, title, tokenize = 'unicode61 remove_diacritics 2');
insert into contacts_search (contacts_search, rank) values ('secure-delete', 1);
insert into search_keys (organization_id, entity, id) select organization_id, 'contacts', id from contacts;
insert into contacts_search (rowid, first_name, last_name, email, phone, mobile, title)
    select k.key, r.first_name, r.last_name, r.email, r.phone, r.mobile, r.title from contacts r
    join search_keys k on k.organization_id = r.organization_id and k.entity = 'contacts' and k.id = r.id;

create trigger contacts_search_insert after insert on contacts begin
    insert into search_keys (organization_id, entity, id) values (new.organization_id, 'contacts', new.id);
    insert into contacts_search (rowid, first_name, last_name, email, phone, mobile, title) values (last_insert_rowid(), new.first_name, new.last_name, new.email, new.phone, new.mobile, new.title);
end;
create trigger contacts_search_update after update of first_name, last_name, email, phone, mobile, title on contacts begin
    update contacts_search set first_name = new.first_name, last_name = new.last_name, email = new.email, phone = new.phone, mobile = new.mobile, title = new.title where rowid = (select key from search_keys where organization_id = new.organization_id and entity = 'contacts' and id = new.id);
end;
create trigger contacts_search_delete after delete on contacts begin
    delete from contacts_search where rowid = (select key from search_keys where organization_id = old.organization_id and entity = 'contacts' and id = old.id);
    delete from search_keys where organization_id = old.organization_id and entity = 'contacts' and id = old.id;
end;

create virtual table leads_search using fts5(first_name, last_name, email, phone, company, title, tokenize = 'unicode61 remove_diacritics 2');
insert into leads_search (leads_search, rank) values ('secure-delete', 1);
insert into search_keys (organization_id, entity, id) select organization_id, 'leads', id from leads;
insert into leads_search (rowid, first_name, last_name, email, phone, company, title)
    select k.key, r.first_name, r.last_name, r.email, r.phone, r.company, r.title from leads r
    join search_keys k on k.organization_id = r.organization_id and k.entity = 'leads' and k.id = r.id;

create trigger leads_search_insert after insert on leads begin
    insert into search_keys (organization_id, entity, id) values (new.organization_id, 'leads', new.id);
    insert into leads_search (rowid, first_name, last_name, email, phone, company, title) values (last_insert_rowid(), new.first_name, new.last_name, new.email, new.phone, new.company, new.title);
end;
create trigger leads_search_update after update of first_name, last_name, email, phone, company, title on leads begin
    update leads_search set first_name = new.first_name, last_name = new.last_name, email = new.email, phone = new.phone, company = new.company, title = new.title where rowid = (select key from search_keys where organization_id = new.organization_id and entity = 'leads' and id = new.id);
end;
create trigger leads_search_delete after delete on leads begin
    delete from leads_search where rowid = (select key from search_keys where organization_id = old.organization_id and entity = 'leads' and id = old.id);
    delete from search_keys where organization_id = old.organization_id and entity = 'leads' and id = old.id;
end;

create virtual table opportunities_search using fts5(name, description, tokenize = 'unicode61 remove_diacritics 2');
insert into opportunities_search (opportunities_search, rank) values ('secure-delete', 1);
insert into search_keys (organization_id, entity, id) select organization_id, 'opportunities', id from opportunities;
insert into opportunities_search (rowid, name, description)
    select k.key, r.name, r.description from opportunities r
    join search_keys k on k.organization_id = r.organization_id and k.entity = 'opportunities' and k.id = r.id;

create trigger opportunities_search_insert after insert on opportunities begin
    insert into search_keys (organization_id, entity, id) values (new.organization_id, 'opportunities', new.id);
    insert into opportunities_search (rowid, name, description) values (last_insert_rowid(), new.name, new.description);
end;
create trigger opportunities_search_update after update of name, description on opportunities begin
    update opportunities_search set name = new.name, description = new.description where rowid = (select key from search_keys where organization_id = new.organization_id and entity = 'opportunities' and id = new.id);
end;
create trigger opportunities_search_delete after delete on opportunities begin
    delete from opportunities_search where rowid = (select key from search_keys where organization_id = old.organization_id and entity = 'opportunities' and id = old.id);
    delete from search_keys where organization_id = old.organization_id and entity = 'opportunities' and id = old.id;
end;
