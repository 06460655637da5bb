-- How long an organization keeps trashed records before the daily purge job removes them for
-- good (days). 30 unless an operator sets another (`crm org set-retention`).
alter table organizations
    add column trash_retention_days integer not null default 30
    check (trash_retention_days between 1 and 36500);
