//! A small JSON Schema checker over the subset utoipa emits (`type`, `required`, `properties`,
//! `additionalProperties`, `items`, `enum`, `oneOf`/`anyOf`/`allOf`, `$ref`, `minimum`/`maximum`,
//! formats `uuid`, `date-time`, `date`), to hold real responses against the document. A keyword it does not
//! know is itself an error, so a schema cannot pass by using one.

use axum::http::header;
use serde_json::{Map, Value};

use crate::helpers::Res;

/// Keywords that only annotate: they constrain nothing.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "readOnly",
    "writeOnly",
    "default",
    "example",
    "examples",
    "deprecated",
    // utoipa adds `{ "type": "string" }` to maps: JSON keys are strings anyway.
    "propertyNames",
];

/// The OpenAPI document as JSON, and checks against it.
pub(crate) struct Checker {
    doc: Value,
}

impl Checker {
    /// The document of [`crm_axum::openapi`].
    pub(crate) fn new() -> Self {
        Self {
            doc: serde_json::to_value(crm_axum::openapi()).unwrap(),
        }
    }

    /// Why `value` is not a valid `components/schemas/{name}` (empty when it is).
    pub(crate) fn errors(&self, name: &str, value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let schema = self.resolve(&format!("#/components/schemas/{name}"));
        self.check(schema, value, name, &mut out);
        out
    }

    /// Asserts that `res`, answered by `method template` (`GET /api/v1/accounts/{id}`), is
    /// documented there: its status, content type, body (against the schema) and the headers
    /// the document promises.
    #[track_caller]
    pub(crate) fn response(&self, method: &str, template: &str, res: &Res) {
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not described");
        let status = res.status.as_str();
        let mut response = &op["responses"][status];
        if let Some(r) = response["$ref"].as_str() {
            response = self.resolve(r);
        }
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which is not described: {}",
            res.body
        );
        for name in response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            assert!(
                res.headers.contains_key(name.as_str()),
                "{method} {template} {status}: header {name} is described but not sent"
            );
        }
        let Some(content) = response["content"].as_object() else {
            assert!(
                res.body.is_null(),
                "{method} {template} {status}: a body is sent but none described: {}",
                res.body
            );
            return;
        };
        let sent = res
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (_, media) = content
            .iter()
            .find(|(ct, _)| sent.starts_with(ct.as_str()))
            .unwrap_or_else(|| {
                panic!("{method} {template} {status}: content type {sent:?} is not described")
            });
        let mut errors = Vec::new();
        self.check(&media["schema"], &res.body, "body", &mut errors);
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the body does not match its schema:\n  {}\nbody: {}",
            errors.join("\n  "),
            res.body
        );
    }

    fn resolve(&self, reference: &str) -> &Value {
        let path = reference
            .strip_prefix("#/")
            .unwrap_or_else(|| panic!("not a local $ref: {reference}"));
        let target = path.split('/').fold(&self.doc, |v, seg| &v[seg]);
        assert!(!target.is_null(), "dangling $ref {reference}");
        target
    }

    /// Checks `v` (at `at`) against `schema`, pushing one line per problem.
    fn check(&self, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        let Some(s) = schema.as_object() else {
            if schema != &Value::Bool(true) {
                out.push(format!("{at}: unsupported schema {schema}"));
            }
            return;
        };
        for key in s.keys() {
            let known = [
                "$ref",
                "type",
                "format",
                "enum",
                "required",
                "properties",
                "additionalProperties",
                "items",
                "oneOf",
                "anyOf",
                "allOf",
                "minimum",
                "maximum",
            ];
            if !known.contains(&key.as_str()) && !ANNOTATIONS.contains(&key.as_str()) {
                out.push(format!("{at}: the checker does not know keyword `{key}`"));
            }
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            self.check(self.resolve(r), v, at, out);
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, v, at, out);
            }
        }
        for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(any) = s.get(key).and_then(Value::as_array) {
                let results: Vec<Vec<String>> = any
                    .iter()
                    .map(|sub| {
                        let mut e = Vec::new();
                        self.check(sub, v, at, &mut e);
                        e
                    })
                    .collect();
                let passing = results.iter().filter(|e| e.is_empty()).count();
                if passing == 0 {
                    out.push(format!(
                        "{at}: matches none of {key}: [{}]",
                        results
                            .iter()
                            .map(|e| e.join("; "))
                            .collect::<Vec<_>>()
                            .join("] or [")
                    ));
                } else if exactly_one && passing > 1 {
                    out.push(format!("{at}: matches {passing} of oneOf"));
                }
            }
        }
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                other => {
                    out.push(format!("{at}: bad type {other}"));
                    return;
                }
            };
            if !types.iter().any(|t| is_type(v, t)) {
                out.push(format!("{at}: {} is not of type {types:?}", short(v)));
                return;
            }
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array)
            && !values.contains(v)
        {
            out.push(format!("{at}: {} is not one of {values:?}", short(v)));
        }
        if let (Some(f), Some(text)) = (s.get("format").and_then(Value::as_str), v.as_str()) {
            let ok = match f {
                "uuid" => text.parse::<uuid::Uuid>().is_ok(),
                "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                "date" => text.parse::<chrono::NaiveDate>().is_ok(),
                _ => true,
            };
            if !ok {
                out.push(format!("{at}: {text:?} is not a {f}"));
            }
        }
        if let Some(n) = v.as_f64() {
            let below = s
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n < m);
            let above = s
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m);
            if below || above {
                out.push(format!("{at}: {n} is out of range"));
            }
        }
        if let Some(obj) = v.as_object() {
            self.check_object(s, obj, at, out);
        }
        if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
            for (i, item) in arr.iter().enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), out);
            }
        }
    }

    fn check_object(
        &self,
        s: &Map<String, Value>,
        obj: &Map<String, Value>,
        at: &str,
        out: &mut Vec<String>,
    ) {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap_or_default();
            if !obj.contains_key(r) {
                out.push(format!("{at}: required property `{r}` is missing"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, value) in obj {
            let at = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(p) => self.check(p, value, &at, out),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        out.push(format!("{at}: the schema declares no such property"))
                    }
                    Some(extra @ Value::Object(_)) => self.check(extra, value, &at, out),
                    _ => {}
                },
            }
        }
    }
}

/// Whether `v` is a JSON Schema `t`.
fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// A value for messages, cut short.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}
