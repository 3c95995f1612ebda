package api

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
)

// machineResource is the deployment target (Machine) resource. Lists are
// never null: the official Go client panics on a null one.
type machineResource struct {
	Id                              string
	Name                            string
	SpaceId                         string
	EnvironmentIds                  []string
	Roles                           []string
	TenantedDeploymentParticipation string
	TenantIds                       []string
	TenantTags                      []string
	MachinePolicyId                 string
	IsDisabled                      bool
	HealthStatus                    cuttle.HealthStatus
	Status                          string
	StatusSummary                   string
	HasLatestCalamari               bool
	IsInProcess                     bool
	OperatingSystem                 string
	ShellName                       string
	ShellVersion                    string
	Architecture                    string
	Thumbprint                      string
	Uri                             string
	Endpoint                        endpointResource
	Links                           map[string]string
}

type endpointResource struct {
	Id                            string
	CommunicationStyle            cuttle.CommunicationStyle
	Uri                           string
	Thumbprint                    string
	CertificateSignatureAlgorithm string
	TentacleVersionDetails        tentacleVersion
	Links                         map[string]string
}

type tentacleVersion struct {
	UpgradeLocked, UpgradeSuggested, UpgradeRequired bool
	Version                                          string
}

// machineBody is what POST and PUT take. Server-owned fields (health,
// status, versions) are accepted and ignored, as Octopus clients send back
// what they read.
type machineBody struct {
	Id, Name, SpaceId               string
	EnvironmentIds, Roles           []string
	TenantedDeploymentParticipation string
	TenantIds, TenantTags           []string
	MachinePolicyId                 string
	IsDisabled                      bool
	Endpoint                        *endpointBody

	HealthStatus, Status, StatusSummary, OperatingSystem, ShellName, ShellVersion, Architecture string
	HasLatestCalamari, IsInProcess                                                              bool
	Thumbprint, Uri, LastModifiedBy, Slug                                                       string
	LastModifiedOn                                                                              *time.Time
	Links                                                                                       map[string]string
}

type endpointBody struct {
	CommunicationStyle cuttle.CommunicationStyle
	Uri, Thumbprint    string

	Id, ProxyId, CertificateSignatureAlgorithm, LastModifiedBy string
	TentacleVersionDetails                                     *tentacleVersion
	LastModifiedOn                                             *time.Time
	Links                                                      map[string]string
}

// certificateResource is the cluster certificate's resource
// (CertificateConfiguration), through which agents learn what to trust.
type certificateResource struct {
	Id                 string
	Name               string
	Thumbprint         string
	SignatureAlgorithm string
	Links              map[string]string
}

func (s *Server) machineRoutes() {
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+prefix+"/machines", can("MachineView"), s.handleMachineList)
		s.handle("GET "+prefix+"/machines/all", can("MachineView"), s.handleMachineAll)
		s.handle("GET "+prefix+"/machines/{id}", can("MachineView"), s.handleMachineGet)
		s.handle("POST "+prefix+"/machines", can("MachineCreate"), s.handleMachineCreate)
		s.handle("PUT "+prefix+"/machines/{id}", can("MachineEdit"), s.handleMachineUpdate)
		s.handle("DELETE "+prefix+"/machines/{id}", can("MachineDelete"), s.handleMachineDelete)
		s.handle("GET "+prefix+"/machineroles/all", can("MachineView"), s.handleMachineRoles)
	}
	s.handle("GET /api/certificates/certificate-global", user, s.handleCertificate)
	s.handle("GET /api/configuration/certificates/certificate-global", user, s.handleCertificate)
	s.handle("GET /api/configuration/certificates", user, s.handleCertificateList)
}

// pathID returns the numeric id of the {id} path value, which must have prefix.
func pathID(r *http.Request, prefix string) (int64, error) {
	if _, err := space(r); err != nil {
		return 0, err
	}
	return cuttle.ParseID(prefix, r.PathValue("id"))
}

