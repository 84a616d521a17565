//! Routing and the object operations: get, list, create, replace, patch, delete (with
//! propagation to dependents), each answering as the API server does, errors as `Status`
//! objects; pods' logs, and the downloads DownloadRequests point at.

use crate::now;
use crate::resources::Resource;
use crate::store::Key;
use crate::{Cluster, discovery, schema, selectors::Selector, watch};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn router(cluster: Cluster) -> axum::Router {
    axum::Router::new()
        .route("/kubesim/downloads/{id}", axum::routing::get(download))
        .fallback(handle)
        .with_state(cluster)
}

/// A processed DownloadRequest's file, as the signed object-storage URL would serve it.
async fn download(State(cluster): State<Cluster>, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    match crate::lock(&cluster.inner.downloads).get(&id) {
        Some(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], body.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "NoSuchKey: the specified key does not exist\n",
        )
            .into_response(),
    }
}

/// An error as the API server writes it.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn status(&self) -> Value {
        let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code});
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }

    fn not_found(r: &Resource, name: &str) -> ApiError {
        ApiError {
            details: json!({"name": name, "group": r.group, "kind": r.plural}),
            ..ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", r.qualified()))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, [(header::CONTENT_TYPE, "application/json")], self.status().to_string()).into_response()
    }
}

fn ok(code: StatusCode, body: Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Where a request points.
enum Route {
    Version,
    Core,
    Groups,
    ResourceList(String, String),
    OpenApiIndex,
    OpenApi(String),
    PodLog {
        namespace: String,
        name: String,
    },
    Objects {
        resource: Box<Resource>,
        namespace: String,
        name: Option<String>,
        status: bool,
    },
}

fn route(cluster: &Cluster, path: &str) -> Result<Route, ApiError> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let missing = || ApiError::new(404, "NotFound", "the server could not find the requested resource");
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::Core),
        ["apis"] => return Ok(Route::Groups),
        ["openapi", "v3"] => return Ok(Route::OpenApiIndex),
        ["openapi", "v3", gv @ ..] => return Ok(Route::OpenApi(gv.join("/"))),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(missing()),
    };
    if rest.is_empty() {
        return Ok(Route::ResourceList(group.into(), version.into()));
    }
    let served = |plural: &str| {
        cluster
            .resources()
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if served(plural).is_some_and(|r| r.namespaced) => (ns.to_string(), {
            let mut v = vec![*plural];
            v.extend(more);
            v
        }),
        other => (String::new(), other.to_vec()),
    };
    let resource = served(rest[0]).ok_or_else(missing)?;
    let (name, status) = match &rest[1..] {
        [] => (None, false),
        [name] => (Some(name.to_string()), false),
        [name, "status"] if resource.status_subresource => (Some(name.to_string()), true),
        [name, "log"] if resource.group.is_empty() && resource.plural == "pods" && !namespace.is_empty() => {
            return Ok(Route::PodLog {
                namespace,
                name: name.to_string(),
            });
        }
        _ => return Err(missing()),
    };
    Ok(Route::Objects {
        resource: Box::new(resource),
        namespace,
        name,
        status,
    })
}

