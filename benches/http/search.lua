-- POST /api/v1/contacts/search with a filter and a sort.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"filters":[{"field":"last_name","op":"eq","value":"Hopper"}],"sort":{"field":"created_at","direction":"desc"},"limit":50}'
