package consensus_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	consensus "github.com/Warp-net/warpnet-consensus/clients/go"
)

// claimAlice is the README's Go example.
func claimAlice(ctx context.Context) error {
	c := consensus.New("http://127.0.0.1:7000", "http://127.0.0.1:7001")
	_, key, _ := ed25519.GenerateKey(rand.Reader) // keep it: it owns the ID
	res, err := c.ClaimID(ctx, "@alice", key)     // signs, derives the request id, retries safely
	if err != nil {
		return err // typed: errors.Is(err, consensus.ErrNoQuorum) means "try again later"
	}
	u, err := c.Lookup(ctx, "alice", consensus.Linearizable) // through consensus
	if err == nil {
		fmt.Println(res.Status, res.Height, u.Registered, u.OwnerKey) // claimed|already_yours|taken
	}
	return nil
}

// Example claims @alice on a `dev` cluster (compiled; run it against a cluster of yours).
func Example() {
	if err := claimAlice(context.Background()); err != nil {
		fmt.Println(err)
	}
}

// The README's Go example is claimAlice's body, line for line, so it always compiles.
func TestTheReadmeGoExampleIsThisFilesExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	source, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	block := strings.SplitN(strings.SplitN(string(readme), "```go\n", 2)[1], "```", 2)[0]
	body := strings.SplitN(strings.SplitN(string(source), "func claimAlice(ctx context.Context) error {\n", 2)[1], "\treturn nil\n}", 2)[0]
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		want = append(want, strings.TrimSpace(line))
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		got = append(got, strings.TrimSpace(line))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the README's Go example differs from claimAlice:\nREADME:\n%s\nexample_test.go:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	if len(want) > 10 {
		t.Errorf("the README's example has %d lines; keep it to ten", len(want))
	}
}
