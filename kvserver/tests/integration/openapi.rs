//! `GET /openapi.json` against the API's routes and against the router.
//!
//! - The document lists exactly the API's routes and methods.
//! - Router and document agree: every documented operation is routed (sent to the router,
//!   it is answered by its handler, not by the unknown-route or wrong-method fallback), its
//!   status is one the document lists, and its body matches the documented schema; every
//!   method the document does not list on a path is `405`, and paths next to documented
//!   ones are `404`.
//! - Every documented error response is the shared `ErrorBody`; auth is documented where
//!   the server asks for it.

use crate::util::{self, Reply};
use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use kvserver::error::ErrorCode;
use kvserver::{ApiError, AppState};
use serde_json::{Value, json};

/// The API's routes (`docs/http-api.md`) and their methods, as OpenAPI renders them.
/// axum's catch-all `/api/{*path}` is the template `/api/{path}`.
const SPEC_ROUTES: &[(&str, &[&str])] = &[
    ("/keys", &["get", "put", "delete"]),
    ("/keys/{key}", &["get", "head", "put", "delete"]),
    ("/keys/{key}/incr", &["post"]),
    ("/keys/{key}/ttl", &["get", "put", "delete"]),
    ("/values", &["get", "post", "patch"]),
    ("/api", &["get"]),
    ("/api/", &["get"]),
    ("/api/{path}", &["get"]),
    ("/stats", &["get"]),
    ("/stats/", &["get"]),
    ("/test/{n}", &["post"]),
    ("/test/{n}/", &["post"]),
    ("/get_value", &["post"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/info", &["get"]),
    ("/openapi.json", &["get"]),
];

/// The template whose parameter matches the rest of the path, slashes included.
const CATCH_ALL: &str = "/api/{path}";

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const TOKEN: &str = "s3cret-token";

fn app(args: &[&str]) -> Router {
    let state = AppState::build(&util::config(args)).expect("building the state");
    kvserver::app(state)
}

// What these checks look for in a response.
impl Reply {
    /// The router's own answer for a path it does not know (under `/keys/`, with a hint
    /// after "no such route").
    fn is_unknown_route(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
            && self.try_json().is_some_and(|b| {
                b.as_object().map(|o| o.len()) == Some(2)
                    && b["error"] == "not_found"
                    && b["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("no such route"))
            })
    }

    fn is_wrong_method(&self) -> bool {
        self.status == StatusCode::METHOD_NOT_ALLOWED
            && self
                .try_json()
                .is_some_and(|b| b["error"] == "method_not_allowed")
    }
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> Reply {
    let method = method.to_ascii_uppercase();
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let body = body.map(|b| Bytes::from(b.to_string()));
    util::send(app, util::request(&method, uri, body, &headers)).await
}

/// The document as the server serves it.
async fn served_document() -> Value {
    let app = app(&["--no-persist"]);
    let reply = send(&app, "get", "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    reply.try_json().expect("/openapi.json is JSON")
}

/// Every (path, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

/// Follows a local `$ref` (`#/components/...`), or returns `schema` itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// A value that `schema` accepts, for request bodies and path parameters.
fn sample(doc: &Value, schema: &Value) -> Value {
    let schema = resolve(doc, schema);
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(types) => types.first().and_then(Value::as_str).unwrap_or("null"),
        _ => return json!(1), // any value
    };
    match ty {
        "object" => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                out.insert(name.into(), sample(doc, &schema["properties"][name]));
            }
            if out.is_empty()
                && let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object())
            {
                out.insert("k".into(), sample(doc, extra));
            }
            Value::Object(out)
        }
        "array" => json!([sample(doc, &schema["items"])]),
        "string" if schema["format"] == "uuid" => json!("0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f"),
        "string" => json!("k"),
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

/// Checks `value` against `schema`, for the JSON Schema keywords the document uses.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("{at}: bad type keyword {other}")),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{at}: {n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing required property {name:?}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, member) in object {
            let at = format!("{at}.{name}");
            match (
                properties.and_then(|p| p.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => validate(doc, property, member, &at)?,
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{at}: property not in the schema"));
                }
                (None, Some(extra)) if extra.is_object() => validate(doc, extra, member, &at)?,
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    for all in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(doc, all, value, at)?;
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|s| validate(doc, s, value, at).is_ok())
    {
        return Err(format!("{at}: {value} matches no anyOf schema"));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = one
            .iter()
            .filter(|s| validate(doc, s, value, at).is_ok())
            .count();
        if matching != 1 {
            return Err(format!("{at}: {value} matches {matching} oneOf schemas"));
        }
    }
    Ok(())
}

/// The `{name}`s of a path template.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// `path` with each parameter replaced by a sample of its documented schema.
fn concrete(doc: &Value, path: &str, op: &Value) -> String {
    let mut out = path.to_owned();
    for param in op["parameters"].as_array().into_iter().flatten() {
        let param = resolve(doc, param);
        if param["in"] == "path" {
            let name = param["name"].as_str().unwrap();
            let value = match param.get("example") {
                Some(example) => example.clone(),
                None => sample(doc, &param["schema"]),
            };
            let value = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            out = out.replace(&format!("{{{name}}}"), &value);
        }
    }
    assert!(
        !out.contains('{'),
        "{path}: a path parameter is not declared"
    );
    out
}

/// Whether a concrete path matches a template of the document.
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if template == CATCH_ALL {
        return p.len() >= 3 && p[..2] == t[..2] && !p[2..].join("/").is_empty();
    }
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

#[tokio::test]
async fn document_lists_exactly_the_spec_routes() {
    let doc = served_document().await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "openapi is {version}");
    assert_eq!(doc["info"]["title"], "kvserver");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let spec: BTreeMap<String, BTreeSet<String>> = SPEC_ROUTES
        .iter()
        .map(|(path, methods)| {
            let methods = methods.iter().map(|m| m.to_string()).collect();
            (path.to_string(), methods)
        })
        .collect();
    assert_eq!(documented, spec);

    // Each path parameter of a template is declared, and only those.
    for (path, method, op) in operations(&doc) {
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(
                    p["required"], true,
                    "{method} {path}: path parameters are required"
                );
                p["name"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(declared, template_params(&path), "{method} {path}");
    }

    // The served document is the one the code builds.
    let built = serde_json::to_value(kvserver::openapi::document()).unwrap();
    assert_eq!(doc, built);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_as_documented() {
    let doc = served_document().await;
    for (path, method, op) in operations(&doc) {
        // A fresh server holding the key "k" and a hit counter, so that routes can succeed.
        let app = app(&["--no-persist"]);
        let seeded = send(&app, "put", "/keys/k", Some(&json!(1)), None).await;
        assert_eq!(seeded.status, StatusCode::CREATED);
        let counted = send(&app, "get", "/api/seed", None, None).await;
        assert_eq!(counted.status, StatusCode::OK);

        let uri = concrete(&doc, &path, &op);
        let body = op
            .pointer("/requestBody/content/application~1json/schema")
            .map(|schema| sample(&doc, schema));
        let reply = send(&app, &method, &uri, body.as_ref(), None).await;
        let what = format!(
            "{} {uri} (documented as {path}, body {body:?})",
            method.to_uppercase()
        );
        assert!(
            !reply.is_unknown_route(),
            "{what}: the router does not know the route"
        );
        assert!(
            !reply.is_wrong_method(),
            "{what}: the router does not take the method"
        );

        // The status is documented, and the body is what the document says.
        let status = reply.status.as_str();
        let Some(response) = op["responses"].get(status) else {
            panic!("{what}: status {status} is not documented");
        };
        let response = resolve(&doc, response);
        match response.get("content").and_then(Value::as_object) {
            None => assert!(
                reply.body.is_empty(),
                "{what}: {status} should have no body"
            ),
            Some(content) => {
                let content_type = reply.headers[header::CONTENT_TYPE].to_str().unwrap();
                let Some(media) = content.get(content_type) else {
                    panic!(
                        "{what}: {status} has Content-Type {content_type}, documented {content:?}"
                    );
                };
                if content_type == "application/json" {
                    let value = reply.try_json().expect("a JSON body");
                    if let Err(e) = validate(&doc, &media["schema"], &value, "body") {
                        panic!("{what}: {status} body {value} does not match the document: {e}");
                    }
                }
            }
        }
        for name in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|h| h.keys())
        {
            // Documented headers may be conditional (X-Next-Cursor); those present are valid.
            if let Some(value) = reply.headers.get(name.as_str()) {
                assert!(value.to_str().is_ok(), "{what}: header {name}");
            }
        }
    }
}

#[tokio::test]
async fn methods_the_document_does_not_list_are_refused() {
    let doc = served_document().await;
    let app = app(&["--no-persist"]);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| item.get(*m).is_some())
            .collect();
        let (_, _, op) = operations(&doc)
            .into_iter()
            .find(|(p, _, _)| p == path)
            .unwrap();
        let uri = concrete(&doc, path, &op);
        for method in METHODS {
            // axum answers HEAD with the GET handler; HEAD is implied by GET.
            if documented.contains(method) || (*method == "head" && documented.contains(&"get")) {
                continue;
            }
            let reply = send(&app, method, &uri, None, None).await;
            // A HEAD answer has no body to tell the fallback by.
            let refused = reply.is_wrong_method()
                || (*method == "head" && reply.status == StatusCode::METHOD_NOT_ALLOWED);
            assert!(
                refused,
                "{} {uri}: not documented, so it should be 405, got {} {:?}",
                method.to_uppercase(),
                reply.status,
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn paths_next_to_documented_ones_are_unknown() {
    let doc = served_document().await;
    let app = app(&["--no-persist"]);
    let templates: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let mut candidates = BTreeSet::from(["/".to_owned(), "/nope".to_owned(), "/keys/".to_owned()]);
    for (path, _, op) in operations(&doc) {
        let uri = concrete(&doc, &path, &op);
        match uri.strip_suffix('/') {
            Some(bare) => candidates.insert(bare.to_owned()),
            None => candidates.insert(format!("{uri}/")),
        };
        candidates.insert(format!("{}/x", uri.trim_end_matches('/')));
    }
    for uri in candidates {
        if templates.iter().any(|t| matches_template(t, &uri)) {
            continue;
        }
        for method in ["get", "post"] {
            let reply = send(&app, method, &uri, None, None).await;
            assert!(
                reply.is_unknown_route(),
                "{} {uri}: undocumented, so it should be 404 no such route, got {} {:?}",
                method.to_uppercase(),
                reply.status,
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn every_error_response_is_the_shared_error_body() {
    let doc = served_document().await;
    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    for (path, method, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success response"
        );
        for (status, response) in responses {
            let response = resolve(&doc, response);
            let content = response.get("content").and_then(Value::as_object);
            if method == "head" {
                // HEAD responses carry no body.
                assert!(content.is_none(), "HEAD {path} {status}: documents a body");
                continue;
            }
            if status.starts_with('2') {
                continue;
            }
            let content = content
                .unwrap_or_else(|| panic!("{method} {path} {status}: no error body documented"));
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/json"]["schema"], error_body,
                "{method} {path} {status}: not ErrorBody"
            );
        }
    }

    // ErrorBody is {"error": <one of the API's codes>, "message": string}.
    let schema = resolve(&doc, &error_body);
    assert_eq!(schema["required"], json!(["error", "message"]));
    assert_eq!(schema["properties"]["message"]["type"], "string");
    let codes = resolve(&doc, &schema["properties"]["error"]);
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes["enum"], json!(all));
    // ...and every error the server makes fits it.
    for error in [
        ApiError::bad_request("m"),
        ApiError::not_found("m"),
        ApiError::method_not_allowed(),
        ApiError::conflict("m"),
        ApiError::not_an_integer("m"),
        ApiError::read_only(),
        ApiError::unauthorized(),
        ApiError::too_large("m"),
        ApiError::unavailable("m", 1),
        ApiError::insufficient_storage("m"),
        ApiError::outcome_unknown("m"),
        ApiError::counters_full(1),
        ApiError::stored_value_too_large("k", 2, 1),
        ApiError::idempotency_key_reused(),
        ApiError::idempotency_key_in_use(),
        ApiError::internal("m"),
    ] {
        assert!(ErrorCode::ALL.contains(&error.code()), "{error}");
    }
}

#[tokio::test]
async fn auth_is_documented_where_the_server_asks_for_it() {
    let doc = served_document().await;
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["type"],
        "http"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let app = app(&["--no-persist", "--auth-token", TOKEN]);
    let mut public = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let uri = concrete(&doc, &path, &op);
        let open = op.get("security") == Some(&json!([]));
        if open {
            public.insert(path.clone());
        }
        let without = send(&app, &method, &uri, None, None).await;
        let with = send(&app, &method, &uri, None, Some(TOKEN)).await;
        let what = format!("{} {uri}", method.to_uppercase());
        assert_eq!(
            without.status == StatusCode::UNAUTHORIZED,
            !open,
            "{what}: documented {}, answered {} without a token",
            if open { "public" } else { "bearer-only" },
            without.status
        );
        assert_ne!(
            with.status,
            StatusCode::UNAUTHORIZED,
            "{what} with the token"
        );
        let documents_401 = op["responses"].get("401").is_some();
        assert_eq!(
            documents_401, !open,
            "{what}: 401 documented iff auth applies"
        );
    }
    assert_eq!(
        public,
        BTreeSet::from(["/healthz".to_owned(), "/readyz".to_owned()])
    );
}
