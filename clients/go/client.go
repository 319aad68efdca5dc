package consensus

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client talks to one or more nodes of a committee. Requests go to the nodes in turn: a retry
// goes to the next one. It is safe for concurrent use.
type Client struct {
	nodes []string
	http  *http.Client
	// Attempts is how many times a request is sent before its last error is returned
	// (transport errors, 429 and 5xx are retried; other answers are final). Default 5.
	Attempts int
	// Backoff is the first wait between attempts when the node gives no Retry-After; it
	// doubles up to MaxBackoff. Defaults 100 ms and 2 s.
	Backoff, MaxBackoff time.Duration

	mu      sync.Mutex
	next    int
	network string
}

// New returns a client of the nodes at these base URLs (e.g. "http://127.0.0.1:7000").
func New(nodes ...string) *Client {
	trimmed := make([]string, 0, len(nodes))
	for _, n := range nodes {
		trimmed = append(trimmed, strings.TrimRight(n, "/"))
	}
	return &Client{
		nodes:      trimmed,
		http:       &http.Client{Timeout: 30 * time.Second},
		Attempts:   5,
		Backoff:    100 * time.Millisecond,
		MaxBackoff: 2 * time.Second,
	}
}

// WithHTTPClient replaces the http.Client (its Timeout bounds each attempt).
func (c *Client) WithHTTPClient(h *http.Client) *Client {
	c.http = h
	return c
}

func (c *Client) node() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[c.next%len(c.nodes)]
	c.next++
	return n
}

// do sends a request (retried as the Client says) and decodes a 2xx answer, or the answers in
// accept, into out. Any other answer is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body []byte, accept []int, out interface{}) (int, error) {
	if len(c.nodes) == 0 {
		return 0, errors.New("consensus: no node URL given")
	}
	wait := c.Backoff
	var last error
	for attempt := 0; attempt < c.Attempts || attempt == 0; attempt++ {
		if attempt > 0 {
			delay := wait
			var apiErr *APIError
			if errors.As(last, &apiErr) && apiErr.RetryAfter > 0 {
				delay = apiErr.RetryAfter
			}
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			case <-time.After(delay):
			}
			if wait *= 2; wait > c.MaxBackoff {
				wait = c.MaxBackoff
			}
		}
		status, err := c.once(ctx, method, c.node()+path, body, accept, out)
		if err == nil {
			return status, nil
		}
		last = err
		var apiErr *APIError
		if errors.As(err, &apiErr) && !apiErr.Retryable() {
			return status, err
		}
		if ctx.Err() != nil {
			return status, err
		}
	}
	return 0, last
}

func (c *Client) once(ctx context.Context, method, u string, body []byte, accept []int, out interface{}) (int, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, reader)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	ok := resp.StatusCode/100 == 2
	for _, s := range accept {
		ok = ok || resp.StatusCode == s
	}
	if ok {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("consensus: %s answered %d with %q: %w", u, resp.StatusCode, data, err)
		}
		return resp.StatusCode, nil
	}
	apiErr := &APIError{Status: resp.StatusCode}
	if err := json.Unmarshal(data, apiErr); err != nil || apiErr.Code == "" {
		return resp.StatusCode, fmt.Errorf("consensus: %s answered %d with %q (not the API's error shape)", u, resp.StatusCode, data)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		apiErr.RetryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, apiErr
}

// ClaimResult is the answer to a claim. Status is "claimed" or "already_yours" (the ID is the
// claimer's) or "taken" (OwnerKey owns it).
type ClaimResult struct {
	Status   string `json:"status"`
	UserID   string `json:"user_id"`
	OwnerKey string `json:"owner_key"`
	Height   uint64 `json:"height"`
}

// Mine says whether the ID belongs to the claimer.
func (r *ClaimResult) Mine() bool { return r.Status == "claimed" || r.Status == "already_yours" }

