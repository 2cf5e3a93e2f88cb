//! The OpenAPI 3 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Routes and their documentation come from one list: each route family's `routes()`
//! registers its handlers with [`utoipa_axum::routes!`], which takes both the axum path
//! and the OpenAPI operation from the handler's `#[utoipa::path]` attribute. [`router`]
//! merges the families; [`crate::app`] serves the router half and [`document`] the
//! documentation half, so a route cannot be served without being documented (or the
//! other way round). `tests/integration/openapi.rs` checks the two still agree.
//!
//! Handlers state their own parameters, bodies and outcomes. The responses that every
//! route can give because of the middleware — `401` without the token, `503` when the
//! server sheds load or a request times out, `500` — are added here by [`finish`], as is
//! the rendering of axum's `{*path}` wildcard as the OpenAPI template `{path}`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorCode};
use crate::routes as families;
use crate::state::AppState;

/// The document's fixed parts: info, tags, the bearer scheme, shared schemas.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "kvserver",
        version = env!("CARGO_PKG_VERSION"),
        description = "An HTTP key-value service: JSON values under string keys with optional \
            time-to-live, batch and sliding-TTL value routes, route hit counters, UUID lookup \
            and operations endpoints.\n\n\
            Every error response has the body `{\"error\": \"<code>\", \"message\": \"<sentence>\"}` \
            (schema `ErrorBody`). Checks apply in this order: auth (`401`), route and method \
            (`404`/`405`), read-only (`403`), request validation (`400`/`413`), then the operation. \
            Time-to-live values are seconds, fractional allowed, from 0.001 to 315360000. \
            When the server runs with `--auth-token`, every route but `/healthz` and `/readyz` \
            needs `Authorization: Bearer TOKEN`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ErrorCode)),
    tags(
        (name = "keys", description = "The canonical key API"),
        (name = "values", description = "The value store API; follows `--ttl` and `--sliding`"),
        (name = "hits", description = "Route hit counters"),
        (name = "lookup", description = "UUID lookup"),
        (name = "ops", description = "Probes, metrics, server information and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme that [`ApiDoc`] requires by default.
#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The server's `--auth-token`; required only when the server has one",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route, documented: the route families and `/openapi.json` itself.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(families::keys::routes())
        .merge(families::values::routes())
        .merge(families::hits::routes())
        .merge(families::lookup::routes())
        .merge(families::ops::routes())
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of [`router`], finished.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> =
        LazyLock::new(|| finish(router().into_openapi()));
    &DOCUMENT
}

/// A route template as the document spells it: axum's catch-all `{*name}` is the
/// OpenAPI template `{name}`. Metrics labels use this spelling too.
pub fn template(route: &str) -> Cow<'_, str> {
    if route.contains("{*") {
        Cow::Owned(route.replace("{*", "{"))
    } else {
        Cow::Borrowed(route)
    }
}

/// What one operation of the document takes in its query string.
#[derive(Debug)]
pub struct QueryParams {
    /// The query parameters the operation declares, in declaration order.
    pub names: Vec<String>,
    /// Whether the operation is a write that a read-only server refuses (`403`) before
    /// it looks at the request: it documents a `403 read_only` response.
    pub refused_when_read_only: bool,
}

/// The query parameters the operation `method` (upper case, as sent) on the route
/// `template` declares in its `#[utoipa::path(params(...))]`, the one place a route
/// states them. `HEAD` falls back to `GET`, as axum routes it. `None` when the
/// document has no such operation.
pub fn query_params(method: &str, template: &str) -> Option<&'static QueryParams> {
    static TABLE: LazyLock<HashMap<(String, String), QueryParams>> = LazyLock::new(|| {
        let mut table = HashMap::new();
        for (path, item) in &document().paths.paths {
            for (method, op) in operations(item) {
                let names = op
                    .parameters
                    .iter()
                    .flatten()
                    .filter_map(|p| match p {
                        RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name.clone()),
                        _ => None,
                    })
                    .collect();
                let refused_when_read_only = op.responses.responses.contains_key("403");
                let rules = QueryParams {
                    names,
                    refused_when_read_only,
                };
                table.insert((method.to_ascii_uppercase(), path.clone()), rules);
            }
        }
        table
    });
    let find = |m: &str| TABLE.get(&(m.to_owned(), template.to_owned()));
    find(method).or_else(|| if method == "HEAD" { find("GET") } else { None })
}

