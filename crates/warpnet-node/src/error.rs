//! The one error type of the API: every refusal and failure a client can be answered with,
//! its status, its stable `error` code and the fields that explain it.
//!
//! A client's mistake is a 4xx; a limit of the node or the committee is a 429 or 503 that says
//! when to retry and whether anything was submitted; a failure of the node itself is always
//! 500 `internal` (logged where it is turned into an answer), never the client's fault.

/// Whether a request whose command was ordered may still take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was submitted: the request had no effect.
    NotSubmitted,
    /// The command was submitted and may still commit.
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotSubmitted => "not_submitted",
            Outcome::Unknown => "unknown",
        }
    }
}

/// What was being ordered through consensus (it shapes the retry advice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordered {
    Claim,
    /// The read barrier of a linearizable lookup.
    Read,
}

impl Ordered {
    fn retry(self) -> &'static str {
        match self {
            Ordered::Claim => {
                "retrying with the same request_id is safe and returns the recorded result"
            }
            Ordered::Read => "retrying is safe",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Ordered::Claim => "claim",
            Ordered::Read => "read",
        }
    }
}

/// Every answer of the API that is not a success. `code()` is the `error` field of the body.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not a claim: expected {{\"user_id\", \"owner_key\", \"signature\", \"request_id\"}} (no other field): {detail}")]
    InvalidJson { detail: String },
    #[error("{detail}")]
    InvalidUserId { detail: String },
    #[error("{detail}")]
    InvalidOwnerKey { detail: String },
    #[error("signature must be 128 hex characters: 64 bytes, Ed25519")]
    InvalidSignature,
    #[error("{detail}")]
    InvalidRequestId { detail: String },
    #[error("the signature does not verify for this owner_key, network and user id")]
    BadSignature,
    #[error("{detail}: the only query parameter is consistency=local|linearizable")]
    InvalidQuery { detail: String },
    #[error("{user_id} is not registered (as of height {read_height})")]
    UserNotFound { user_id: String, read_height: u64 },
    #[error("no such endpoint: {path} (GET /v1/openapi.json lists them)")]
    NoSuchEndpoint { path: String },
    #[error("{path} does not take {method}: the Allow header lists the methods it takes")]
    MethodNotAllowed { method: String, path: String },
    #[error("the body is over the limit of {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    #[error("this key already used request_id {request_id:?} to claim {recorded_for}; use a new request_id for {user_id}")]
    RequestIdReused { request_id: String, recorded_for: String, user_id: String },
    #[error("the claim was ordered but refused when applied (nothing changed): {reason}")]
    Rejected { reason: String },
    #[error("too many requests from this client: at most {rate_per_second} per second (bursts of {burst}); retry after {retry_after_s} s")]
    RateLimited { rate_per_second: u32, burst: u32, retry_after_s: u64 },
    #[error("too many open connections{scope}; retry after {retry_after_s} s")]
    TooManyConnections { scope: &'static str, retry_after_s: u64 },
    #[error("this node has too many requests waiting; nothing was submitted. Retry after the given delay")]
    Overloaded,
    #[error("{}", no_quorum_message(*.what, *.reachable, *.total, *.quorum, *.outcome, *.waited_ms))]
    NoQuorum {
        what: Ordered,
        reachable: usize,
        total: usize,
        quorum: usize,
        outcome: Outcome,
        /// How long the request waited for its commit (none when not submitted).
        waited_ms: Option<u64>,
    },
    #[error("the node is stopping; the {} may still commit: {} (on another node)", .what.noun(), .what.retry())]
    Stopping { what: Ordered },
    #[error("{detail}")]
    InvalidRequest { detail: String },
    #[error("{detail}")]
    Forbidden { detail: String },
    #[error("{detail}")]
    NotFound { detail: String },
    #[error("the committee change was refused (nothing changed): {reason}")]
    MembershipRefused { reason: String },
    /// The node failed (storage, a broken invariant): never the client's fault.
    #[error("the node failed to answer ({detail}); this is not a problem with the request")]
    Internal { detail: String },
}

