//! A small JSON Schema checker for the subset trunkgate's OpenAPI document uses: `type` (a
//! name or an array of names, which is how 3.1 writes nullable), `required`, `properties`,
//! `additionalProperties: false`, `enum`, `items` and local `$ref`s — so daemon tests can
//! check real responses against `/v1/openapi.json` without a schema crate. Unknown keywords
//! (`format`, `description`, `minimum`…) are ignored.
//! Must not: accept what it does not understand silently where it matters — an unresolvable
//! `$ref` or a missing response in the document is an error, not a pass.

use serde_json::Value;

/// The schema of `method path`'s `status` JSON response in the OpenAPI document `doc`.
pub fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let ptr = format!(
        "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
        path.replace('~', "~0").replace('/', "~1")
    );
    doc.pointer(&ptr)
        .unwrap_or_else(|| panic!("the OpenAPI document has no JSON {status} for {method} {path}"))
}

/// Panics with every problem if `body` does not match the documented response.
pub fn assert_response(doc: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let problems = check(doc, response_schema(doc, path, method, status), body);
    assert!(
        problems.is_empty(),
        "{method} {path} {status} does not match the OpenAPI document: {problems:?}\n{body}"
    );
}

/// Every way `value` fails `schema` (empty: it matches), with JSON-pointer-like paths.
pub fn check(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(doc, schema, value, "", &mut out);
    out
}

fn type_ok(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => false,
    }
}

fn walk(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(target) => walk(doc, target, v, at, out),
            None => out.push(format!("{at}: unresolvable $ref {r}")),
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let names: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.iter().any(|n| type_ok(n, v)) {
            out.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            out.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(key) {
                out.push(format!("{at}: missing required {key:?}"));
            }
        }
        for (key, val) in obj {
            match props.and_then(|p| p.get(key)) {
                Some(s) => walk(doc, s, val, &format!("{at}/{key}"), out),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{at}: undocumented property {key:?}"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            walk(doc, items, item, &format!("{at}/{i}"), out);
        }
    }
}
