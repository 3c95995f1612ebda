package cuttle

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MachinePolicy is how the cluster treats the deployment targets that
// follow it: how it connects to them, how often it checks their health,
// whether it deletes unavailable ones, how it updates them. Durations are
// TimeSpan strings, as Octopus writes them (FormatTimeSpan). Every space
// has a "Default Machine Policy" (IsDefault), which cannot be deleted.
type MachinePolicy struct {
	Resource
	Name        string `json:"Name"`
	Description string `json:"Description"`
	// IsDefault marks the space's default policy, which every target
	// follows unless it names another; the server owns it.
	IsDefault bool `json:"IsDefault"`

	ConnectionConnectTimeout     string `json:"ConnectionConnectTimeout"`
	ConnectionRetryCountLimit    int    `json:"ConnectionRetryCountLimit"`
	ConnectionRetrySleepInterval string `json:"ConnectionRetrySleepInterval"`
	ConnectionRetryTimeLimit     string `json:"ConnectionRetryTimeLimit"`
	// PollingRequestQueueTimeout is how long a command waits for a polling
	// target to collect it; PollingRequestMaximumMessageProcessingTimeout
	// how long the target may take over it.
	PollingRequestQueueTimeout                    string `json:"PollingRequestQueueTimeout"`
	PollingRequestMaximumMessageProcessingTimeout string `json:"PollingRequestMaximumMessageProcessingTimeout"`

	MachineCleanupPolicy               MachineCleanupPolicy               `json:"MachineCleanupPolicy"`
	MachineConnectivityPolicy          MachineConnectivityPolicy          `json:"MachineConnectivityPolicy"`
	MachineHealthCheckPolicy           MachineHealthCheckPolicy           `json:"MachineHealthCheckPolicy"`
	MachineUpdatePolicy                MachineUpdatePolicy                `json:"MachineUpdatePolicy"`
	MachinePackageCacheRetentionPolicy MachinePackageCacheRetentionPolicy `json:"MachinePackageCacheRetentionPolicy"`
}

// MachineCleanupPolicy says whether targets unavailable for a while are
// deleted.
type MachineCleanupPolicy struct {
	DeleteMachinesBehavior        string `json:"DeleteMachinesBehavior"` // DeleteUnavailableMachines or DoNotDelete
	DeleteMachinesElapsedTimeSpan string `json:"DeleteMachinesElapsedTimeSpan"`
}

// MachineConnectivityPolicy says whether a deployment may skip an
// unreachable target.
type MachineConnectivityPolicy struct {
	MachineConnectivityBehavior string `json:"MachineConnectivityBehavior"` // ExpectedToBeOnline or MayBeOfflineAndCanBeSkipped
}

// MachineHealthCheckPolicy says how often and how targets' health is
// checked.
type MachineHealthCheckPolicy struct {
	PowerShellHealthCheckPolicy MachineScriptPolicy `json:"PowerShellHealthCheckPolicy"`
	BashHealthCheckPolicy       MachineScriptPolicy `json:"BashHealthCheckPolicy"`
	// HealthCheckInterval is the time between two health checks of a
	// target, kept to within the cluster's HealthCheckInterval (package
	// tasks, due).
	HealthCheckInterval string `json:"HealthCheckInterval"`
	// HealthCheckCron is Octopus's alternative schedule; cuttle schedules
	// by the interval only, and keeps it empty.
	HealthCheckCron         string `json:"HealthCheckCron"`
	HealthCheckCronTimezone string `json:"HealthCheckCronTimezone"`
	HealthCheckType         string `json:"HealthCheckType"` // RunScript or OnlyConnectivity
}

// MachineScriptPolicy is the script a health check runs on a target.
type MachineScriptPolicy struct {
	RunType    string  `json:"RunType"` // Inline, InheritFromDefault or OnlyConnectivity
	ScriptBody *string `json:"ScriptBody"`
}