// sameID refuses a body whose Id names another resource than the route.
func sameID(bodyID, prefix string, id int64) error {
	if bodyID != "" && !strings.EqualFold(bodyID, cuttle.FormatID(prefix, id)) {
		return cuttle.Errorf(cuttle.KindInvalid, "The body's Id %q is not the route's %s.", bodyID, cuttle.FormatID(prefix, id))
	}
	return nil
}

// machineAllows returns forbidden unless the caller has perm for m: in
// one of its environments, or with every, in all of them (a machine may be
// placed only where the caller manages machines); for a machine in no
// environment, unlimited by environment.
func machineAllows(r *http.Request, perm string, m cuttle.Machine, every bool) error {
	p, id := callerOf(r).perms, cuttle.FormatID(cuttle.MachineIDPrefix, m.ID)
	if len(m.EnvironmentIDs) == 0 {
		return allow(r, perm, resources.Scope{}, id)
	}
	for _, e := range m.EnvironmentIDs {
		env := cuttle.FormatID(cuttle.EnvironmentIDPrefix, e)
		switch ok := p.Allows(perm, resources.Scope{Environment: env}); {
		case ok && !every:
			return nil
		case !ok && every:
			return forbidden(perm, env)
		}
	}
	if every {
		return nil
	}
	return forbidden(perm, id)
}

// machineStatus is the Octopus Status of a machine, derived from its health.
func machineStatus(m cuttle.Machine) string {
	switch {
	case m.IsDisabled:
		return "Disabled"
	case m.HealthStatus == cuttle.Unknown:
		return "Unknown"
	case m.HealthStatus == cuttle.Unavailable:
		return "Offline"
	default:
		return "Online"
	}
}

// osFamily is the Octopus OperatingSystem of the OS an agent reports.
func osFamily(os string) string {
	for _, family := range []string{"Linux", "Windows", "macOS"} {
		if strings.Contains(strings.ToLower(os), strings.ToLower(family)) {
			return family
		}
	}
	if strings.Contains(os, "darwin") {
		return "macOS"
	}
	return "Unknown"
}

// toMachineResource returns the resource of m, which follows the machine
// policy of policyID (the default one: cuttle keeps no other per machine).
func toMachineResource(m cuttle.Machine, policyID string) machineResource {
	id := cuttle.FormatID(cuttle.MachineIDPrefix, m.ID)
	envs := []string{}
	for _, e := range m.EnvironmentIDs {
		envs = append(envs, cuttle.FormatID(cuttle.EnvironmentIDPrefix, e))
	}
	shellVersion := "Unknown"
	if m.AgentVersion != "" {
		shellVersion = m.AgentVersion
	}
	return machineResource{
		Id: id, Name: m.Name, SpaceId: m.SpaceID, EnvironmentIds: envs, Roles: append([]string{}, m.Roles...),
		TenantedDeploymentParticipation: "Untenanted", TenantIds: []string{}, TenantTags: []string{},
		MachinePolicyId: policyID, IsDisabled: m.IsDisabled, HealthStatus: m.HealthStatus, Status: machineStatus(m),
		StatusSummary: m.StatusSummary, HasLatestCalamari: true, OperatingSystem: osFamily(m.OS), ShellName: "Bash",
		ShellVersion: shellVersion, Architecture: "Tentacle", Thumbprint: m.Thumbprint, Uri: m.URI,
		Endpoint: endpointResource{
			Id: "Endpoint-" + strconv.FormatInt(m.ID, 10), CommunicationStyle: m.Style, Uri: m.URI, Thumbprint: m.Thumbprint,
			CertificateSignatureAlgorithm: "ecdsa-with-SHA256", TentacleVersionDetails: tentacleVersion{Version: m.AgentVersion},
			Links: map[string]string{},
		},
		Links: map[string]string{"Self": "/api/" + DefaultSpaceID + "/machines/" + id},
	}
}

var subscriptionRE = regexp.MustCompile(`^poll://[a-z0-9]{20}/$`)

