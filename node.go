package cuttle

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Default cluster settings. With these, a dead leader is replaced within
// LeaseDuration (3 s) plus one heartbeat, and a node is offline after 10 s of
// silence: long enough that a slow heartbeat or a brief database hiccup does
// not flap a node offline.
const (
	DefaultHeartbeatFrequency = 1 * time.Second
	DefaultStaleTimeout       = 10 * time.Second
	// DefaultTaskCap is the task cap of a node that registers for the first time.
	DefaultTaskCap = 5

	// MinHeartbeatFrequency and MaxHeartbeatFrequency bound the heartbeat setting.
	MinHeartbeatFrequency = 100 * time.Millisecond
	MaxHeartbeatFrequency = 5 * time.Minute
	// MaxTaskCap bounds a node's task cap.
	MaxTaskCap = 10000
)

// ClusterSettings are the cluster-wide settings kept in the database. Every node
// applies a change without restarting.
type ClusterSettings struct {
	// HeartbeatFrequency is how often each node checks in and the leader renews
	// its lease. Default 1 s.
	HeartbeatFrequency time.Duration
	// StaleTimeout is how long a node may go without checking in before it is
	// offline. Default 10 s; at least three heartbeats.
	StaleTimeout time.Duration
	// The intervals of the leader-only jobs: retention (default 1 h),
	// package cache cleanup (1 h), health checks (1 h: how often the
	// leader checks the targets due under their machine policies), package
	// re-index (24 h). Each is between 1 s and 30 days.
	RetentionInterval      time.Duration
	PackageCleanupInterval time.Duration
	HealthCheckInterval    time.Duration
	ReindexInterval        time.Duration
}

// JobInterval returns the interval of a leader-only job (cuttle.Jobs), or 0
// for an unknown job.
func (s ClusterSettings) JobInterval(job string) time.Duration {
	switch job {
	case JobRetention:
		return s.RetentionInterval
	case JobPackageCleanup:
		return s.PackageCleanupInterval
	case JobHealthCheck:
		return s.HealthCheckInterval
	case JobReindex:
		return s.ReindexInterval
	}
	return 0
}

// DefaultClusterSettings returns the settings a new cluster starts with.
func DefaultClusterSettings() ClusterSettings {
	return ClusterSettings{
		HeartbeatFrequency: DefaultHeartbeatFrequency, StaleTimeout: DefaultStaleTimeout,
		RetentionInterval: time.Hour, PackageCleanupInterval: time.Hour, HealthCheckInterval: time.Hour, ReindexInterval: 24 * time.Hour,
	}
}

// LeaseDuration is how long a leader's lease lasts from its last renewal: three
// heartbeats, so a leader renewing every heartbeat survives two missed renewals.
func (s ClusterSettings) LeaseDuration() time.Duration { return 3 * s.HeartbeatFrequency }

// Validate returns a KindInvalid error describing every setting out of range.
func (s ClusterSettings) Validate() error {
	var problems []string
	if s.HeartbeatFrequency < MinHeartbeatFrequency || s.HeartbeatFrequency > MaxHeartbeatFrequency {
		problems = append(problems, fmt.Sprintf("the heartbeat frequency must be between %v and %v", MinHeartbeatFrequency, MaxHeartbeatFrequency))
	}
	if s.StaleTimeout < 3*s.HeartbeatFrequency {
		problems = append(problems, "the stale timeout must be at least three heartbeats")
	}
	if s.StaleTimeout > 24*time.Hour {
		problems = append(problems, "the stale timeout must be at most 24 hours")
	}
	for _, job := range Jobs {
		if d := s.JobInterval(job); d < time.Second || d > 30*24*time.Hour {
			problems = append(problems, fmt.Sprintf("the %s interval must be between 1 second and 30 days", job))
		}
	}
	if len(problems) > 0 {
		return &Error{Kind: KindInvalid, Message: "The cluster settings are invalid.", Details: problems}
	}
	return nil
}

// Cluster is the identity of a cluster, created by the first node that starts
// on an empty database.
type Cluster struct {
	InstallationID string // a UUID
	// KeyFingerprint identifies the master key every node must share; it is a
	// one-way digest, never the key itself.
	KeyFingerprint string
	CreatedAt      time.Time
}

// Node is one cuttle server process of a cluster, as the database knows it.
type Node struct {
	ID                  int64
	Name                string
	MaxConcurrentTasks  int
	IsInMaintenanceMode bool // draining: claims no tasks, never leads
	// LastSeen is the database time of the node's last check-in; zero if never.
	LastSeen time.Time
	// IsOffline is computed by the database: the node stopped cleanly, or was
	// not seen for the stale timeout.
	IsOffline      bool
	Version        string
	OS             string
	Addresses      []string
	KeyFingerprint string
	StartedAt      time.Time
	// Incarnation counts the node's registrations: each start of the node
	// begins a new one, and a clean stop ends it (see NodeRef).
	Incarnation int64
	// RunningTaskCount is the number of tasks the node executes now.
	RunningTaskCount int
}

// Ref returns the node's current incarnation.
func (n Node) Ref() NodeRef { return NodeRef{ID: n.ID, Incarnation: n.Incarnation} }

// NodeRef names one incarnation of a node: the span from one registration to
// the clean stop or next registration that ends it. Writes on behalf of a
// running node (check-ins, the clean stop) are fenced by it, so that a
// statement of a stopped or restarted process that commits late changes
// nothing (DESIGN.md invariant 9).
type NodeRef struct {
	ID          int64
	Incarnation int64
}

// NodeRegistration is what a starting node tells the cluster about itself.
type NodeRegistration struct {
	Name           string
	Version        string
	OS             string
	Addresses      []string
	KeyFingerprint string
	// TaskCap, when not nil, sets the node's task cap; otherwise a known node
	// keeps its cap and a new one gets DefaultTaskCap.
	TaskCap *int
}

// NodeUpdate changes the settings of a node; nil fields are left alone.
type NodeUpdate struct {
	MaxConcurrentTasks  *int
	IsInMaintenanceMode *bool
}

// Validate returns a KindInvalid error if the update is out of range.
func (u NodeUpdate) Validate() error {
	if u.MaxConcurrentTasks != nil && (*u.MaxConcurrentTasks < 0 || *u.MaxConcurrentTasks > MaxTaskCap) {
		return Errorf(KindInvalid, "MaxConcurrentTasks must be between 0 and %d.", MaxTaskCap)
	}
	return nil
}

// Lease is the leader lease: the node that holds it leads for Term until
// ExpiresAt (database time). NodeID 0 means nobody leads.
type Lease struct {
	Term      int64
	NodeID    int64
	ExpiresAt time.Time
}

// Rank of a node in the cluster.
const (
	RankLeader   = "Leader"
	RankFollower = "Follower"
)

// NodeIDPrefix is the prefix of a node's API id, as in "OctopusServerNodes-3".
const NodeIDPrefix = "OctopusServerNodes-"

// FormatID returns the API id of a resource: prefix "Environments-" and 7 give "Environments-7".
func FormatID(prefix string, id int64) string { return prefix + strconv.FormatInt(id, 10) }

// ParseID parses an API id with the given prefix, case-insensitively. It returns
// a KindNotFound error for anything else, since such an id names no resource.
func ParseID(prefix, s string) (int64, error) {
	if len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		if n, err := strconv.ParseInt(s[len(prefix):], 10, 64); err == nil && n > 0 && strconv.FormatInt(n, 10) == s[len(prefix):] {
			return n, nil
		}
	}
	return 0, Errorf(KindNotFound, "There is no resource with the id %q.", s)
}