// MachineUpdatePolicy says when targets' tools are updated.
type MachineUpdatePolicy struct {
	CalamariUpdateBehavior        string  `json:"CalamariUpdateBehavior"`        // UpdateOnDeployment, UpdateOnNewMachine or UpdateAlways
	TentacleUpdateBehavior        string  `json:"TentacleUpdateBehavior"`        // NeverUpdate or Update
	KubernetesAgentUpdateBehavior string  `json:"KubernetesAgentUpdateBehavior"` // NeverUpdate or Update
	TentacleUpdateAccountId       *string `json:"TentacleUpdateAccountId"`
}

// MachinePackageCacheRetentionPolicy says how many packages targets keep.
type MachinePackageCacheRetentionPolicy struct {
	Strategy                 string `json:"Strategy"` // Default or Quantities
	QuantityOfPackagesToKeep int    `json:"QuantityOfPackagesToKeep"`
	PackageUnit              string `json:"PackageUnit"` // Items, with Quantities
	QuantityOfVersionsToKeep int    `json:"QuantityOfVersionsToKeep"`
	VersionUnit              string `json:"VersionUnit"` // Items, with Quantities
}

// DefaultMachinePolicyName is the name of the machine policy a new space
// starts with.
const DefaultMachinePolicyName = "Default Machine Policy"

// NewMachinePolicy returns a policy of Octopus's defaults: connect within a
// minute, retry five times a second apart for at most five minutes, check
// health every hour, delete nothing, update Calamari on deployment and
// never the agents.
func NewMachinePolicy(name string) MachinePolicy {
	empty := ""
	return MachinePolicy{
		Name:                                          name,
		ConnectionConnectTimeout:                      "00:01:00",
		ConnectionRetryCountLimit:                     5,
		ConnectionRetrySleepInterval:                  "00:00:01",
		ConnectionRetryTimeLimit:                      "00:05:00",
		PollingRequestQueueTimeout:                    "00:02:00",
		PollingRequestMaximumMessageProcessingTimeout: "00:10:00",
		MachineCleanupPolicy:                          MachineCleanupPolicy{DeleteMachinesBehavior: "DoNotDelete", DeleteMachinesElapsedTimeSpan: "01:00:00"},
		MachineConnectivityPolicy:                     MachineConnectivityPolicy{MachineConnectivityBehavior: "ExpectedToBeOnline"},
		MachineHealthCheckPolicy: MachineHealthCheckPolicy{
			PowerShellHealthCheckPolicy: MachineScriptPolicy{RunType: "Inline", ScriptBody: &empty},
			BashHealthCheckPolicy:       MachineScriptPolicy{RunType: "Inline", ScriptBody: &empty},
			HealthCheckInterval:         "01:00:00", HealthCheckCronTimezone: "UTC", HealthCheckType: "RunScript",
		},
		MachineUpdatePolicy: MachineUpdatePolicy{CalamariUpdateBehavior: "UpdateOnDeployment", TentacleUpdateBehavior: "NeverUpdate",
			KubernetesAgentUpdateBehavior: "Update"},
		MachinePackageCacheRetentionPolicy: MachinePackageCacheRetentionPolicy{Strategy: "Default"},
	}
}

