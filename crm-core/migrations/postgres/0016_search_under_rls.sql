-- Full-text search that uses its GIN index under row-level security.
--
-- As `crm_app`, row-level security keeps a query's own conditions from running before the
-- policy's unless every function they call is LEAKPROOF, and `@@` (with the search vector's
-- functions) is not: the planner cannot use `<table>_search_idx` for `crm_search_<table>(r) @@ q`
-- and computes the vector of every row of the organization instead. At 10,000 contacts an
-- organization that took 160-200 ms a search, against 17-25 ms through the index
-- (docs/benchmarks.md, "At a million contacts").
--
-- So each searchable table gets `crm_search_hits_<table>(q)`: the ids and ranks of the live rows
-- of the session's organization that match. It runs as its owner (SECURITY DEFINER, its search_path fixed
-- to this schema) and applies, itself, the very condition of the `tenant_isolation` policy: the
-- organization is `crm.org_id`, the session setting the library binds and no caller input. When
-- the owner bypasses row-level security (the superuser that usually runs migrations) the GIN
-- index serves it; when it does not, the policy applies inside as well and the answer is the
-- same, only slower. The search joins each hit back to its table as `crm_app`, under the policy,
-- for the title: the policy still stands between a caller and every row it returns.

do $$
declare
    t text;
begin
    foreach t in array array['accounts', 'contacts', 'leads', 'opportunities'] loop
        execute format(
            'create function %1$I.%2$I(q tsquery) returns table (id uuid, rank real) '
            'language sql stable security definer set search_path = pg_catalog, %1$I '
            'as $f$ select r.id, ts_rank(%3$I(r), q) from %4$I r '
            'where r.organization_id = nullif(current_setting(''crm.org_id'', true), '''')::uuid '
            'and not r.is_deleted and %3$I(r) @@ q $f$',
            current_schema(), 'crm_search_hits_' || t, 'crm_search_' || t, t);
        execute format('revoke all on function %I.%I(tsquery) from public',
            current_schema(), 'crm_search_hits_' || t);
        execute format('grant execute on function %I.%I(tsquery) to crm_app',
            current_schema(), 'crm_search_hits_' || t);
    end loop;
end
$$;
