//! `POST /v1/claims`: the body (size 413 → JSON 400 → formats 400), then the claim is ordered
//! ([`crate::order::Orderer::claim`]) and its answer written.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use warpnet_state::{Claim, UserId};
use warpnet_types::{PublicKey, Signature};

use super::{ok, AppState};
use crate::error::ApiError;
use crate::order::{Answer, Verdict};

/// Largest claim request body, in bytes (a claim is about 300).
pub const CLAIM_BODY_BYTES_MAX: usize = 4 << 10;

/// `POST /v1/claims`' body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    user_id: String,
    owner_key: String,
    signature: String,
    request_id: String,
}

/// The body of a claim, at most [`CLAIM_BODY_BYTES_MAX`] bytes: a larger declared length is
/// refused before reading, a longer stream as soon as it passes the limit.
pub(super) struct ClaimBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for ClaimBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let too_large = ApiError::TooLarge { max_bytes: CLAIM_BODY_BYTES_MAX };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > CLAIM_BODY_BYTES_MAX as u64) {
            return Err(too_large);
        }
        // The endpoint's body limit (`Endpoint::body_limit`) bounds what `Bytes` reads.
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
                Err(too_large)
            }
            Err(e) => {
                Err(ApiError::InvalidJson { detail: format!("could not read the body: {e}") })
            }
        }
    }
}

/// A claim's answer body (200 or 409). Fields in alphabetical order, as answers have always
/// been written.
#[derive(Serialize)]
struct ClaimAnswer<'a> {
    height: u64,
    owner_key: String,
    status: &'static str,
    user_id: &'a str,
}

fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// The claim a request carries, with every format checked (nothing is verified yet).
fn parse(body: &[u8]) -> Result<Claim, ApiError> {
    let request: ClaimRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidJson { detail: e.to_string() })?;
    let user_id = UserId::parse(&request.user_id)
        .map_err(|e| ApiError::InvalidUserId { detail: e.to_string() })?;
    let owner_key = hex_array::<32>(&request.owner_key).map(PublicKey).ok_or_else(|| {
        ApiError::InvalidOwnerKey {
            detail: "owner_key must be 64 hex characters: the 32-byte Ed25519 public key".into(),
        }
    })?;
    let signature =
        hex_array::<64>(&request.signature).map(Signature).ok_or(ApiError::InvalidSignature)?;
    Ok(Claim { user_id, owner_key, signature, request_id: request.request_id })
}

pub(super) async fn post(
    State(state): State<AppState>,
    body: Result<ClaimBody, ApiError>,
) -> Result<Response, ApiError> {
    let claim = parse(&body?.0)?;
    let Answer { verdict, user_id, owner } = state.orderer.claim(claim).await?;
    let status = match verdict {
        Verdict::Claimed | Verdict::AlreadyYours => StatusCode::OK,
        Verdict::Taken => StatusCode::CONFLICT,
    };
    let body = ClaimAnswer {
        status: verdict.as_str(),
        user_id: user_id.as_str(),
        owner_key: owner.key.to_hex(),
        height: owner.height.0,
    };
    Ok(ok(verdict.as_str(), status, body))
}