async fn handle(State(cluster): State<Cluster>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query: HashMap<String, String> = uri.query().map(|q| url_pairs(q).into_iter().collect()).unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let route = match route(&cluster, uri.path()) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match (route, method.clone()) {
        (Route::Version, Method::GET) => ok(StatusCode::OK, discovery::version()),
        (Route::Core, Method::GET) => ok(StatusCode::OK, discovery::api_versions(&host)),
        (Route::Groups, Method::GET) => ok(StatusCode::OK, discovery::api_groups(&cluster)),
        (Route::ResourceList(g, v), Method::GET) => match discovery::resource_list(&cluster, &g, &v) {
            Some(list) => ok(StatusCode::OK, list),
            None => ApiError::new(404, "NotFound", "the server could not find the requested resource").into_response(),
        },
        (Route::OpenApiIndex, Method::GET) => ok(StatusCode::OK, discovery::openapi_index(&cluster)),
        (Route::OpenApi(gv), Method::GET) => match discovery::openapi_document(&cluster, &gv) {
            Some(doc) => ok(StatusCode::OK, doc),
            None => ApiError::new(404, "NotFound", "the server could not find the requested resource").into_response(),
        },
        (Route::PodLog { namespace, name }, Method::GET) => {
            crate::jobs::log_response(&cluster, &namespace, &name, &query).unwrap_or_else(IntoResponse::into_response)
        }
        (
            Route::Objects {
                resource,
                namespace,
                name,
                status,
            },
            method,
        ) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let accept = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok()).unwrap_or("");
            let table = method == Method::GET && crate::table::wanted(accept, &resource);
            objects(
                &cluster,
                &resource,
                &namespace,
                name.as_deref(),
                status,
                &method,
                &query,
                &content_type,
                body,
                table,
            )
            .unwrap_or_else(IntoResponse::into_response)
        }
        _ => ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method}"),
        )
        .into_response(),
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| {
                std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        match (bytes[i], hex) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[allow(clippy::too_many_arguments)]
fn objects(
    cluster: &Cluster,
    resource: &Resource,
    namespace: &str,
    name: Option<&str>,
    status: bool,
    method: &Method,
    query: &HashMap<String, String>,
    content_type: &str,
    body: Bytes,
    table: bool,
) -> Result<Response, ApiError> {
    let verb = match (method, name) {
        (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "",
    };
    if cluster.forbidden(verb, &resource.plural) {
        let place = if namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        return Err(ApiError {
            details: json!({"group": resource.group, "kind": resource.plural}),
            ..ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} is forbidden: User \"system:serviceaccount:lifeboat:runner\" cannot {verb} resource \"{}\" in API group \"{}\" {place}",
                    resource.qualified(),
                    resource.plural,
                    resource.group
                ),
            )
        });
    }
    if cluster.take_failure(verb, &resource.plural) {
        return Err(ApiError::new(500, "InternalError", "kubesim: injected failure"));
    }
    let manager = query.get("fieldManager").cloned().unwrap_or_else(|| "unknown".into());
    let strict = query.get("fieldValidation").is_some_and(|v| v == "Strict");
    match (method, name) {
        (&Method::GET, None) => {
            let selector = Selector::parse(
                query.get("labelSelector").map(String::as_str),
                query.get("fieldSelector").map(String::as_str),
            )
            .map_err(|e| ApiError::new(400, "BadRequest", e))?;
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch::stream(cluster, resource, namespace, selector, query);
            }
            let store = cluster.store();
            let items: Vec<Value> = store
                .list(&resource.group, &resource.plural, namespace)
                .into_iter()
                .filter(|o| selector.matches(o))
                .collect();
            if table {
                return Ok(ok(StatusCode::OK, crate::table::of(resource, &items, &store.rv().to_string())));
            }
            Ok(ok(
                StatusCode::OK,
                json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(),
                       "metadata": {"resourceVersion": store.rv().to_string()}, "items": items}),
            ))
        }
        (&Method::GET, Some(name)) => {
            let store = cluster.store();
            let object = store
                .get(&key(resource, namespace, name))
                .cloned()
                .ok_or_else(|| ApiError::not_found(resource, name))?;
            if table {
                return Ok(ok(StatusCode::OK, crate::table::of(resource, &[object], &store.rv().to_string())));
            }
            Ok(ok(StatusCode::OK, object))
        }
        (&Method::POST, None) => {
            let object = parse_body(&body)?;
            let created = create(cluster, resource, namespace, object, &manager, strict)?;
            Ok(ok(StatusCode::CREATED, created))
        }
        (&Method::PUT, Some(name)) => {
            let object = parse_body(&body)?;
            let updated = replace(cluster, resource, namespace, name, object, status, strict)?;
            Ok(ok(StatusCode::OK, updated))
        }
        (&Method::PATCH, Some(name)) => {
            let patched = patch(
                cluster,
                resource,
                namespace,
                name,
                status,
                content_type,
                &body,
                query,
                &manager,
                strict,
            )?;
            Ok(ok(patched.0, patched.1))
        }
        (&Method::DELETE, Some(name)) => {
            let options: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let policy = query
                .get("propagationPolicy")
                .map(String::as_str)
                .or_else(|| options["propagationPolicy"].as_str())
                .map(str::to_owned);
            let orphan = match policy.as_deref() {
                Some("Orphan") => true,
                Some(_) => false,
                // batch/v1 Jobs still default to orphaning their pods, as the API server does.
                None => {
                    options["orphanDependents"] == true
                        || query.get("orphanDependents").is_some_and(|o| o == "true")
                        || (resource.group == "batch" && resource.plural == "jobs")
                }
            };
            let deleted = delete(cluster, resource, namespace, name)?;
            if !orphan {
                delete_dependents(cluster, namespace, &deleted);
            }
            Ok(ok(StatusCode::OK, deleted))
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", format!("{method} is not supported here"))),
    }
}