fn no_quorum_message(
    what: Ordered,
    reachable: usize,
    total: usize,
    quorum: usize,
    outcome: Outcome,
    waited_ms: Option<u64>,
) -> String {
    match outcome {
        Outcome::NotSubmitted => format!(
            "only {reachable} of {total} members are reachable and {quorum} are needed to commit; nothing was submitted. Committed IDs can still be looked up"
        ),
        Outcome::Unknown => {
            let why = if reachable < quorum {
                format!("only {reachable} of {total} members are reachable and {quorum} are needed to commit")
            } else {
                format!("{reachable} of {total} members are connected but no quorum of {quorum} committed in time")
            };
            let waited = waited_ms.map(|ms| format!("not committed within {ms} ms: ")).unwrap_or_default();
            format!("{waited}{why}. The {} may still commit: {}", what.noun(), what.retry())
        }
    }
}

/// Every `error` code, in the order the README and the OpenAPI document list them.
pub const CODES: &[&str] = &[
    "invalid_json",
    "invalid_user_id",
    "invalid_owner_key",
    "invalid_signature",
    "invalid_request_id",
    "bad_signature",
    "invalid_query",
    "not_found",
    "method_not_allowed",
    "too_large",
    "request_id_reused",
    "rejected",
    "invalid_request",
    "forbidden",
    "membership_refused",
    "rate_limited",
    "too_many_connections",
    "overloaded",
    "no_quorum",
    "stopping",
    "internal",
];

impl From<crate::membership::Refusal> for ApiError {
    fn from(r: crate::membership::Refusal) -> Self {
        use crate::membership::Refusal;
        match r {
            Refusal::TooManyPending => ApiError::Overloaded,
            Refusal::UnknownCandidate { .. } => ApiError::NotFound { detail: r.to_string() },
            r => ApiError::MembershipRefused { reason: r.to_string() },
        }
    }
}