// Claim sends a signed claim. It is retried with the same request id after a transport error,
// 429 or 5xx, which is always safe: a retry gets the recorded result. A "taken" answer (409) is
// a result, not an error. An *APIError with Outcome "unknown" means the claim may still commit.
func (c *Client) Claim(ctx context.Context, claim ClaimRequest) (*ClaimResult, error) {
	body, err := json.Marshal(claim)
	if err != nil {
		return nil, err
	}
	var res ClaimResult
	if _, err := c.do(ctx, http.MethodPost, "/v1/claims", body, []int{http.StatusConflict}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ClaimID signs a claim of userID with key on the committee's network (read once from a
// node), with the request id the command line would derive, and sends it (see Claim).
func (c *Client) ClaimID(ctx context.Context, userID string, key ed25519.PrivateKey) (*ClaimResult, error) {
	network, err := c.Network(ctx)
	if err != nil {
		return nil, err
	}
	claim, err := SignClaim(network, userID, key, "")
	if err != nil {
		return nil, err
	}
	return c.Claim(ctx, claim)
}

// Consistency of a lookup.
type Consistency string

const (
	// Local reads the node's committed state as it is.
	Local Consistency = "local"
	// Linearizable orders a read barrier through consensus first: the answer reflects every
	// claim committed before the request (it needs a quorum).
	Linearizable Consistency = "linearizable"
)

// User is the answer to a lookup. Registered is false when the ID has no owner as of
// ReadHeight.
type User struct {
	Registered bool
	UserID     string `json:"user_id"`
	OwnerKey   string `json:"owner_key"`
	Height     uint64 `json:"height"`
	ReadHeight uint64 `json:"read_height"`
}

// Lookup says who owns userID. An unregistered ID is a result (Registered false), not an error.
func (c *Client) Lookup(ctx context.Context, userID string, consistency Consistency) (*User, error) {
	id, err := NormalizeUserID(userID)
	if err != nil {
		return nil, err
	}
	if consistency == "" {
		consistency = Local
	}
	path := "/v1/users/" + url.PathEscape(id) + "?consistency=" + url.QueryEscape(string(consistency))
	var u User
	_, err = c.do(ctx, http.MethodGet, path, nil, nil, &u)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && apiErr.UserID != "" {
		return &User{UserID: apiErr.UserID, ReadHeight: apiErr.ReadHeight}, nil
	}
	if err != nil {
		return nil, err
	}
	u.Registered = true
	return &u, nil
}

// Member is one member of the committee, as the answering node sees it.
type Member struct {
	NodeID     uint16 `json:"node_id"`
	PublicKey  string `json:"public_key"`
	P2PAddress string `json:"p2p_address"`
	// APIAddress is the member's HTTP API (GET /v1/members gives it; /v1/cluster does not).
	APIAddress string `json:"api_address,omitempty"`
	Public     bool   `json:"public"`
	// MemberSinceEpoch is the first epoch of its current run of memberships (/v1/members).
	MemberSinceEpoch uint64 `json:"member_since_epoch,omitempty"`
	Connected        bool   `json:"connected"`
}

// Committee is GET /v1/members: the committee of the current epoch (it changes through the log,
// in epochs), with the quorum that commits.
type Committee struct {
	Epoch           uint64   `json:"epoch"`
	QuorumThreshold int      `json:"quorum_threshold"`
	Members         []Member `json:"members"`
}

// Cluster is the committee and the answering node's view of its progress.
type Cluster struct {
	Network         string   `json:"network"`
	Epoch           uint64   `json:"epoch"`
	Round           uint64   `json:"round"`
	CommittedHeight uint64   `json:"committed_height"`
	TotalNodes      int      `json:"total_nodes"`
	FaultyNodes     int      `json:"faulty_nodes"`
	QuorumThreshold int      `json:"quorum_threshold"`
	Leader          uint16   `json:"leader"`
	NodeID          uint16   `json:"node_id"`
	Members         []Member `json:"members"`
}

// Cluster reads GET /v1/cluster.
func (c *Client) Cluster(ctx context.Context) (*Cluster, error) {
	var out Cluster
	if _, err := c.do(ctx, http.MethodGet, "/v1/cluster", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Members lists the members of the current epoch's committee (GET /v1/members), with their
// API addresses: the bootstrap nodes to talk to.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	cm, err := c.Committee(ctx)
	if err != nil {
		return nil, err
	}
	return cm.Members, nil
}

// Committee reads GET /v1/members: the epoch, its quorum and its members.
func (c *Client) Committee(ctx context.Context) (*Committee, error) {
	var out Committee
	if _, err := c.do(ctx, http.MethodGet, "/v1/members", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Network is the committee's network id (the one claims are signed for), read once.
func (c *Client) Network(ctx context.Context) (string, error) {
	c.mu.Lock()
	network := c.network
	c.mu.Unlock()
	if network != "" {
		return network, nil
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.network = cl.Network
	c.mu.Unlock()
	return cl.Network, nil
}

// Health is a node's GET /v1/health: it runs, and whether it saw a new quorum certificate
// recently (within three base round timeouts).
type Health struct {
	Status            string `json:"status"`
	NodeID            uint16 `json:"node_id"`
	Round             uint64 `json:"round"`
	CommittedHeight   uint64 `json:"committed_height"`
	RecentCertificate bool   `json:"recent_certificate"`
}

// Health asks the node at base URL node (one attempt: a node that does not answer is not
// healthy), or, with node "", the client's nodes in turn until one answers.
func (c *Client) Health(ctx context.Context, node string) (*Health, error) {
	var out Health
	var err error
	if node == "" {
		_, err = c.do(ctx, http.MethodGet, "/v1/health", nil, nil, &out)
	} else {
		_, err = c.once(ctx, http.MethodGet, strings.TrimRight(node, "/")+"/v1/health", nil, nil, &out)
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}
