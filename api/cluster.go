package api

import (
	"math"
	"net/http"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// clusterResource is the cluster's settings and its servers table.
type clusterResource struct {
	Id             string
	InstallationId string
	// CertificateThumbprint is the thumbprint of the cluster certificate
	// every node presents to agents (certificate-global), which agents
	// pin; read-only.
	CertificateThumbprint     string
	HeartbeatFrequencySeconds float64
	StaleTimeoutSeconds       float64
	LeaseDurationSeconds      float64 // read-only: three heartbeats
	// Intervals of the leader-only jobs.
	RetentionIntervalSeconds           float64
	PackageCacheCleanupIntervalSeconds float64
	HealthCheckIntervalSeconds         float64
	PackageReindexIntervalSeconds      float64
	Schedules                          []scheduleResource // read-only: when each job last ran and runs next
	LeaderNodeId                       string             // read-only; empty while nobody leads
	Term                               int64              // read-only: the leader lease's term
	ClusterVersion                     string             // read-only: the version most online nodes run
	NodeCount                          int
	OnlineNodeCount                    int
	Servers                            []serverResource
	Links                              map[string]string
}

// clusterUpdateBody is what PUT accepts: the settings, plus the read-only
// fields a client may send back unchanged (ignored).
type clusterUpdateBody struct {
	Id                                 *string
	InstallationId                     *string
	CertificateThumbprint              *string
	HeartbeatFrequencySeconds          *float64
	StaleTimeoutSeconds                *float64
	LeaseDurationSeconds               *float64
	RetentionIntervalSeconds           *float64
	PackageCacheCleanupIntervalSeconds *float64
	HealthCheckIntervalSeconds         *float64
	PackageReindexIntervalSeconds      *float64
	Schedules                          []scheduleResource
	LeaderNodeId                       *string
	Term                               *int64
	ClusterVersion                     *string
	NodeCount                          *int
	OnlineNodeCount                    *int
	Servers                            []serverResource
	Links                              map[string]string
}

// serverResource is one row of the servers table.
type serverResource struct {
	NodeId          string
	Name            string
	OperatingSystem string
	IPAddresses     []string
	Components      []componentResource
	HeartbeatStatus string // "Current" while online, "Stale" once offline
	LastSeen        *time.Time
	Rank            string
	Version         string
	VersionInSync   bool // runs the version most online nodes run
	MasterKeyInSync bool // its master-key fingerprint is the cluster's
}

type scheduleResource struct {
	Job        string
	LastRun    *time.Time
	NextRun    *time.Time // empty: due now
	LastTaskId string
}

type componentResource struct {
	Name   string // "Web" or "Service"
	Status string // Web: "Running" or "Offline"; Service: "Running", "Draining" or "Offline"
}

func (s *Server) clusterResource(r *http.Request) (clusterResource, error) {
	settings, err := s.store.Settings(r.Context())
	if err != nil {
		return clusterResource{}, err
	}
	nodes, err := s.store.Nodes(r.Context())
	if err != nil {
		return clusterResource{}, err
	}
	lease, now, err := s.store.Lease(r.Context())
	if err != nil {
		return clusterResource{}, err
	}
	leader := int64(0)
	if lease.ExpiresAt.After(now) {
		leader = lease.NodeID
	}
	schedules, err := s.store.Schedules(r.Context())
	if err != nil {
		return clusterResource{}, err
	}
	version := majorityVersion(nodes)
	res := clusterResource{
		Id:                                 "Cluster",
		InstallationId:                     s.cluster.InstallationID,
		CertificateThumbprint:              s.thumbprint,
		HeartbeatFrequencySeconds:          settings.HeartbeatFrequency.Seconds(),
		StaleTimeoutSeconds:                settings.StaleTimeout.Seconds(),
		LeaseDurationSeconds:               settings.LeaseDuration().Seconds(),
		RetentionIntervalSeconds:           settings.RetentionInterval.Seconds(),
		PackageCacheCleanupIntervalSeconds: settings.PackageCleanupInterval.Seconds(),
		HealthCheckIntervalSeconds:         settings.HealthCheckInterval.Seconds(),
		PackageReindexIntervalSeconds:      settings.ReindexInterval.Seconds(),
		Schedules:                          []scheduleResource{},
		Term:                               lease.Term,
		ClusterVersion:                     version,
		NodeCount:                          len(nodes),
		Servers:                            []serverResource{},
		Links:                              map[string]string{"Self": "/api/cluster", "Nodes": "/api/octopusservernodes"},
	}
	for _, sc := range schedules {
		row := scheduleResource{Job: sc.Job, LastRun: timePtr(sc.LastRun), NextRun: timePtr(sc.NextRun(settings.JobInterval(sc.Job)))}
		if sc.LastTask != 0 {
			row.LastTaskId = cuttle.FormatID(cuttle.TaskIDPrefix, sc.LastTask)
		}
		res.Schedules = append(res.Schedules, row)
	}
	if leader != 0 {
		res.LeaderNodeId = cuttle.FormatID(cuttle.NodeIDPrefix, leader)
	}
	for _, n := range nodes {
		node := toNodeResource(n, leader)
		row := serverResource{
			NodeId: node.Id, Name: n.Name, OperatingSystem: n.OS, IPAddresses: n.Addresses, LastSeen: node.LastSeen,
			Rank: node.Rank, Version: n.Version, VersionInSync: n.Version == version,
			MasterKeyInSync: n.KeyFingerprint == s.cluster.KeyFingerprint,
		}
		if row.IPAddresses == nil {
			row.IPAddresses = []string{}
		}
		web, service := "Running", "Running"
		row.HeartbeatStatus = "Current"
		switch {
		case n.IsOffline:
			web, service = "Offline", "Offline"
			row.HeartbeatStatus = "Stale"
		case n.IsInMaintenanceMode:
			service = "Draining"
		}
		if !n.IsOffline {
			res.OnlineNodeCount++
		}
		row.Components = []componentResource{{Name: "Web", Status: web}, {Name: "Service", Status: service}}
		res.Servers = append(res.Servers, row)
	}
	return res, nil
}

// majorityVersion returns the version most online nodes run (all nodes if
// none is online); a tie goes to the version of the node with the lowest id.
func majorityVersion(nodes []cuttle.Node) string {
	counts := map[string]int{}
	for _, n := range nodes {
		if !n.IsOffline {
			counts[n.Version]++
		}
	}
	if len(counts) == 0 {
		for _, n := range nodes {
			counts[n.Version]++
		}
	}
	best, bestCount := "", 0
	for _, n := range nodes {
		if c := counts[n.Version]; c > bestCount {
			best, bestCount = n.Version, c
		}
	}
	return best
}

func (s *Server) handleClusterGet(w http.ResponseWriter, r *http.Request) error {
	res, err := s.clusterResource(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleClusterUpdate(w http.ResponseWriter, r *http.Request) error {
	var body clusterUpdateBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	settings, err := s.store.Settings(r.Context())
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		value *float64
		into  *time.Duration
	}{
		{"HeartbeatFrequencySeconds", body.HeartbeatFrequencySeconds, &settings.HeartbeatFrequency},
		{"StaleTimeoutSeconds", body.StaleTimeoutSeconds, &settings.StaleTimeout},
		{"RetentionIntervalSeconds", body.RetentionIntervalSeconds, &settings.RetentionInterval},
		{"PackageCacheCleanupIntervalSeconds", body.PackageCacheCleanupIntervalSeconds, &settings.PackageCleanupInterval},
		{"HealthCheckIntervalSeconds", body.HealthCheckIntervalSeconds, &settings.HealthCheckInterval},
		{"PackageReindexIntervalSeconds", body.PackageReindexIntervalSeconds, &settings.ReindexInterval},
	} {
		if f.value != nil {
			if *f.into, err = seconds(f.name, *f.value); err != nil {
				return err
			}
		}
	}
	if err := settings.Validate(); err != nil {
		return err
	}
	if err := s.store.UpdateSettings(r.Context(), settings); err != nil {
		return err
	}
	s.member.Refresh()
	if err := s.store.Notify(r.Context(), store.ChannelSettings, ""); err != nil {
		s.log.Warn("notifying the cluster of new settings failed; nodes apply them at their next heartbeat", "err", err)
	}
	return s.handleClusterGet(w, r)
}

// seconds converts a number of seconds from a request into a duration,
// refusing anything that is not a finite positive number of at most 30
// days; each setting's own range is checked by its validation.
func seconds(field string, v float64) (time.Duration, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 || v > 30*86400 {
		return 0, cuttle.Errorf(cuttle.KindInvalid, "%s must be a number of seconds above 0 and at most 2592000 (30 days).", field)
	}
	return time.Duration(v * float64(time.Second)).Round(time.Millisecond), nil
}
