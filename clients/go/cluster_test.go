package consensus

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests need a running `warpnet-consensus dev` cluster (network "dev"): WARPNET_NODES
// lists its API URLs, comma-separated; WARPNET_BIN names the binary, for the test shared with
// the command line. Without WARPNET_NODES they are skipped, unless WARPNET_REQUIRE_NODES is set
// (as in .ci/run), when they fail.
func nodes(t *testing.T) []string {
	t.Helper()
	env := os.Getenv("WARPNET_NODES")
	if env == "" {
		if os.Getenv("WARPNET_REQUIRE_NODES") != "" {
			t.Fatal("WARPNET_REQUIRE_NODES is set but WARPNET_NODES is empty")
		}
		t.Skip("no cluster: set WARPNET_NODES=http://127.0.0.1:7000,... (a `dev` cluster)")
	}
	return strings.Split(env, ",")
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func freshID(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// The README's curl body, sent byte for byte, claims @alice for the README's key (or gets
// the recorded result when the example ran before); lookups of both kinds agree.
func TestTheReadmeWorkedExampleAgainstANode(t *testing.T) {
	urls := nodes(t)
	ex := readReadme(t)
	resp, err := http.Post(urls[0]+"/v1/claims", "application/json", strings.NewReader(ex.body))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res ClaimResult
	if err := json.Unmarshal(data, &res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the README's claim: %d %s", resp.StatusCode, data)
	}
	owner := hex.EncodeToString(ex.public)
	if res.Status != "claimed" || res.UserID != "alice" || res.OwnerKey != owner {
		t.Fatalf("the README's claim got %s", data)
	}
	c := New(urls...)
	for _, consistency := range []Consistency{Local, Linearizable} {
		u, err := c.Lookup(ctx(t), "@Alice", consistency)
		if err != nil || !u.Registered || u.OwnerKey != owner || u.Height != res.Height || u.ReadHeight < res.Height {
			t.Fatalf("%s lookup: %+v, %v", consistency, u, err)
		}
	}
}

// A claim's life through the client: claimed; the same claim again gets the recorded result;
// another request id gets already_yours; another key gets taken; a reused request id and a
// bad signature are typed errors; an unregistered ID is a result.
func TestClaimLookupAndTypedErrors(t *testing.T) {
	c := New(nodes(t)...)
	key, other := newKey(t), newKey(t)
	id := freshID("go_")
	first, err := c.ClaimID(ctx(t), "@"+strings.ToUpper(id), key)
	if err != nil || first.Status != "claimed" || first.UserID != id || !first.Mine() {
		t.Fatalf("ClaimID: %+v, %v", first, err)
	}
	again, err := c.ClaimID(ctx(t), id, key)
	if err != nil || *again != *first {
		t.Fatalf("a retry gets the recorded result %+v: %+v, %v", first, again, err)
	}
	network, err := c.Network(ctx(t))
	if err != nil || network != "dev" {
		t.Fatalf("network %q, %v", network, err)
	}
	claim, _ := SignClaim(network, id, key, "another-request")
	if res, err := c.Claim(ctx(t), claim); err != nil || res.Status != "already_yours" {
		t.Fatalf("another request id: %+v, %v", res, err)
	}
	theirs, _ := SignClaim(network, id, other, "")
	res, err := c.Claim(ctx(t), theirs)
	if err != nil || res.Status != "taken" || res.Mine() || res.OwnerKey != first.OwnerKey || res.Height != first.Height {
		t.Fatalf("another key: %+v, %v", res, err)
	}
	// The first claim was ordered, so its (key, request id) has a recorded result for id.
	public := key.Public().(ed25519.PublicKey)
	reused, _ := SignClaim(network, freshID("go_"), key, DeriveRequestID(public, id))
	_, err = c.Claim(ctx(t), reused)
	var apiErr *APIError
	if !errors.Is(err, ErrRequestIDReused) || !errors.As(err, &apiErr) || apiErr.Status != 422 || apiErr.RecordedFor != id {
		t.Fatalf("a request id reused for another ID: %v", err)
	}
	forged := theirs
	forged.UserID = freshID("go_")
	if _, err := c.Claim(ctx(t), forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a signature of another ID: %v", err)
	}
	u, err := c.Lookup(ctx(t), freshID("nobody_"), Linearizable)
	if err != nil || u.Registered || u.ReadHeight == 0 {
		t.Fatalf("an unregistered ID: %+v, %v", u, err)
	}
}

// The client derives the request id as `warpnet-consensus user claim` does: after the command
// line claims an ID, the client's claim with the same key is its retry and gets the recorded
// result ("claimed" at the same height), not a new "already_yours".
func TestTheCommandLineAndTheClientShareRetries(t *testing.T) {
	urls := nodes(t)
	bin := os.Getenv("WARPNET_BIN")
	if bin == "" {
		t.Skip("WARPNET_BIN is not set")
	}
	key := newKey(t)
	file := filepath.Join(t.TempDir(), "owner.key")
	if err := os.WriteFile(file, []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := freshID("cli_")
	out, err := exec.Command(bin, "user", "claim", "@"+id, "--key", file, "--node", urls[0], "--json").Output()
	if err != nil {
		t.Fatalf("user claim: %v\n%s", err, out)
	}
	var cli ClaimResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &cli); err != nil || cli.Status != "claimed" {
		t.Fatalf("user claim answered %s (%v)", out, err)
	}
	res, err := New(urls...).ClaimID(ctx(t), id, key)
	if err != nil || *res != cli {
		t.Fatalf("the client's claim %+v, %v; the command line's %+v", res, err, cli)
	}
}

// The committee as every node reports it, and each node's health.
func TestClusterMembersAndHealth(t *testing.T) {
	urls := nodes(t)
	c := New(urls...)
	cl, err := c.Cluster(ctx(t))
	if err != nil || cl.Network != "dev" || cl.TotalNodes != len(urls) || cl.QuorumThreshold == 0 {
		t.Fatalf("Cluster: %+v, %v", cl, err)
	}
	members, err := c.Members(ctx(t))
	if err != nil || len(members) != cl.TotalNodes {
		t.Fatalf("Members: %+v, %v", members, err)
	}
	for i, m := range members {
		if int(m.NodeID) != i || len(m.PublicKey) != 64 || m.P2PAddress == "" || m.APIAddress == "" {
			t.Errorf("member %d: %+v", i, m)
		}
	}
	for _, u := range urls {
		h, err := c.Health(ctx(t), u)
		if err != nil || h.Status != "running" {
			t.Errorf("%s: %+v, %v", u, h, err)
		}
	}
	if _, err := c.Health(ctx(t), "http://127.0.0.1:1"); err == nil {
		t.Error("a node that does not answer is not healthy")
	}
	t.Logf("cluster: %d members, quorum %d, height %d", cl.TotalNodes, cl.QuorumThreshold, cl.CommittedHeight)
}
