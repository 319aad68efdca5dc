// Package consensus is a client for the HTTP API of WarpNet Consensus nodes: claim user IDs
// (signed with the owner's Ed25519 key, retried safely), look them up (from a node's committed
// state, or linearizable), and read the committee, its members and a node's health.
//
// It uses the standard library only. Every error the API answers is an *APIError carrying the
// stable code of the API's contract (GET /v1/openapi.json); compare with errors.Is against the
// Err* values, e.g. errors.Is(err, consensus.ErrNoQuorum).
//
//	c := consensus.New("http://127.0.0.1:7000", "http://127.0.0.1:7001")
//	res, err := c.ClaimID(ctx, "@alice", ownerKey) // signs, derives the request id, retries
//	u, err := c.Lookup(ctx, "alice", consensus.Linearizable)
package consensus