/// [`document`] as JSON text.
fn document_json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        // Serializing a tree of strings, maps and numbers cannot fail.
        document().to_json().unwrap_or_default()
    });
    &JSON
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    summary = "This OpenAPI document",
    description = "The OpenAPI 3 document of every route, generated from the code.",
    responses((
        status = 200,
        description = "This OpenAPI 3 document",
        body = serde_json::Value,
        content_type = "application/json"
    ))
)]
async fn openapi_json() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// Completes what the handlers' attributes cannot say one by one:
///
/// - axum's catch-all `{*name}` becomes the OpenAPI template `{name}`;
/// - every operation can answer `400` for a query parameter it does not declare (see
///   [`query_params`] and `middleware.rs`);
/// - an operation that opted out of auth with `security(())` (the probes) gets
///   `security: []`, the OpenAPI way to say "no auth";
/// - every other operation can also answer `401` (with `--auth-token`), `503` with
///   `Retry-After` (load shedding, request timeout, Redis unreachable) and `500`; the
///   probes are neither authenticated nor shed (see `middleware.rs`);
/// - an operation that takes an `Idempotency-Key` header can answer `422
///   idempotency_key_reused` and `409 idempotency_key_in_use`;
/// - an operation that writes can answer `504 outcome_unknown` and `507` (a full disk,
///   or `counters_full`), and the reads of
///   stored values `502 stored_value_too_large` (values in Redis beyond the limit).
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        for (method, op) in operations_mut(&mut item) {
            let head = method == "head";
            document_unknown_query(op, head);
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
            if public {
                op.security = Some(Vec::new());
                continue;
            }
            let responses = &mut op.responses.responses;
            responses.entry("401".into()).or_insert_with(|| {
                error_response(
                    "unauthorized: the server has an `--auth-token` and the request did not \
                     send it as `Authorization: Bearer TOKEN`",
                    head,
                    Some(Extra::Challenge),
                )
            });
            responses.entry("503".into()).or_insert_with(|| {
                error_response(
                    "unavailable: too many requests in flight, the request took too long, or \
                     the Redis backend is unreachable; nothing was applied, retry after \
                     `Retry-After` seconds",
                    head,
                    Some(Extra::RetryAfter),
                )
            });
            let idempotent_retry = op.parameters.iter().flatten().any(|p| {
                matches!(p, RefOr::T(p)
                    if p.parameter_in == ParameterIn::Header && p.name == "Idempotency-Key")
            });
            if idempotent_retry {
                responses.entry("422".into()).or_insert_with(|| {
                    error_response(
                        "idempotency_key_reused: the `Idempotency-Key` came with another \
                         request (route, query or body) within the idempotency window",
                        head,
                        None,
                    )
                });
                responses.entry("409".into()).or_insert_with(|| {
                    error_response(
                        "idempotency_key_in_use: the first request with this \
                         `Idempotency-Key` still runs; retry after `Retry-After` seconds \
                         with the same key to get its outcome",
                        head,
                        Some(Extra::RetryAfter),
                    )
                });
            }
            let template = path.replace("{*", "{");
            // Every method but GET changes data, and so does a GET that counts a hit;
            // `/get_value` and `/test/{n}` are POSTs that write nothing.
            let write = (!matches!(method, "get" | "head" | "options")
                && !matches!(template.as_str(), "/get_value" | "/test/{n}" | "/test/{n}/"))
                || template == "/api"
                || template.starts_with("/api/");
            if write {
                responses.entry("504".into()).or_insert_with(|| {
                    error_response(
                        "outcome_unknown: the write was sent (or started) and no answer came \
                         in time; it may or may not have been applied. Retry only with the same \
                         `Idempotency-Key`, or read the data to find out",
                        head,
                        None,
                    )
                });
                responses.entry("507".into()).or_insert_with(|| {
                    error_response(
                        "insufficient_storage: the data directory cannot be written (the disk \
                         is full); nothing was applied, reads still work, retry after \
                         `Retry-After` seconds. On `/api/...`, also `counters_full`: \
                         `--max-counters` paths are counted and this path is new",
                        head,
                        Some(Extra::RetryAfter),
                    )
                });
            }
            let reads_values = match method {
                "get" => matches!(template.as_str(), "/keys" | "/keys/{key}" | "/values"),
                "post" => template == "/get_value",
                _ => false,
            };
            if reads_values {
                responses.entry("502".into()).or_insert_with(|| {
                    error_response(
                        "stored_value_too_large: with `--backend`, a value stored in Redis by \
                         another client is larger than `--max-value-bytes`; it is not served",
                        head,
                        None,
                    )
                });
            }
            responses.entry("500".into()).or_insert_with(|| {
                error_response(
                    "internal: the server failed; the detail is in its log",
                    head,
                    None,
                )
            });
        }
        doc.paths.paths.insert(template(&path).into_owned(), item);
    }
    doc
}

/// Says in the operation's `400` response that a query parameter it does not declare
/// is refused, adding the response if the operation has none.
fn document_unknown_query(op: &mut Operation, head: bool) {
    const UNKNOWN: &str = "a query parameter this operation does not declare";
    match op.responses.responses.get_mut("400") {
        Some(RefOr::T(response)) => {
            response.description = format!("{}, or {UNKNOWN}", response.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let response = error_response(&format!("bad_request: {UNKNOWN}"), head, None);
            op.responses.responses.insert("400".into(), response);
        }
    }
}

/// The operations of a path item, with their lower-case method names.
pub fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("options", &item.options),
        ("head", &item.head),
        ("patch", &item.patch),
        ("trace", &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_ref()?)))
}

/// The operations of a path item, with their lower-case method names.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_mut()?)))
}

/// A header that a shared error response carries.
#[derive(Debug, Clone, Copy)]
enum Extra {
    /// `Retry-After`, on `503`.
    RetryAfter,
    /// `WWW-Authenticate`, on `401`.
    Challenge,
}

/// A response with an [`ErrorBody`] (none for `HEAD`), optionally with a header.
fn error_response(
    description: &str,
    head: bool,
    extra: Option<Extra>,
) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description);
    if !head {
        response = response.content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
    }
    response = match extra {
        None => response,
        Some(Extra::RetryAfter) => response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(u32::schema()))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        ),
        Some(Extra::Challenge) => response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(String::schema()))
                .description(Some(
                    "`Bearer` when no token was sent; `Bearer error=\"invalid_token\"` when \
                     a wrong one was (RFC 6750)",
                ))
                .build(),
        ),
    };
    response.build().into()
}