// endpointOf checks an agent's endpoint and returns its normalized URI and
// thumbprint: https://host:port/ for a listening agent (port 10933 if
// none), poll://<20 lower-case letters and digits>/ for a polling one.
func endpointOf(e *endpointBody) (cuttle.CommunicationStyle, string, string, error) {
	if e == nil {
		return "", "", "", cuttle.Errorf(cuttle.KindInvalid, "A machine needs an Endpoint: {CommunicationStyle, Uri, Thumbprint}.")
	}
	thumbprint, err := certs.ParseThumbprint(e.Thumbprint)
	if err != nil {
		return "", "", "", cuttle.Errorf(cuttle.KindInvalid, "The endpoint's Thumbprint is invalid: %v.", err)
	}
	switch e.CommunicationStyle {
	case cuttle.Polling:
		if !subscriptionRE.MatchString(e.Uri) {
			return "", "", "", cuttle.Errorf(cuttle.KindInvalid, "A polling agent's Uri is its subscription id, poll:// and 20 lower-case letters and digits and /; %q is not.", e.Uri)
		}
		return cuttle.Polling, e.Uri, thumbprint, nil
	case cuttle.Listening:
		u, err := url.Parse(e.Uri)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return "", "", "", cuttle.Errorf(cuttle.KindInvalid, "A listening agent's Uri is https://host:port/; %q is not.", e.Uri)
		}
		port := u.Port()
		if port == "" {
			port = strconv.Itoa(cuttle.DefaultListeningPort)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", "", cuttle.Errorf(cuttle.KindInvalid, "The port of the Uri %q is not a TCP port.", e.Uri)
		}
		return cuttle.Listening, "https://" + net.JoinHostPort(u.Hostname(), port) + "/", thumbprint, nil
	}
	return "", "", "", cuttle.Errorf(cuttle.KindInvalid, "cuttle's deployment targets are agents, listening (%s) or polling (%s); CommunicationStyle %q is not supported.",
		cuttle.Listening, cuttle.Polling, e.CommunicationStyle)
}

// machineOf checks a body and returns the machine it describes. Every
// machine follows the default machine policy, of policyID.
func machineOf(b machineBody, spaceID, policyID string) (cuttle.Machine, error) {
	if b.SpaceId != "" && !strings.EqualFold(b.SpaceId, spaceID) {
		return cuttle.Machine{}, cuttle.Errorf(cuttle.KindInvalid, "SpaceId %q is not this route's space %s.", b.SpaceId, spaceID)
	}
	if len(b.TenantIds) > 0 || len(b.TenantTags) > 0 || (b.TenantedDeploymentParticipation != "" && b.TenantedDeploymentParticipation != "Untenanted") {
		return cuttle.Machine{}, cuttle.Errorf(cuttle.KindInvalid, "cuttle has no tenants: leave TenantIds and TenantTags empty and TenantedDeploymentParticipation Untenanted.")
	}
	if b.MachinePolicyId != "" && !strings.EqualFold(b.MachinePolicyId, policyID) {
		return cuttle.Machine{}, cuttle.Errorf(cuttle.KindInvalid, "cuttle's deployment targets all follow the default machine policy, %s; MachinePolicyId %q is not it.", policyID, b.MachinePolicyId)
	}
	style, uri, thumbprint, err := endpointOf(b.Endpoint)
	if err != nil {
		return cuttle.Machine{}, err
	}
	m := cuttle.Machine{SpaceID: spaceID, Name: strings.TrimSpace(b.Name), Roles: []string{}, EnvironmentIDs: []int64{},
		Style: style, URI: uri, Thumbprint: thumbprint, IsDisabled: b.IsDisabled}
	for _, role := range b.Roles {
		if role = strings.TrimSpace(role); role == "" || strings.Contains(role, ",") {
			return cuttle.Machine{}, cuttle.Errorf(cuttle.KindInvalid, "A role is a non-empty name without commas; %q is not.", role)
		}
		m.Roles = append(m.Roles, role)
	}
	for _, e := range b.EnvironmentIds {
		id, err := cuttle.ParseID(cuttle.EnvironmentIDPrefix, e)
		if err != nil {
			return cuttle.Machine{}, cuttle.Errorf(cuttle.KindInvalid, "EnvironmentIds holds %q, which is not an id of the form %sN.", e, cuttle.EnvironmentIDPrefix)
		}
		m.EnvironmentIDs = append(m.EnvironmentIDs, id)
	}
	return m, m.Validate()
}

