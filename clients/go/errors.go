package consensus

import (
	"fmt"
	"time"
)

// APIError is an error answer of a node: {error, message, ...}. Code is the stable code the
// API's contract lists; the other fields are set for the codes that carry them.
type APIError struct {
	Status  int    // HTTP status
	Code    string `json:"error"`
	Message string `json:"message"`
	// Retry-After, for 429 and 503.
	RetryAfter time.Duration `json:"-"`
	// no_quorum: members reachable from the node, and the quorum needed.
	Reachable int `json:"reachable"`
	Quorum    int `json:"quorum"`
	// no_quorum and stopping: "not_submitted" (the request had no effect) or "unknown" (it
	// may still take effect; retrying a claim with the same request id is safe).
	Outcome string `json:"outcome"`
	// request_id_reused: the ID this key's request id was first used for.
	RecordedFor string `json:"recorded_for"`
	// rate_limited and too_many_connections.
	RetryAfterS int `json:"retry_after_s"`
	// not_found (a lookup): the ID and the height the node read at.
	UserID     string `json:"user_id"`
	ReadHeight uint64 `json:"read_height"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// Is matches the Err* values by code: errors.Is(err, ErrNoQuorum).
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t.Status == 0 && t.Code == e.Code
}

// Retryable says whether the same request may succeed later: the node or the committee was
// busy, unreachable or failing, not the request wrong. A claim is always safe to retry with
// the same request id.
func (e *APIError) Retryable() bool {
	return e.Status == 429 || e.Status >= 500
}

func code(c string) *APIError { return &APIError{Code: c} }

// The API's error codes (GET /v1/openapi.json, components/schemas/ErrorCode).
var (
	// 400: the request is malformed; nothing was submitted.
	ErrInvalidJSON      = code("invalid_json")
	ErrInvalidUserID    = code("invalid_user_id")
	ErrInvalidOwnerKey  = code("invalid_owner_key")
	ErrInvalidSignature = code("invalid_signature")
	ErrInvalidRequestID = code("invalid_request_id")
	ErrBadSignature     = code("bad_signature")
	ErrInvalidQuery     = code("invalid_query")
	// 404: no such endpoint, or (a lookup) the ID is not registered.
	ErrNotFound = code("not_found")
	// 405, 413.
	ErrMethodNotAllowed = code("method_not_allowed")
	ErrTooLarge         = code("too_large")
	// 422: the key already used this request id for another ID; or a claim refused when applied.
	ErrRequestIDReused = code("request_id_reused")
	ErrRejected        = code("rejected")
	// 429: over this client's request rate or a connection cap.
	ErrRateLimited        = code("rate_limited")
	ErrTooManyConnections = code("too_many_connections")
	// 503: the node or the committee cannot serve the request now (see Outcome).
	ErrOverloaded = code("overloaded")
	ErrNoQuorum   = code("no_quorum")
	ErrStopping   = code("stopping")
	// 500: the node failed; the request was not at fault.
	ErrInternal = code("internal")
)
