//! `GET /v1/users/{id}[?consistency=local|linearizable]`: who owns an ID, read from committed
//! state, after a read barrier through consensus when linearizable.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use warpnet_state::UserId;

use super::{ok, AppState};
use crate::error::ApiError;
use crate::handle::Lookup;

/// How fresh a lookup must be.
#[derive(Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Consistency {
    /// This node's committed state, as it is (no consensus round).
    #[default]
    Local,
    /// Every claim committed before the request began is seen.
    Linearizable,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LookupQuery {
    #[serde(default)]
    consistency: Consistency,
}

/// A found ID (fields in alphabetical order, as answers have always been written).
#[derive(Serialize)]
struct Found<'a> {
    height: u64,
    owner_key: String,
    read_height: u64,
    user_id: &'a str,
}

pub(super) async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = id.map_err(|e| ApiError::InvalidUserId {
        detail: format!("the user id in the path is not valid percent-encoded UTF-8: {e}"),
    })?;
    let id = UserId::parse(&raw).map_err(|e| ApiError::InvalidUserId { detail: e.to_string() })?;
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery { detail: e.body_text() })?;
    if query.consistency == Consistency::Linearizable {
        // Once the barrier commits here, this node has applied every claim committed before
        // the read began.
        state.orderer.read_barrier().await?;
    }
    let Lookup { owner, read_height } = state.shared.lookup(&id)?;
    match owner {
        Some(owner) => {
            let body = Found {
                user_id: id.as_str(),
                owner_key: owner.key.to_hex(),
                height: owner.height.0,
                read_height,
            };
            Ok(ok("found", StatusCode::OK, body))
        }
        None => Err(ApiError::UserNotFound { user_id: id.as_str().to_owned(), read_height }),
    }
}