// listParam returns the comma-separated values of a query parameter.
func listParam(r *http.Request, name string) []string {
	var out []string
	for _, v := range strings.Split(r.URL.Query().Get(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// machineQuery reads the filters of a machine list.
func machineQuery(r *http.Request) (cuttle.MachineQuery, error) {
	q := r.URL.Query()
	mq := cuttle.MachineQuery{Name: q.Get("name"), PartialName: q.Get("partialName"), Roles: listParam(r, "roles"), Thumbprint: q.Get("thumbprint")}
	ids, err := idFilter(r, cuttle.MachineIDPrefix)
	if err != nil {
		return mq, err
	}
	for id := range ids {
		n, _ := cuttle.ParseID(cuttle.MachineIDPrefix, id)
		mq.IDs = append(mq.IDs, n)
	}
	if ids != nil && len(mq.IDs) == 0 {
		mq.IDs = []int64{0} // ids= with no id selects nothing
	}
	for _, e := range listParam(r, "environmentIds") {
		id, err := cuttle.ParseID(cuttle.EnvironmentIDPrefix, e)
		if err != nil {
			return mq, cuttle.Errorf(cuttle.KindInvalid, "environmentIds holds %q, which is not an id of the form %sN.", e, cuttle.EnvironmentIDPrefix)
		}
		mq.EnvironmentIDs = append(mq.EnvironmentIDs, id)
	}
	for _, st := range listParam(r, "commStyles") {
		mq.Styles = append(mq.Styles, cuttle.CommunicationStyle(st))
	}
	for _, h := range listParam(r, "healthStatuses") {
		mq.HealthStatuses = append(mq.HealthStatuses, cuttle.HealthStatus(h))
	}
	if v := q.Get("isDisabled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return mq, cuttle.Errorf(cuttle.KindInvalid, "isDisabled must be true or false.")
		}
		mq.IsDisabled = &b
	}
	for _, unsupported := range []string{"tenantIds", "tenantTags", "deploymentId", "shellNames"} {
		if q.Get(unsupported) != "" {
			return mq, cuttle.Errorf(cuttle.KindInvalid, "cuttle does not filter machines by %s.", unsupported)
		}
	}
	return mq, nil
}

func (s *Server) machines(r *http.Request) ([]machineResource, error) {
	if _, err := space(r); err != nil {
		return nil, err
	}
	q, err := machineQuery(r)
	if err != nil {
		return nil, err
	}
	ms, err := s.store.Machines(r.Context(), q)
	if err != nil {
		return nil, err
	}
	policy, err := s.defaultMachinePolicyID(r.Context())
	if err != nil {
		return nil, err
	}
	out := []machineResource{}
	for _, m := range ms {
		if machineAllows(r, "MachineView", m, false) == nil {
			out = append(out, toMachineResource(m, policy))
		}
	}
	return out, nil
}

func (s *Server) handleMachineList(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.machines(r)
	if err != nil {
		return err
	}
	return writePage(w, r, "Machine", "/api/"+DefaultSpaceID+"/machines", ms)
}

func (s *Server) handleMachineAll(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.machines(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ms)
	return nil
}

func (s *Server) handleMachineGet(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, cuttle.MachineIDPrefix)
	if err != nil {
		return err
	}
	m, err := s.store.Machine(r.Context(), id)
	if err != nil {
		return err
	}
	if err := machineAllows(r, "MachineView", m, false); err != nil {
		return err
	}
	policy, err := s.defaultMachinePolicyID(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMachineResource(m, policy))
	return nil
}

// machineChanged tells every node that a machine changed, for the caches
// of agent traffic.
func (s *Server) machineChanged(r *http.Request, id int64) {
	if err := s.store.Notify(r.Context(), store.ChannelMachines, strconv.FormatInt(id, 10)); err != nil {
		s.log.Debug("notifying a machine change failed; the nodes' caches expire on their own", "err", err)
	}
}

func (s *Server) handleMachineCreate(w http.ResponseWriter, r *http.Request) error {
	spaceID, err := space(r)
	if err != nil {
		return err
	}
	var b machineBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	policy, err := s.defaultMachinePolicyID(r.Context())
	if err != nil {
		return err
	}
	m, err := machineOf(b, spaceID, policy)
	if err != nil {
		return err
	}
	if err := machineAllows(r, "MachineCreate", m, true); err != nil {
		return err
	}
	if m, err = s.store.CreateMachine(r.Context(), m); err != nil {
		return err
	}
	s.machineChanged(r, m.ID)
	s.log.Info("registered a deployment target", "machine", cuttle.FormatID(cuttle.MachineIDPrefix, m.ID), "name", m.Name,
		"style", m.Style, "uri", m.URI, "thumbprint", m.Thumbprint)
	writeJSON(w, http.StatusCreated, toMachineResource(m, policy))
	return nil
}

func (s *Server) handleMachineUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, cuttle.MachineIDPrefix)
	if err != nil {
		return err
	}
	var b machineBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	if err := sameID(b.Id, cuttle.MachineIDPrefix, id); err != nil {
		return err
	}
	policy, err := s.defaultMachinePolicyID(r.Context())
	if err != nil {
		return err
	}
	m, err := machineOf(b, DefaultSpaceID, policy)
	if err != nil {
		return err
	}
	m.ID = id
	if err := s.machineEditable(r, "MachineEdit", id); err != nil {
		return err
	}
	if err := machineAllows(r, "MachineEdit", m, true); err != nil {
		return err
	}
	if m, err = s.store.UpdateMachine(r.Context(), m); err != nil {
		return err
	}
	s.machineChanged(r, m.ID)
	writeJSON(w, http.StatusOK, toMachineResource(m, policy))
	return nil
}

