// Package client calls a cuttle node's REST API: the thin HTTP layer under
// the cuttle command's client commands (node, cluster, ...).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls one cuttle API. The zero value is not usable: set BaseURL.
type Client struct {
	// BaseURL is the node's or load balancer's URL, such as http://localhost:8080.
	BaseURL string
	// APIKey is sent in the X-Octopus-ApiKey header.
	APIKey string
	// HTTP is the client used; default: one with a 30 s timeout.
	HTTP *http.Client
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
	Errors  []string
}

func (e *Error) Error() string {
	msg := e.Message
	if len(e.Errors) > 0 && !(len(e.Errors) == 1 && e.Errors[0] == msg) {
		msg += " (" + strings.Join(e.Errors, "; ") + ")"
	}
	return fmt.Sprintf("%s [HTTP %d]", msg, e.Status)
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// Do sends a request with in (if not nil) as its JSON body and decodes a JSON
// answer into out (if not nil). An answer of 400 or above is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		req.Header.Set("X-Octopus-ApiKey", c.APIKey)
	}
	h := c.HTTP
	if h == nil {
		h = defaultHTTP
	}
	resp, err := h.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		var doc struct {
			ErrorMessage string
			Errors       []string
		}
		if json.Unmarshal(b, &doc) == nil && doc.ErrorMessage != "" {
			e.Message, e.Errors = doc.ErrorMessage, doc.Errors
		} else {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return e
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Node is the node resource.
type Node struct {
	Id                  string
	Name                string
	MaxConcurrentTasks  int
	IsInMaintenanceMode bool
	IsOffline           bool
	LastSeen            *time.Time
	Rank                string
	RunningTaskCount    int
	Version             string
}

// Nodes returns every node.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var nodes []Node
	err := c.Do(ctx, http.MethodGet, "/api/octopusservernodes/all", nil, &nodes)
	return nodes, err
}

// FindNode returns the node whose name or id is nameOrID.
func (c *Client) FindNode(ctx context.Context, nameOrID string) (Node, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return Node{}, err
	}
	for _, n := range nodes {
		if n.Name == nameOrID || strings.EqualFold(n.Id, nameOrID) {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("there is no node named %q", nameOrID)
}

// UpdateNode changes a node's task cap and drain; nil fields are left alone.
func (c *Client) UpdateNode(ctx context.Context, id string, taskCap *int, drain *bool) (Node, error) {
	body := map[string]any{}
	if taskCap != nil {
		body["MaxConcurrentTasks"] = *taskCap
	}
	if drain != nil {
		body["IsInMaintenanceMode"] = *drain
	}
	var n Node
	err := c.Do(ctx, http.MethodPut, "/api/octopusservernodes/"+id, body, &n)
	return n, err
}

// Cluster is the cluster resource.
type Cluster struct {
	Id                        string
	InstallationId            string
	HeartbeatFrequencySeconds float64
	StaleTimeoutSeconds       float64
	LeaseDurationSeconds      float64
	LeaderNodeId              string
	Term                      int64
	ClusterVersion            string
	NodeCount                 int
	OnlineNodeCount           int
	Servers                   []Server
}

// Server is one row of the cluster's servers table.
type Server struct {
	NodeId          string
	Name            string
	OperatingSystem string
	IPAddresses     []string
	Components      []struct{ Name, Status string }
	HeartbeatStatus string
	LastSeen        *time.Time
	Rank            string
	Version         string
	VersionInSync   bool
	MasterKeyInSync bool
}

// Cluster returns the cluster's settings and servers.
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	var cl Cluster
	err := c.Do(ctx, http.MethodGet, "/api/cluster", nil, &cl)
	return cl, err
}

// UpdateCluster sets the heartbeat frequency and stale timeout; zero leaves one alone.
func (c *Client) UpdateCluster(ctx context.Context, heartbeat, staleTimeout time.Duration) (Cluster, error) {
	body := map[string]any{}
	if heartbeat > 0 {
		body["HeartbeatFrequencySeconds"] = heartbeat.Seconds()
	}
	if staleTimeout > 0 {
		body["StaleTimeoutSeconds"] = staleTimeout.Seconds()
	}
	var cl Cluster
	err := c.Do(ctx, http.MethodPut, "/api/cluster", body, &cl)
	return cl, err
}
