//! The node's HTTP layer: the endpoints (`/v1/...`, `/metrics`, the status page at `/`), their
//! routing on axum, the answers' JSON, and load protection. What an endpoint does is in
//! [`crate::handle`] and [`crate::order`]; every refusal is an [`ApiError`], answered
//! `{error, message, ...}`.
//!
//! Adding an endpoint is one handler, one row in [`endpoints`], one path in `openapi.json`
//! and one row in the README's table; the tests below fail until all four agree.

mod claims;
mod history;
mod limit;
mod members;
mod page;
mod status;
mod users;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, error, warn};

use crate::error::ApiError;
use crate::handle::Shared;
use crate::order::Orderer;

pub use claims::CLAIM_BODY_BYTES_MAX;
pub use limit::Limits;
pub use members::{AdmissionBody, MEMBERSHIP_BODY_BYTES_MAX};

use limit::{ClientKey, Gate, RateLimiter};

/// The OpenAPI 3.1 document of this API, served at `GET /v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A client that does not finish its request headers within this is cut off.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections answered 429 (over a connection cap) at once; past this they are closed unanswered.
const REFUSING_MAX: usize = 64;
/// How long a refused connection may take to send the request it is refused.
const REFUSING_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    orderer: Arc<Orderer>,
    /// Operator instructions seen lately (each is carried out once).
    operators: Arc<std::sync::Mutex<crate::membership::operator::Guard>>,
    /// Recent progress, for `GET /v1/history`.
    history: Arc<history::History>,
}

/// The result an answer is counted under in `warpnet_api_requests_total` (an error's code, or
/// what a success was), carried from the handler to the counting in [`serve`].
#[derive(Clone, Copy)]
struct Counted(&'static str);

/// A success, counted under `result`.
fn ok(result: &'static str, status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.extensions_mut().insert(Counted(result));
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal { detail } = &self {
            // The node's own failure: the operator needs to see it; the client is told it is
            // not its fault.
            error!(%detail, "api: internal error");
        } else {
            debug!(code = self.code(), message = %self, "api: refused");
        }
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, Json(self.body())).into_response();
        if let Some(s) = self.retry_after_s() {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r.extensions_mut().insert(Counted(self.code()));
        r
    }
}

/// One endpoint: its path in OpenAPI syntax (`{name}` for a parameter, as axum routes it),
/// its method, and its handler.
struct Endpoint {
    path: &'static str,
    /// What the handler routes (`Endpoint::new`); the tests hold it against the spec.
    #[cfg_attr(not(test), allow(dead_code))]
    method: Method,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    fn new<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        method: Method,
        handler: H,
    ) -> Self {
        // Router construction: a method axum cannot route is a programming error.
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("axum cannot route {method} {path}"));
        Self { path, method, handler: on(filter, handler) }
    }

    /// Bodies over `bytes` are refused (413) as they arrive.
    fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }
}

/// Every endpoint of the API.
fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new("/v1/claims", Method::POST, claims::post).body_limit(CLAIM_BODY_BYTES_MAX),
        Endpoint::new("/v1/users/{id}", Method::GET, users::get),
        Endpoint::new("/v1/cluster", Method::GET, status::cluster),
        Endpoint::new("/v1/members", Method::GET, members::members),
        Endpoint::new("/v1/admissions", Method::GET, members::admissions),
        Endpoint::new("/v1/admissions", Method::POST, members::admit)
            .body_limit(MEMBERSHIP_BODY_BYTES_MAX),
        Endpoint::new("/v1/operator", Method::POST, members::operator)
            .body_limit(MEMBERSHIP_BODY_BYTES_MAX),
        Endpoint::new("/v1/epochs/{n}/proof", Method::GET, members::epoch_proof),
        Endpoint::new("/v1/evidence", Method::GET, members::evidence),
        Endpoint::new("/v1/routing", Method::GET, members::routing),
        Endpoint::new("/v1/health", Method::GET, status::health),
        Endpoint::new("/v1/openapi.json", Method::GET, status::openapi),
        Endpoint::new("/metrics", Method::GET, status::metrics),
        Endpoint::new("/v1/history", Method::GET, history::history),
        Endpoint::new("/", Method::GET, page::status_page),
    ]
}

async fn no_such_endpoint(uri: Uri) -> ApiError {
    ApiError::NoSuchEndpoint { path: uri.path().to_owned() }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_owned() }
}

fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for e in endpoints() {
        router = router.route(e.path, e.handler);
    }
    // After the routes: it applies to those already added.
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_such_endpoint)
        .with_state(state)
}

/// Serves the API until the task is dropped: at most `limits` connections (in all and per
/// client) and requests per client, each request answered by the router.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, limits: Limits) {
    let orderer = Orderer::start(shared.clone());
    let operators = Arc::default();
    let history = Arc::new(history::History::default());
    // Stops with this task: dropping the guard aborts the sampler.
    let _sampler = AbortOnDrop(tokio::spawn(history::sample(shared.clone(), history.clone())));
    let router = router(AppState { shared: shared.clone(), orderer, operators, history });
    let gate = Arc::new(Gate::new(&limits));
    let rates = Arc::new(RateLimiter::new(&limits));
    let refusing = Arc::new(tokio::sync::Semaphore::new(REFUSING_MAX));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "api accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let client = ClientKey::of(peer.ip());
        let permit = match gate.admit(client) {
            Ok(permit) => permit,
            Err(refusal) => {
                shared.metrics.api(refusal.code());
                match refusing.clone().try_acquire_owned() {
                    Ok(slot) => {
                        tokio::spawn(async move {
                            refuse(stream, refusal).await;
                            drop(slot);
                        });
                    }
                    Err(_) => debug!(%peer, "api: connection closed unanswered (too many refused)"),
                }
                continue;
            }
        };
        let (router, rates, metrics) = (router.clone(), rates.clone(), shared.metrics.clone());
        tokio::spawn(async move {
            connection(stream, client, router, rates, metrics).await;
            drop(permit);
        });
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves one admitted connection: each request takes a token from its client's bucket (else
/// 429), goes to the router, and is counted by its result.
async fn connection(
    stream: TcpStream,
    client: ClientKey,
    router: Router,
    rates: Arc<RateLimiter>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (mut router, rates, metrics) = (router.clone(), rates.clone(), metrics.clone());
        async move {
            let response = match rates.check(client) {
                Err(limited) => limited.into_response(),
                Ok(()) => {
                    let req: Request = req.map(axum::body::Body::new);
                    match tower_service::Service::call(&mut router, req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
            };
            let result = response.extensions().get::<Counted>().map_or("ok", |c| c.0);
            metrics.api(result);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
        debug!(?client, error = %e, "api connection ended");
    }
}

/// Answers a connection over a cap with its 429 once, then closes it.
async fn refuse(stream: TcpStream, refusal: ApiError) {
    let service = hyper::service::service_fn(move |_req: hyper::Request<Incoming>| {
        let refusal = refusal.clone();
        async move { Ok::<_, Infallible>(refusal.into_response()) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(REFUSING_HEADER_TIMEOUT).keep_alive(false);
    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn spec() -> Value {
        serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
    }

    /// The OpenAPI document describes exactly the endpoints the router serves: a route without
    /// a spec entry, or a spec entry without a route, fails here.
    #[test]
    fn every_route_has_a_spec_entry_and_every_spec_entry_a_route() {
        let spec = spec();
        assert_eq!(spec["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
        let mut routed: Vec<(String, String)> = endpoints()
            .iter()
            .map(|e| (e.path.to_owned(), e.method.as_str().to_lowercase()))
            .collect();
        let mut documented = Vec::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if method != "parameters" {
                    documented.push((path.clone(), method.clone()));
                }
            }
        }
        routed.sort();
        documented.sort();
        assert_eq!(routed, documented, "router (left) and openapi.json (right) differ");
    }

    /// Every error code the node can answer is in the spec's error schema, and nothing else.
    #[test]
    fn the_spec_lists_every_error_code() {
        let spec = spec();
        let codes: Vec<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("ErrorCode enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(codes, crate::error::CODES);
    }

    /// The README lists every endpoint (`METHOD path` in its API table) and every error code.
    #[test]
    fn the_readme_lists_every_endpoint_and_error_code() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        for e in endpoints() {
            let row = format!("`{} {}`", e.method, e.path);
            assert!(readme.contains(&row), "README has no row for {row}");
        }
        for code in crate::error::CODES {
            assert!(readme.contains(&format!("`{code}`")), "README does not list `{code}`");
        }
    }
}