// Check validates and completes a machine policy about to be stored: its
// name, its durations (TimeSpans, rewritten in their canonical form; the
// optional ones Octopus's default when empty), its counts and its enum
// values. IsDefault is the caller's to guard.
func (p *MachinePolicy) Check() error {
	if err := CheckName(&p.Name, "machine policy"); err != nil {
		return err
	}
	if p.ConnectionRetryCountLimit < 2 {
		return Errorf(KindInvalid, "A machine policy's ConnectionRetryCountLimit must be at least 2, not %d.", p.ConnectionRetryCountLimit)
	}
	def := NewMachinePolicy("")
	hc, cp := &p.MachineHealthCheckPolicy, &p.MachineCleanupPolicy
	for _, d := range []struct {
		field string
		value *string
		dflt  string        // used when empty; "" for a required field
		least time.Duration // the shortest allowed
	}{
		{"ConnectionConnectTimeout", &p.ConnectionConnectTimeout, "", 10 * time.Second},
		{"ConnectionRetrySleepInterval", &p.ConnectionRetrySleepInterval, "", time.Nanosecond},
		{"ConnectionRetryTimeLimit", &p.ConnectionRetryTimeLimit, "", 10 * time.Second},
		{"PollingRequestQueueTimeout", &p.PollingRequestQueueTimeout, "", time.Second},
		{"PollingRequestMaximumMessageProcessingTimeout", &p.PollingRequestMaximumMessageProcessingTimeout, def.PollingRequestMaximumMessageProcessingTimeout, 0},
		{"MachineHealthCheckPolicy.HealthCheckInterval", &hc.HealthCheckInterval, "", time.Minute},
		{"MachineCleanupPolicy.DeleteMachinesElapsedTimeSpan", &cp.DeleteMachinesElapsedTimeSpan, def.MachineCleanupPolicy.DeleteMachinesElapsedTimeSpan, 0},
	} {
		if *d.value == "" && d.dflt != "" {
			*d.value = d.dflt
		}
		if *d.value == "" {
			return Errorf(KindInvalid, "A machine policy needs a %s, a TimeSpan such as \"00:01:00\".", d.field)
		}
		v, err := ParseTimeSpan(*d.value)
		if err != nil {
			return Errorf(KindInvalid, "The machine policy's %s: %v.", d.field, err)
		}
		if v < d.least {
			return Errorf(KindInvalid, "The machine policy's %s must be at least %s, not %s.", d.field, FormatTimeSpan(d.least), *d.value)
		}
		*d.value = FormatTimeSpan(v)
	}
	if hc.HealthCheckCron != "" {
		return Errorf(KindInvalid, "cuttle schedules health checks by MachineHealthCheckPolicy.HealthCheckInterval only: leave HealthCheckCron empty.")
	}
	if hc.HealthCheckCronTimezone == "" {
		hc.HealthCheckCronTimezone = def.MachineHealthCheckPolicy.HealthCheckCronTimezone
	}
	if a := p.MachineUpdatePolicy.TentacleUpdateAccountId; a != nil && *a != "" {
		return Errorf(KindInvalid, "cuttle has no accounts: leave MachineUpdatePolicy.TentacleUpdateAccountId empty.")
	}
	p.MachineUpdatePolicy.TentacleUpdateAccountId = nil
	cache := &p.MachinePackageCacheRetentionPolicy
	for _, e := range []struct {
		field, value string
		allowed      []string
	}{
		{"MachineCleanupPolicy.DeleteMachinesBehavior", cp.DeleteMachinesBehavior, []string{"DoNotDelete", "DeleteUnavailableMachines"}},
		{"MachineConnectivityPolicy.MachineConnectivityBehavior", p.MachineConnectivityPolicy.MachineConnectivityBehavior, []string{"ExpectedToBeOnline", "MayBeOfflineAndCanBeSkipped"}},
		{"MachineHealthCheckPolicy.HealthCheckType", hc.HealthCheckType, []string{"RunScript", "OnlyConnectivity"}},
		{"MachineHealthCheckPolicy.PowerShellHealthCheckPolicy.RunType", hc.PowerShellHealthCheckPolicy.RunType, []string{"Inline", "InheritFromDefault", "OnlyConnectivity"}},
		{"MachineHealthCheckPolicy.BashHealthCheckPolicy.RunType", hc.BashHealthCheckPolicy.RunType, []string{"Inline", "InheritFromDefault", "OnlyConnectivity"}},
		{"MachineUpdatePolicy.CalamariUpdateBehavior", p.MachineUpdatePolicy.CalamariUpdateBehavior, []string{"UpdateOnDeployment", "UpdateOnNewMachine", "UpdateAlways"}},
		{"MachineUpdatePolicy.TentacleUpdateBehavior", p.MachineUpdatePolicy.TentacleUpdateBehavior, []string{"NeverUpdate", "Update"}},
		{"MachineUpdatePolicy.KubernetesAgentUpdateBehavior", p.MachineUpdatePolicy.KubernetesAgentUpdateBehavior, []string{"NeverUpdate", "Update"}},
		{"MachinePackageCacheRetentionPolicy.Strategy", cache.Strategy, []string{"Default", "Quantities"}},
	} {
		if !slices.Contains(e.allowed, e.value) {
			return Errorf(KindInvalid, "The machine policy's %s must be one of %s, not %q.", e.field, strings.Join(e.allowed, ", "), e.value)
		}
	}
	if cache.Strategy == "Quantities" {
		if cache.QuantityOfPackagesToKeep < 1 || cache.QuantityOfVersionsToKeep < 1 {
			return Errorf(KindInvalid, "A package cache retention of Quantities keeps at least 1 package and 1 version (QuantityOfPackagesToKeep, QuantityOfVersionsToKeep).")
		}
		for _, u := range []*string{&cache.PackageUnit, &cache.VersionUnit} {
			if *u == "" {
				*u = "Items"
			}
			if *u != "Items" {
				return Errorf(KindInvalid, "The package cache retention's PackageUnit and VersionUnit must be Items, not %q.", *u)
			}
		}
	} else {
		cache.QuantityOfPackagesToKeep, cache.QuantityOfVersionsToKeep, cache.PackageUnit, cache.VersionUnit = 0, 0, "", ""
	}
	return nil
}