fn key(r: &Resource, namespace: &str, name: &str) -> Key {
    (r.group.clone(), r.plural.clone(), namespace.to_owned(), name.to_owned())
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_saphyr::from_slice::<Value>(body).map_err(|e| e.to_string()))
        .map_err(|e| ApiError::new(400, "BadRequest", format!("the body of the request could not be decoded: {e}")))
}

/// Checks kind and apiVersion, runs the CRD schema, and refuses unknown fields when strict.
fn check(resource: &Resource, name: &str, object: &mut Value, strict: bool) -> Result<(), ApiError> {
    for (field, expected) in [("kind", resource.kind.clone()), ("apiVersion", resource.api_version())] {
        match object.get(field).and_then(Value::as_str) {
            Some(found) if found != expected => {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    format!("the {field} of the object ({found}) does not match this endpoint ({expected})"),
                ));
            }
            _ => object[field] = expected.into(),
        }
    }
    let Some(schema) = &resource.schema else { return Ok(()) };
    let outcome = schema::validate(object, schema);
    if strict && !outcome.unknown.is_empty() {
        let fields: Vec<String> = outcome.unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        return Err(ApiError::new(
            400,
            "BadRequest",
            format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                resource.kind,
                resource.version,
                resource.kind,
                fields.join(", ")
            ),
        ));
    }
    if outcome.causes.is_empty() {
        return Ok(());
    }
    let messages: Vec<String> = outcome.causes.iter().map(|c| c.message.clone()).collect();
    let joined = if messages.len() == 1 {
        messages[0].clone()
    } else {
        format!("[{}]", messages.join(", "))
    };
    Err(ApiError {
        details: json!({"name": name, "group": resource.group, "kind": resource.kind,
            "causes": outcome.causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>()}),
        ..ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", resource.qualified_kind()),
        )
    })
}

/// What built-in controllers' API defaults would fill in.
fn builtin_defaults(resource: &Resource, object: &mut Value) {
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("apps", "Deployment") => {
            let spec = &mut object["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = 1.into();
            }
            if spec["strategy"].is_null() {
                spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
            }
        }
        ("apps", "StatefulSet") => {
            let spec = &mut object["spec"];
            if spec["replicas"].is_null() {
                spec["replicas"] = 1.into();
            }
            if spec["updateStrategy"].is_null() {
                spec["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
            }
            if spec["podManagementPolicy"].is_null() {
                spec["podManagementPolicy"] = "OrderedReady".into();
            }
        }
        ("", "Namespace") if object["status"]["phase"].is_null() => object["status"] = json!({"phase": "Active"}),
        // `stringData` is write-only: the server folds it into `data`, base64-encoded.
        ("", "Secret") => {
            if let Some(Value::Object(strings)) = object.as_object_mut().and_then(|o| o.remove("stringData")) {
                use base64::Engine;
                for (key, value) in strings {
                    let text = value.as_str().unwrap_or_default();
                    object["data"][key] = base64::engine::general_purpose::STANDARD.encode(text).into();
                }
            }
        }
        _ => {}
    }
}

fn namespace_usable(cluster: &Cluster, resource: &Resource, namespace: &str) -> Result<(), ApiError> {
    if !resource.namespaced {
        return Ok(());
    }
    let store = cluster.store();
    match store.get(&("".into(), "namespaces".into(), "".into(), namespace.into())) {
        None => Err(ApiError {
            details: json!({"name": namespace, "kind": "namespaces"}),
            ..ApiError::new(404, "NotFound", format!("namespaces \"{namespace}\" not found"))
        }),
        Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::new(
            403,
            "Forbidden",
            format!("unable to create new content in namespace {namespace} because it is being terminated"),
        )),
        Some(_) => Ok(()),
    }
}

