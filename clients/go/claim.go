package consensus

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// ClaimTag is the domain tag of a claim's signing bytes.
const ClaimTag = "warpnet/v1/claim"

// RequestIDTag is the domain tag of DeriveRequestID.
const RequestIDTag = "warpnet/cli/request-id"

// UserIDLenMax is the longest user ID, in characters (after the optional @).
const UserIDLenMax = 32

// RequestIDLenMax is the longest request id.
const RequestIDLenMax = 64

// NormalizeUserID checks an ID as a user typed it and returns it as the registry keeps it: an
// optional leading @ removed, ASCII upper case folded to lower case; 1-32 of a-z, 0-9 and _.
func NormalizeUserID(id string) (string, error) {
	body := strings.TrimPrefix(id, "@")
	if body == "" {
		return "", fmt.Errorf("user id is empty: use 1-%d characters of a-z, 0-9 and _, optionally after an @", UserIDLenMax)
	}
	for _, r := range body {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_'
		if !ok {
			return "", fmt.Errorf("user id contains %q; only a-z, 0-9 and _ are allowed (upper case is folded to lower case), optionally after one leading @", r)
		}
	}
	if len(body) > UserIDLenMax {
		return "", fmt.Errorf("user id has %d characters; at most %d of a-z, 0-9 and _ are allowed", len(body), UserIDLenMax)
	}
	return strings.ToLower(body), nil
}

// CheckRequestID reports whether r is a valid request id: 1-64 of A-Z, a-z, 0-9, _ and -.
func CheckRequestID(r string) error {
	if r == "" || len(r) > RequestIDLenMax {
		return fmt.Errorf("request_id must be 1-%d characters of A-Z, a-z, 0-9, _ and -", RequestIDLenMax)
	}
	for i := 0; i < len(r); i++ {
		b := r[i]
		ok := (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_' || b == '-'
		if !ok {
			return fmt.Errorf("request_id must be 1-%d characters of A-Z, a-z, 0-9, _ and -", RequestIDLenMax)
		}
	}
	return nil
}

// ClaimSigningBytes are the bytes the owner signs to claim userID on network:
//
//	u8 len(tag) ‖ tag ‖ u32le len(network) ‖ network ‖ u32le len(id) ‖ id
//
// with tag "warpnet/v1/claim" and id normalized (see NormalizeUserID).
func ClaimSigningBytes(network, userID string) ([]byte, error) {
	id, err := NormalizeUserID(userID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(ClaimTag)+4+len(network)+4+len(id))
	out = append(out, byte(len(ClaimTag)))
	out = append(out, ClaimTag...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(network)))
	out = append(out, network...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(id)))
	out = append(out, id...)
	return out, nil
}

// DeriveRequestID is the request id `warpnet-consensus user claim` sends when given none, so a
// client that derives it the same way shares the command line's retries:
//
//	"cli-" ‖ the first 24 hex digits of SHA-256(u8 22 ‖ "warpnet/cli/request-id" ‖ owner key ‖ id)
//
// where the owner key is its 32 bytes and id the normalized ID.
func DeriveRequestID(ownerKey ed25519.PublicKey, normalizedID string) string {
	h := sha256.New()
	h.Write([]byte{byte(len(RequestIDTag))})
	h.Write([]byte(RequestIDTag))
	h.Write(ownerKey)
	h.Write([]byte(normalizedID))
	return "cli-" + hex.EncodeToString(h.Sum(nil))[:24]
}

// ClaimRequest is the body of POST /v1/claims.
type ClaimRequest struct {
	UserID    string `json:"user_id"`
	OwnerKey  string `json:"owner_key"`
	Signature string `json:"signature"`
	RequestID string `json:"request_id"`
}

// SignClaim builds a claim of userID on network, owned by key. An empty requestID is derived
// from the key and the ID (DeriveRequestID), so signing the same claim again is a safe retry.
func SignClaim(network, userID string, key ed25519.PrivateKey, requestID string) (ClaimRequest, error) {
	if len(key) != ed25519.PrivateKeySize {
		return ClaimRequest{}, fmt.Errorf("an Ed25519 private key is %d bytes, not %d", ed25519.PrivateKeySize, len(key))
	}
	id, err := NormalizeUserID(userID)
	if err != nil {
		return ClaimRequest{}, err
	}
	public := key.Public().(ed25519.PublicKey)
	if requestID == "" {
		requestID = DeriveRequestID(public, id)
	}
	if err := CheckRequestID(requestID); err != nil {
		return ClaimRequest{}, err
	}
	message, err := ClaimSigningBytes(network, id)
	if err != nil {
		return ClaimRequest{}, err
	}
	return ClaimRequest{
		UserID:    id,
		OwnerKey:  hex.EncodeToString(public),
		Signature: hex.EncodeToString(ed25519.Sign(key, message)),
		RequestID: requestID,
	}, nil
}
