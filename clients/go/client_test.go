package consensus

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// readmeExample is the README's worked example, read from the README itself.
type readmeExample struct {
	secret, public, message, signature []byte
	body                               string // the curl body, verbatim
	requestIDVector                    string
}

func readReadme(t *testing.T) readmeExample {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("reading the README: %v", err)
	}
	text := string(raw)
	field := func(name string) []byte {
		// "name  hex [hex...]" up to the next line that is not a continuation of hex groups.
		re := regexp.MustCompile(name + `\s+((?:[0-9a-f]+[ \n]+)+)`)
		m := re.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("the README's worked example has no %q", name)
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(m[1]), ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	body := regexp.MustCompile(`(?s)-d '(\{.*?\})'`).FindStringSubmatch(text)
	if body == nil {
		t.Fatal("the README's worked example has no curl body")
	}
	vector := regexp.MustCompile("`(cli-[0-9a-f]{24})`").FindStringSubmatch(text)
	if vector == nil {
		t.Fatal("the README gives no request id vector")
	}
	return readmeExample{
		secret:          field("secret key"),
		public:          field("public key"),
		message:         field("message"),
		signature:       field("signature"),
		body:            body[1],
		requestIDVector: vector[1],
	}
}

// The README's worked example, byte for byte: the signing bytes, the key, the signature and
// the request body are what this client produces.
func TestTheReadmeWorkedExampleIsExact(t *testing.T) {
	ex := readReadme(t)
	message, err := ClaimSigningBytes("dev", "@Alice")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(message, ex.message) {
		t.Fatalf("signing bytes\n got %x\nwant %x", message, ex.message)
	}
	key := ed25519.NewKeyFromSeed(ex.secret)
	if !bytes.Equal(key.Public().(ed25519.PublicKey), ex.public) {
		t.Fatalf("public key %x, README %x", key.Public(), ex.public)
	}
	if sig := ed25519.Sign(key, message); !bytes.Equal(sig, ex.signature) {
		t.Fatalf("signature\n got %x\nwant %x", sig, ex.signature)
	}
	claim, err := SignClaim("dev", "@Alice", key, "readme-1")
	if err != nil {
		t.Fatal(err)
	}
	var readme ClaimRequest
	if err := json.Unmarshal([]byte(ex.body), &readme); err != nil {
		t.Fatal(err)
	}
	readme.UserID, _ = NormalizeUserID(readme.UserID)
	if claim != readme {
		t.Fatalf("claim %+v, README %+v", claim, readme)
	}
}

// The request id derivation is the one the README specifies (its vector), which the command
// line uses (pinned by the Rust test the_readme_request_id_vector_is_exact).
func TestRequestIDDerivationMatchesTheReadme(t *testing.T) {
	ex := readReadme(t)
	if got := DeriveRequestID(ex.public, "alice"); got != ex.requestIDVector {
		t.Fatalf("DeriveRequestID = %s, README %s", got, ex.requestIDVector)
	}
	claim, err := SignClaim("dev", "@ALICE", ed25519.NewKeyFromSeed(ex.secret), "")
	if err != nil {
		t.Fatal(err)
	}
	if claim.RequestID != ex.requestIDVector {
		t.Fatalf("SignClaim derived %s", claim.RequestID)
	}
}

func TestUserIDsNormalizeAsTheRegistryDoes(t *testing.T) {
	for in, want := range map[string]string{"@Alice": "alice", "alice": "alice", "A_1": "a_1", strings.Repeat("z", 32): strings.Repeat("z", 32)} {
		if got, err := NormalizeUserID(in); err != nil || got != want {
			t.Errorf("NormalizeUserID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "@", "@@a", "a-b", "аlice", "ａlice", strings.Repeat("z", 33), "a b"} {
		if got, err := NormalizeUserID(bad); err == nil {
			t.Errorf("NormalizeUserID(%q) = %q, want an error", bad, got)
		}
	}
	for _, bad := range []string{"", "no spaces", strings.Repeat("r", 65), "é"} {
		if CheckRequestID(bad) == nil {
			t.Errorf("CheckRequestID(%q) accepted", bad)
		}
	}
}

// A 503 with Retry-After is retried after that delay (on the next node); a 400 is final and
// typed.
func TestClaimsAreRetriedOnlyWhenTheAnswerSaysSo(t *testing.T) {
	var calls int32
	var firstAt, secondAt time.Time
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch atomic.AddInt32(&calls, 1) {
		case 1:
			firstAt = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			w.Write([]byte(`{"error":"no_quorum","message":"m","reachable":2,"quorum":3,"outcome":"unknown"}`))
		case 2:
			secondAt = time.Now()
			w.Write([]byte(`{"height":7,"owner_key":"ab","status":"claimed","user_id":"bob"}`))
		default:
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"bad_signature","message":"m"}`))
		}
	}))
	defer node.Close()
	c := New(node.URL)
	res, err := c.Claim(context.Background(), ClaimRequest{UserID: "bob"})
	if err != nil || res.Status != "claimed" || res.Height != 7 || !res.Mine() {
		t.Fatalf("Claim = %+v, %v", res, err)
	}
	if wait := secondAt.Sub(firstAt); wait < time.Second {
		t.Fatalf("retried after %v, before the Retry-After of 1 s", wait)
	}
	_, err = c.Claim(context.Background(), ClaimRequest{UserID: "bob"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, ErrBadSignature) || apiErr.Status != 400 || apiErr.Retryable() {
		t.Fatalf("a 400 is a final, typed error: %v", err)
	}
	if n := atomic.LoadInt32(&calls); n != 3 {
		t.Fatalf("%d requests, want 3 (the 400 is not retried)", n)
	}
}