pub(crate) fn create_object(
    cluster: &Cluster,
    resource: &Resource,
    namespace: &str,
    object: Value,
    manager: &str,
) -> Result<Value, ApiError> {
    create(cluster, resource, namespace, object, manager, false)
}

fn create(
    cluster: &Cluster,
    resource: &Resource,
    namespace: &str,
    mut object: Value,
    manager: &str,
    strict: bool,
) -> Result<Value, ApiError> {
    if !object.is_object() {
        return Err(ApiError::new(400, "BadRequest", "the body must be an object"));
    }
    let meta = &mut object["metadata"];
    if meta.is_null() {
        *meta = json!({});
    }
    if let Some(ns) = meta["namespace"].as_str()
        && resource.namespaced
        && ns != namespace
    {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if meta["name"].as_str().is_none_or(str::is_empty) {
        match meta["generateName"].as_str() {
            Some(prefix) => meta["name"] = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5]).into(),
            None => {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        resource.qualified_kind()
                    ),
                ));
            }
        }
    }
    let name = meta["name"].as_str().unwrap_or_default().to_owned();
    if resource.namespaced {
        meta["namespace"] = namespace.into();
    }
    if resource.status_subresource && resource.schema.is_some() {
        object.as_object_mut().map(|o| o.remove("status"));
    }
    check(resource, &name, &mut object, strict)?;
    builtin_defaults(resource, &mut object);
    namespace_usable(cluster, resource, namespace)?;
    let mut store = cluster.store();
    let key = key(resource, namespace, &name);
    if store.get(&key).is_some() {
        return Err(ApiError {
            details: json!({"name": name, "group": resource.group, "kind": resource.plural}),
            ..ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", resource.qualified()))
        });
    }
    if resource.group.is_empty() && resource.plural == "services" {
        // Under the store's lock, so that two Services never get one IP.
        crate::endpointslices::allocate_cluster_ip(&store, &mut object);
    }
    let rv = store.next_rv();
    let meta = &mut object["metadata"];
    meta["uid"] = uuid::Uuid::new_v4().to_string().into();
    meta["creationTimestamp"] = now().into();
    meta["resourceVersion"] = rv.to_string().into();
    meta["generation"] = 1.into();
    meta["managedFields"] = json!([{"manager": manager, "operation": "Update", "apiVersion": resource.api_version(), "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {}}]);
    store.put(key, object.clone(), "ADDED");
    Ok(object)
}

/// A controller's write of a whole object: metadata and spec (a status subresource's status
/// is kept as it is), e.g. to add or remove a finalizer.
pub(crate) fn update_object(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str, object: Value) -> Result<Value, ApiError> {
    replace(cluster, resource, namespace, name, object, false, false)
}

/// A controller's delete, propagated in the background as a client's default delete is.
pub(crate) fn delete_object(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let deleted = delete(cluster, resource, namespace, name)?;
    delete_dependents(cluster, namespace, &deleted);
    Ok(deleted)
}

/// A controller's write of an object's status.
pub(crate) fn update_status(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str, object: Value) -> Result<Value, ApiError> {
    replace(cluster, resource, namespace, name, object, true, false)
}

/// Stores `new` in place of the current object, keeping what the server owns.
#[allow(clippy::too_many_arguments)]
fn replace(
    cluster: &Cluster,
    resource: &Resource,
    namespace: &str,
    name: &str,
    mut new: Value,
    status_only: bool,
    strict: bool,
) -> Result<Value, ApiError> {
    if !new.is_object() {
        return Err(ApiError::new(400, "BadRequest", "the body must be an object"));
    }
    let current = cluster
        .store()
        .get(&key(resource, namespace, name))
        .cloned()
        .ok_or_else(|| ApiError::not_found(resource, name))?;
    match new["metadata"]["resourceVersion"].as_str() {
        Some(rv) if rv != current["metadata"]["resourceVersion"] => {
            return Err(ApiError {
                details: json!({"name": name, "group": resource.group, "kind": resource.plural}),
                ..ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        resource.qualified()
                    ),
                )
            });
        }
        None if resource.schema.is_some() => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    resource.qualified_kind()
                ),
            ));
        }
        _ => {}
    }
    if new["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL",
        ));
    }
    if resource.status_subresource {
        let keep = if status_only { "spec" } else { "status" };
        let taken = if status_only { "status" } else { "spec" };
        let body_part = new[taken].take();
        let mut merged = current.clone();
        merged[taken] = body_part;
        if status_only {
            merged["metadata"] = current["metadata"].clone();
        } else {
            merged["metadata"] = new["metadata"].take();
            merged[keep] = current[keep].clone();
            for (k, v) in new.as_object().into_iter().flatten() {
                if !matches!(k.as_str(), "spec" | "status" | "metadata") {
                    merged[k] = v.clone();
                }
            }
        }
        new = merged;
    }
    check(resource, name, &mut new, strict)?;
    builtin_defaults(resource, &mut new);
    let mut store = cluster.store();
    let key = key(resource, namespace, name);
    let Some(current) = store.get(&key).cloned() else {
        return Err(ApiError::not_found(resource, name));
    };
    if resource.group.is_empty() && resource.plural == "services" && !status_only {
        crate::endpointslices::keep_cluster_ip(&store, &current, &mut new);
    }
    let meta = &mut new["metadata"];
    for owned in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "namespace",
        "generation",
        "managedFields",
    ] {
        meta[owned] = current["metadata"][owned].clone();
    }
    meta["name"] = name.into();
    if resource.namespaced {
        meta["namespace"] = namespace.into();
    }
    let spec_changed = {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
                if resource.status_subresource {
                    o.remove("status");
                }
            }
            v
        };
        strip(&current) != strip(&new)
    };
    // Without a status subresource a status write is a write of the whole object, and the
    // API server counts it as a new generation like any other change outside metadata.
    if spec_changed && (!status_only || !resource.status_subresource) {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        new["metadata"]["generation"] = generation.into();
    }
    let meta = &mut new["metadata"];
    if meta
        .get("finalizers")
        .is_some_and(|f| f.as_array().is_some_and(Vec::is_empty) || f.is_null())
    {
        meta.as_object_mut().map(|m| m.remove("finalizers"));
    }
    let rv = store.next_rv();
    new["metadata"]["resourceVersion"] = rv.to_string().into();
    let deleting = !new["metadata"]["deletionTimestamp"].is_null();
    let finalizers_left = new["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if deleting && !finalizers_left {
        store.remove(&key, new.clone());
        return Ok(new);
    }
    store.put(key, new.clone(), "MODIFIED");
    Ok(new)
}

