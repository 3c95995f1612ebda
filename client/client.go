// Package client calls a cuttle node's REST API: the thin HTTP layer under
// the cuttle command's client commands (node, cluster, ...).
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client calls one cuttle API. The zero value is not usable: set BaseURL.
type Client struct {
	// BaseURL is the node's or load balancer's URL, such as
	// https://cuttle.example.com or http://localhost:8080.
	BaseURL string
	// APIKey is sent in the X-Octopus-ApiKey header.
	APIKey string
	// HTTP is the client used; default: one with a 30 s timeout that
	// trusts the system's certificate authorities (see TrustingCAs).
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

// errorOf decodes an error answer: the API's JSON, or one short line of
// text (such as Go's answer to plain HTTP sent to an HTTPS port), or else
// the status's text.
func errorOf(status int, body []byte) *Error {
	e := &Error{Status: status}
	var doc struct {
		ErrorMessage string
		Errors       []string
	}
	text := strings.TrimSpace(string(body))
	switch {
	case json.Unmarshal(body, &doc) == nil && doc.ErrorMessage != "":
		e.Message, e.Errors = doc.ErrorMessage, doc.Errors
	case text != "" && len(text) <= 200 && !strings.ContainsAny(text, "\n<{"):
		e.Message = text
	default:
		e.Message = http.StatusText(status)
	}
	return e
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return errorOf(resp.StatusCode, b)
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// TrustingCAs returns an HTTP client like the default one (30 s timeout)
// that accepts an https server only if its certificate chains to one of
// the certificate authorities in the PEM file caFile, instead of the
// system's: for an API whose certificate a private authority signed. It
// fails when the file cannot be read or holds no PEM certificate.
func TrustingCAs(caFile string) (*http.Client, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the certificate authorities to trust: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate of an authority to trust", caFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Timeout: defaultHTTP.Timeout, Transport: transport}, nil
}

// httpClient is c.HTTP, or the default.
func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

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
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return errorOf(resp.StatusCode, b)
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
	Id             string
	InstallationId string
	// CertificateThumbprint is the cluster certificate's, which agents pin.
	CertificateThumbprint              string
	HeartbeatFrequencySeconds          float64
	StaleTimeoutSeconds                float64
	LeaseDurationSeconds               float64
	RetentionIntervalSeconds           float64
	PackageCacheCleanupIntervalSeconds float64
	HealthCheckIntervalSeconds         float64
	PackageReindexIntervalSeconds      float64
	Schedules                          []struct {
		Job              string
		LastRun, NextRun *time.Time
		LastTaskId       string
	}
	LeaderNodeId    string
	Term            int64
	ClusterVersion  string
	NodeCount       int
	OnlineNodeCount int
	Servers         []Server
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
	return c.SetClusterSettings(ctx, map[string]time.Duration{"HeartbeatFrequencySeconds": heartbeat, "StaleTimeoutSeconds": staleTimeout})
}

// SetClusterSettings sets cluster settings named by their resource field
// (such as "RetentionIntervalSeconds"); a zero duration leaves one alone.
func (c *Client) SetClusterSettings(ctx context.Context, settings map[string]time.Duration) (Cluster, error) {
	body := map[string]any{}
	for field, d := range settings {
		if d > 0 {
			body[field] = d.Seconds()
		}
	}
	var cl Cluster
	err := c.Do(ctx, http.MethodPut, "/api/cluster", body, &cl)
	return cl, err
}

// Task is the task resource.
type Task struct {
	Id                  string
	Name                string
	Description         string
	State               string
	ServerNode          string
	QueueTime           *time.Time
	StartTime           *time.Time
	CompletedTime       *time.Time
	ErrorMessage        string
	Duration            string
	IsCompleted         bool
	HasWarningsOrErrors bool
	Arguments           map[string]any
}

// CreateTask queues a task such as {"Name":"AdHocScript","Arguments":{...}}.
func (c *Client) CreateTask(ctx context.Context, name string, args map[string]any) (Task, error) {
	var t Task
	err := c.Do(ctx, http.MethodPost, "/api/tasks", map[string]any{"Name": name, "Arguments": args}, &t)
	return t, err
}

// Task returns one task.
func (c *Client) Task(ctx context.Context, id string) (Task, error) {
	var t Task
	err := c.Do(ctx, http.MethodGet, "/api/tasks/"+url.PathEscape(id), nil, &t)
	return t, err
}

// Tasks returns the tasks the filters select (empty: any), newest first, up to take.
func (c *Client) Tasks(ctx context.Context, states []string, node string, take int) ([]Task, int, error) {
	q := url.Values{"take": {strconv.Itoa(take)}}
	if len(states) > 0 {
		q.Set("states", strings.Join(states, ","))
	}
	if node != "" {
		q.Set("node", node)
	}
	var page struct {
		TotalResults int
		Items        []Task
	}
	err := c.Do(ctx, http.MethodGet, "/api/tasks?"+q.Encode(), nil, &page)
	return page.Items, page.TotalResults, err
}

// CancelTask cancels a task and returns it as it now is.
func (c *Client) CancelTask(ctx context.Context, id string) (Task, error) {
	var t Task
	err := c.Do(ctx, http.MethodPost, "/api/tasks/"+url.PathEscape(id)+"/cancel", nil, &t)
	return t, err
}

// TaskLog copies a task's log as text to w; with follow, until the task completes.
func (c *Client) TaskLog(ctx context.Context, id string, follow bool, w io.Writer) error {
	path := "/api/tasks/" + url.PathEscape(id) + "/raw"
	if follow {
		path += "?follow=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Octopus-ApiKey", c.APIKey)
	h := c.httpClient()
	if follow {
		unbounded := *h
		unbounded.Timeout = 0 // a followed log has no deadline but ctx
		h = &unbounded
	}
	resp, err := h.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