var timeSpanRE = regexp.MustCompile(`^(?:(\d{1,6})\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$`)

// maxTimeSpanDays is the most days a time.Duration holds.
const maxTimeSpanDays = int64(1<<63-1) / int64(24*time.Hour)

// ParseTimeSpan parses a non-negative .NET TimeSpan in its constant form,
// [d.]hh:mm:ss[.fffffff], as Octopus writes durations: "00:01:00" is a
// minute, "1.00:00:00" a day, "00:00:00.5000000" half a second.
func ParseTimeSpan(s string) (time.Duration, error) {
	m := timeSpanRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a TimeSpan of the form [d.]hh:mm:ss[.fffffff]", s)
	}
	num := func(i int) int64 {
		n, _ := strconv.ParseInt(m[i], 10, 64)
		return n
	}
	days, hours, minutes, seconds := num(1), num(2), num(3), num(4)
	if hours > 23 || minutes > 59 || seconds > 59 {
		return 0, fmt.Errorf("%q is not a TimeSpan: hours are at most 23, minutes and seconds at most 59", s)
	}
	if days > maxTimeSpanDays-1 {
		return 0, fmt.Errorf("%q is not a TimeSpan of at most %d days", s, maxTimeSpanDays-1)
	}
	var ticks int64 // of 100 ns
	if m[5] != "" {
		ticks, _ = strconv.ParseInt(m[5]+strings.Repeat("0", 7-len(m[5])), 10, 64)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour + time.Duration(minutes)*time.Minute +
		time.Duration(seconds)*time.Second + time.Duration(ticks)*100, nil
}

// FormatTimeSpan writes a non-negative duration as a .NET TimeSpan in its
// constant form, as Octopus does: "01:00:00", "1.00:00:00",
// "00:00:00.5000000". Less than 100 ns is dropped.
func FormatTimeSpan(d time.Duration) string {
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := fmt.Sprintf("%02d:%02d:%02d", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
	if days > 0 {
		s = strconv.FormatInt(int64(days), 10) + "." + s
	}
	if ticks := d % time.Second / 100; ticks > 0 {
		s += fmt.Sprintf(".%07d", ticks)
	}
	return s
}