#[allow(clippy::too_many_arguments)]
fn patch(
    cluster: &Cluster,
    resource: &Resource,
    namespace: &str,
    name: &str,
    status_only: bool,
    content_type: &str,
    body: &[u8],
    query: &HashMap<String, String>,
    manager: &str,
    strict: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let current = cluster.store().get(&key(resource, namespace, name)).cloned();
    let patched = match media {
        "application/apply-patch+yaml" => {
            if !query.contains_key("fieldManager") {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let config = parse_body(body)?;
            let Some(mut current) = current else {
                let created = create(cluster, resource, namespace, config, manager, strict)?;
                return Ok((StatusCode::CREATED, created));
            };
            merge_config(&mut current, &config, resource.status_subresource);
            current
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            if media.starts_with("application/strategic") && resource.schema.is_some() {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            let mut current = current.ok_or_else(|| ApiError::not_found(resource, name))?;
            let patch: Value = serde_json::from_slice(body).map_err(|e| ApiError::new(400, "BadRequest", e.to_string()))?;
            let precondition = patch["metadata"]["resourceVersion"].clone();
            let rv = current["metadata"]["resourceVersion"].clone();
            json_patch::merge(&mut current, &patch);
            current["metadata"]["resourceVersion"] = if precondition.is_null() { rv } else { precondition };
            current
        }
        "application/json-patch+json" => {
            let mut current = current.ok_or_else(|| ApiError::not_found(resource, name))?;
            let patch: json_patch::Patch = serde_json::from_slice(body).map_err(|e| ApiError::new(400, "BadRequest", e.to_string()))?;
            let patch = absent_equals_null(&current, patch);
            json_patch::patch(&mut current, &patch).map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
            current
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                ),
            ));
        }
    };
    let updated = replace(cluster, resource, namespace, name, patched, status_only, strict)?;
    Ok((StatusCode::OK, updated))
}