func (s *Server) handleMachineDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, cuttle.MachineIDPrefix)
	if err != nil {
		return err
	}
	if err := s.machineEditable(r, "MachineDelete", id); err != nil {
		return err
	}
	if err := s.store.DeleteMachine(r.Context(), id); err != nil {
		return err
	}
	s.machineChanged(r, id)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// machineEditable returns forbidden unless the caller has perm in every
// environment the machine of id is in now. (The machine is read apart from
// its change: one moved between the two is judged where it was.)
func (s *Server) machineEditable(r *http.Request, perm string, id int64) error {
	m, err := s.store.Machine(r.Context(), id)
	if err != nil {
		return err
	}
	return machineAllows(r, perm, m, true)
}

func (s *Server) handleMachineRoles(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.store.Machines(r.Context(), cuttle.MachineQuery{})
	if err != nil {
		return err
	}
	roles := []string{}
	for _, m := range ms {
		for _, role := range m.Roles {
			if !slices.Contains(roles, role) {
				roles = append(roles, role)
			}
		}
	}
	slices.Sort(roles)
	writeJSON(w, http.StatusOK, roles)
	return nil
}

func (s *Server) certificate() certificateResource {
	return certificateResource{
		Id: "certificate-global", Name: "cuttle cluster", Thumbprint: s.thumbprint, SignatureAlgorithm: "ecdsa-with-SHA256",
		Links: map[string]string{"Self": "/api/configuration/certificates/certificate-global"},
	}
}

func (s *Server) handleCertificate(w http.ResponseWriter, r *http.Request) error {
	if s.thumbprint == "" {
		return cuttle.Errorf(cuttle.KindNotFound, "This node has no cluster certificate.")
	}
	writeJSON(w, http.StatusOK, s.certificate())
	return nil
}

func (s *Server) handleCertificateList(w http.ResponseWriter, r *http.Request) error {
	if s.thumbprint == "" {
		return cuttle.Errorf(cuttle.KindNotFound, "This node has no cluster certificate.")
	}
	return writePage(w, r, "CertificateConfiguration", "/api/configuration/certificates", []certificateResource{s.certificate()})
}
