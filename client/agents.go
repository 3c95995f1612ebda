package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DefaultSpace is the space whose routes the agent commands use.
const DefaultSpace = "Spaces-1"

// Certificate is the certificate resource: certificate-global is the
// cluster's, which every node presents to agents.
type Certificate struct {
	Id                 string
	Name               string
	Thumbprint         string
	SignatureAlgorithm string
}

// ClusterCertificate returns the cluster's certificate (certificate-global).
func (c *Client) ClusterCertificate(ctx context.Context) (Certificate, error) {
	var cert Certificate
	err := c.Do(ctx, http.MethodGet, "/api/certificates/certificate-global", nil, &cert)
	return cert, err
}

// Environment is the environment resource.
type Environment struct {
	Id          string
	Name        string
	Description string
	SortOrder   int
}

// Environments returns every environment of the default space.
func (c *Client) Environments(ctx context.Context) ([]Environment, error) {
	var envs []Environment
	err := c.Do(ctx, http.MethodGet, "/api/"+DefaultSpace+"/environments/all", nil, &envs)
	return envs, err
}

// Endpoint is how the cluster reaches a machine's agent: CommunicationStyle
// TentacleActive (polling; Uri is the subscription id, poll://.../) or
// TentaclePassive (listening; Uri is https://host:port/), and the agent's
// certificate's thumbprint.
type Endpoint struct {
	CommunicationStyle string
	Uri                string
	Thumbprint         string
}

// Machine is the machine resource: a deployment target.
type Machine struct {
	Id             string
	Name           string
	Roles          []string
	EnvironmentIds []string
	Endpoint       Endpoint
	Thumbprint     string
	Uri            string
	HealthStatus   string
	StatusSummary  string
	IsDisabled     bool
	SpaceId        string
}

// NewMachine is a machine to register.
type NewMachine struct {
	Name           string
	Roles          []string
	EnvironmentIds []string
	Endpoint       Endpoint
}

// CreateMachine registers a machine in the default space. The API refuses
// a name in use (409).
func (c *Client) CreateMachine(ctx context.Context, m NewMachine) (Machine, error) {
	var out Machine
	err := c.Do(ctx, http.MethodPost, "/api/"+DefaultSpace+"/machines", m, &out)
	return out, err
}

// Machines returns every machine of the default space.
func (c *Client) Machines(ctx context.Context) ([]Machine, error) {
	var ms []Machine
	err := c.Do(ctx, http.MethodGet, "/api/"+DefaultSpace+"/machines/all", nil, &ms)
	return ms, err
}

// Machine returns the machine with the id.
func (c *Client) Machine(ctx context.Context, id string) (Machine, error) {
	var m Machine
	err := c.Do(ctx, http.MethodGet, "/api/"+DefaultSpace+"/machines/"+url.PathEscape(id), nil, &m)
	return m, err
}

// FindMachine returns the machine whose name (case-insensitive) or id is
// nameOrID; it fails if there is none.
func (c *Client) FindMachine(ctx context.Context, nameOrID string) (Machine, error) {
	if strings.HasPrefix(nameOrID, "Machines-") {
		return c.Machine(ctx, nameOrID)
	}
	var page struct{ Items []Machine }
	if err := c.Do(ctx, http.MethodGet, "/api/"+DefaultSpace+"/machines?name="+url.QueryEscape(nameOrID), nil, &page); err != nil {
		return Machine{}, err
	}
	for _, m := range page.Items {
		if strings.EqualFold(m.Name, nameOrID) {
			return m, nil
		}
	}
	return Machine{}, fmt.Errorf("there is no machine named %q", nameOrID)
}