impl ApiError {
    /// The stable code clients branch on (the body's `error`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson { .. } => "invalid_json",
            ApiError::InvalidUserId { .. } => "invalid_user_id",
            ApiError::InvalidOwnerKey { .. } => "invalid_owner_key",
            ApiError::InvalidSignature => "invalid_signature",
            ApiError::InvalidRequestId { .. } => "invalid_request_id",
            ApiError::BadSignature => "bad_signature",
            ApiError::InvalidQuery { .. } => "invalid_query",
            ApiError::UserNotFound { .. }
            | ApiError::NoSuchEndpoint { .. }
            | ApiError::NotFound { .. } => "not_found",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::MembershipRefused { .. } => "membership_refused",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::RequestIdReused { .. } => "request_id_reused",
            ApiError::Rejected { .. } => "rejected",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyConnections { .. } => "too_many_connections",
            ApiError::Overloaded => "overloaded",
            ApiError::NoQuorum { .. } => "no_quorum",
            ApiError::Stopping { .. } => "stopping",
            ApiError::Internal { .. } => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson { .. }
            | ApiError::InvalidUserId { .. }
            | ApiError::InvalidOwnerKey { .. }
            | ApiError::InvalidSignature
            | ApiError::InvalidRequestId { .. }
            | ApiError::BadSignature
            | ApiError::InvalidQuery { .. }
            | ApiError::InvalidRequest { .. } => 400,
            ApiError::Forbidden { .. } => 403,
            ApiError::UserNotFound { .. }
            | ApiError::NoSuchEndpoint { .. }
            | ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::TooLarge { .. } => 413,
            ApiError::RequestIdReused { .. }
            | ApiError::Rejected { .. }
            | ApiError::MembershipRefused { .. } => 422,
            ApiError::RateLimited { .. } | ApiError::TooManyConnections { .. } => 429,
            ApiError::Internal { .. } => 500,
            ApiError::Overloaded | ApiError::NoQuorum { .. } | ApiError::Stopping { .. } => 503,
        }
    }

    /// Seconds after which a retry may succeed (the `Retry-After` header), for the answers
    /// that are about load or the committee rather than the request.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_s, .. }
            | ApiError::TooManyConnections { retry_after_s, .. } => Some(*retry_after_s),
            ApiError::Overloaded | ApiError::NoQuorum { .. } | ApiError::Stopping { .. } => Some(1),
            _ => None,
        }
    }

    /// The body: `{error, message}` and the fields that explain this error.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let extra = match self {
            ApiError::UserNotFound { user_id, read_height } => {
                serde_json::json!({ "user_id": user_id, "read_height": read_height })
            }
            ApiError::RequestIdReused { request_id, recorded_for, .. } => {
                serde_json::json!({ "request_id": request_id, "recorded_for": recorded_for })
            }
            ApiError::NoQuorum { reachable, quorum, outcome, .. } => serde_json::json!({
                "reachable": reachable, "quorum": quorum, "outcome": outcome.as_str(),
            }),
            ApiError::Stopping { .. } => serde_json::json!({ "outcome": "unknown" }),
            ApiError::MembershipRefused { reason } => serde_json::json!({ "reason": reason }),
            ApiError::RateLimited { retry_after_s, .. }
            | ApiError::TooManyConnections { retry_after_s, .. } => {
                serde_json::json!({ "retry_after_s": retry_after_s })
            }
            _ => serde_json::Value::Null,
        };
        if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    }

    /// A failure of the node, with what went wrong for the log and the answer.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal { detail: detail.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure of the node is a 500, never blamed on the request.
    #[test]
    fn internal_failures_are_500_internal() {
        let e = ApiError::internal("lock poisoned");
        assert_eq!((e.status(), e.code()), (500, "internal"));
        assert!(e.to_string().contains("not a problem with the request"));
    }

    /// Every code an error can carry is in the list the README and the spec are checked
    /// against (`tests/contract.rs`).
    #[test]
    fn every_code_is_listed() {
        let all = [
            ApiError::InvalidJson { detail: "x".into() },
            ApiError::InvalidUserId { detail: "x".into() },
            ApiError::InvalidOwnerKey { detail: "x".into() },
            ApiError::InvalidSignature,
            ApiError::InvalidRequestId { detail: "x".into() },
            ApiError::BadSignature,
            ApiError::InvalidQuery { detail: "x".into() },
            ApiError::UserNotFound { user_id: "a".into(), read_height: 0 },
            ApiError::NoSuchEndpoint { path: "/".into() },
            ApiError::MethodNotAllowed { method: "PUT".into(), path: "/".into() },
            ApiError::TooLarge { max_bytes: 1 },
            ApiError::RequestIdReused {
                request_id: "r".into(),
                recorded_for: "a".into(),
                user_id: "b".into(),
            },
            ApiError::Rejected { reason: "x".into() },
            ApiError::InvalidRequest { detail: "x".into() },
            ApiError::Forbidden { detail: "x".into() },
            ApiError::NotFound { detail: "x".into() },
            ApiError::MembershipRefused { reason: "x".into() },
            ApiError::RateLimited { rate_per_second: 1, burst: 1, retry_after_s: 1 },
            ApiError::TooManyConnections { scope: "", retry_after_s: 1 },
            ApiError::Overloaded,
            ApiError::NoQuorum {
                what: Ordered::Claim,
                reachable: 1,
                total: 4,
                quorum: 3,
                outcome: Outcome::NotSubmitted,
                waited_ms: None,
            },
            ApiError::Stopping { what: Ordered::Read },
            ApiError::internal("x"),
        ];
        for e in &all {
            assert!(CODES.contains(&e.code()), "{} is not listed", e.code());
            let body = e.body();
            assert_eq!(body["error"], e.code());
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(
                e.retry_after_s().is_some(),
                matches!(e.status(), 429 | 503),
                "{}: Retry-After exactly on 429 and 503",
                e.code()
            );
        }
        let codes: std::collections::BTreeSet<_> = all.iter().map(ApiError::code).collect();
        assert_eq!(codes.len(), CODES.len(), "a listed code no error produces");
    }
}
