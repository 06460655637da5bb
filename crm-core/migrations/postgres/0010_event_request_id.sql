-- The request each logged change came from (the HTTP layer's `x-request-id`, when it is a UUID):
-- field history names it beside the actor, so a change can be traced to its request's log lines.
alter table events add column request_id uuid;