/// The API server's JSON patch `test` finds a missing field equal to `null` (controllers
/// rely on it, e.g. kube-runtime's finalizer helper tests `/metadata/finalizers` for null
/// before adding the first); json-patch calls it an error, so such tests are dropped.
fn absent_equals_null(current: &Value, patch: json_patch::Patch) -> json_patch::Patch {
    let ops = patch
        .0
        .into_iter()
        .filter(|op| match op {
            json_patch::PatchOperation::Test(t) => !(t.value.is_null() && current.pointer(t.path.as_str()).is_none()),
            _ => true,
        })
        .collect();
    json_patch::Patch(ops)
}

/// Server-side apply, simplified: the applied configuration is merged into the object
/// (lists replaced whole); fields it does not mention are left alone. The status is applied
/// only to a resource without a status subresource, where it is part of the main resource.
fn merge_config(target: &mut Value, config: &Value, status_subresource: bool) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if k == "status" && status_subresource {
                    continue;
                }
                // Below the top level a field named `status` is ordinary data.
                merge_config(t.entry(k.clone()).or_insert(Value::Null), v, false);
            }
        }
        (t, c) => *t = c.clone(),
    }
}

fn delete(cluster: &Cluster, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let key = key(resource, namespace, name);
    let mut store = cluster.store();
    let mut object = store.get(&key).cloned().ok_or_else(|| ApiError::not_found(resource, name))?;
    let is_namespace = resource.group.is_empty() && resource.plural == "namespaces";
    let has_finalizers = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if !is_namespace && !has_finalizers {
        store.remove(&key, object.clone());
        return Ok(object);
    }
    if object["metadata"]["deletionTimestamp"].is_null() {
        object["metadata"]["deletionTimestamp"] = now().into();
        object["metadata"]["deletionGracePeriodSeconds"] = 0.into();
        if is_namespace {
            object["status"]["phase"] = "Terminating".into();
        }
        let rv = store.next_rv();
        object["metadata"]["resourceVersion"] = rv.to_string().into();
        store.put(key.clone(), object.clone(), "MODIFIED");
    }
    drop(store);
    if is_namespace {
        let cluster = cluster.clone();
        let ns = name.to_owned();
        tokio::spawn(async move { empty_namespace(cluster, ns).await });
    }
    Ok(object)
}

/// The garbage collector: deletes the objects in `namespace` owned by `owner` (and theirs).
/// Foreground deletion is answered as Background: the dependents go at once either way.
fn delete_dependents(cluster: &Cluster, namespace: &str, owner: &Value) {
    let Some(uid) = owner["metadata"]["uid"].as_str() else { return };
    let dependents: Vec<(Resource, String)> = {
        let store = cluster.store();
        store
            .in_namespace(namespace)
            .into_iter()
            .filter_map(|key| {
                let object = store.get(&key)?;
                // Ones already being deleted are left to their finalizers (and cycles end).
                let owned = object["metadata"]["deletionTimestamp"].is_null()
                    && object["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
                let resource = cluster.resource(&key.0, &key.1)?;
                owned.then(|| (resource, key.3.clone()))
            })
            .collect()
    };
    for (resource, name) in dependents {
        if let Ok(deleted) = delete(cluster, &resource, namespace, &name) {
            delete_dependents(cluster, namespace, &deleted);
        }
    }
}

/// The namespace controller: deletes everything in a terminating namespace (objects with
/// finalizers wait for them), then the namespace itself.
async fn empty_namespace(cluster: Cluster, namespace: String) {
    loop {
        let keys = cluster.store().in_namespace(&namespace);
        if keys.is_empty() {
            break;
        }
        for (group, plural, ns, name) in keys {
            if let Some(r) = cluster.resource(&group, &plural) {
                let deleting = cluster
                    .store()
                    .get(&(group.clone(), plural.clone(), ns.clone(), name.clone()))
                    .is_some_and(|o| !o["metadata"]["deletionTimestamp"].is_null());
                if !deleting {
                    let _ = delete(&cluster, &r, &ns, &name);
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let key = ("".to_owned(), "namespaces".to_owned(), String::new(), namespace);
    let mut store = cluster.store();
    if let Some(object) = store.get(&key).cloned() {
        store.remove(&key, object);
    }
}
