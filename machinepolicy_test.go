package cuttle_test

import (
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
)

// TestTimeSpan: Octopus's duration strings, both ways.
func TestTimeSpan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		d    time.Duration
		back string
	}{
		{"00:01:00", time.Minute, "00:01:00"},
		{"01:00:00", time.Hour, "01:00:00"},
		{"00:00:01", time.Second, "00:00:01"},
		{"00:00:00", 0, "00:00:00"},
		{"1:02:03", time.Hour + 2*time.Minute + 3*time.Second, "01:02:03"},
		{"1.00:00:00", 24 * time.Hour, "1.00:00:00"},
		{"01.00:00:00", 24 * time.Hour, "1.00:00:00"}, // as the Go client writes a day
		{"12.23:59:59", 12*24*time.Hour + 23*time.Hour + 59*time.Minute + 59*time.Second, "12.23:59:59"},
		{"00:00:00.5", 500 * time.Millisecond, "00:00:00.5000000"},
		{"00:00:00.5000000", 500 * time.Millisecond, "00:00:00.5000000"},
		{"00:00:01.0000001", time.Second + 100, "00:00:01.0000001"},
	} {
		d, err := cuttle.ParseTimeSpan(tc.in)
		if err != nil || d != tc.d {
			t.Errorf("ParseTimeSpan(%q) = %v, %v; want %v", tc.in, d, err, tc.d)
		}
		if got := cuttle.FormatTimeSpan(tc.d); got != tc.back {
			t.Errorf("FormatTimeSpan(%v) = %q, want %q", tc.d, got, tc.back)
		}
	}
	for _, bad := range []string{"", "1m", "60", "00:60:00", "24:00:00", "00:00:60", "-00:01:00", "00:01", "00:01:00.12345678",
		"999999.00:00:00", " 00:01:00", "00:01:00 ", "1.2.00:00:00", "a0:01:00"} {
		if d, err := cuttle.ParseTimeSpan(bad); err == nil {
			t.Errorf("ParseTimeSpan(%q) = %v, want an error", bad, d)
		}
	}
}

// TestMachinePolicyCheck: Octopus's defaults pass; canonical durations,
// defaults of the optional fields; refusals.
func TestMachinePolicyCheck(t *testing.T) {
	p := cuttle.NewMachinePolicy("Default Machine Policy")
	if err := p.Check(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	p.ConnectionRetryTimeLimit = "00:05:00.0"
	p.PollingRequestMaximumMessageProcessingTimeout = ""
	p.MachineHealthCheckPolicy.HealthCheckInterval = "01.00:00:00"
	p.MachineHealthCheckPolicy.HealthCheckCronTimezone = ""
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if p.ConnectionRetryTimeLimit != "00:05:00" || p.PollingRequestMaximumMessageProcessingTimeout != "00:10:00" ||
		p.MachineHealthCheckPolicy.HealthCheckInterval != "1.00:00:00" || p.MachineHealthCheckPolicy.HealthCheckCronTimezone != "UTC" {
		t.Errorf("checked policy %+v", p)
	}
	account := "Accounts-1"
	for what, change := range map[string]func(p *cuttle.MachinePolicy){
		"no name":            func(p *cuttle.MachinePolicy) { p.Name = "" },
		"retry count":        func(p *cuttle.MachinePolicy) { p.ConnectionRetryCountLimit = 1 },
		"no connect timeout": func(p *cuttle.MachinePolicy) { p.ConnectionConnectTimeout = "" },
		"short timeout":      func(p *cuttle.MachinePolicy) { p.ConnectionConnectTimeout = "00:00:09" },
		"not a timespan":     func(p *cuttle.MachinePolicy) { p.ConnectionRetryTimeLimit = "5m" },
		"no sleep":           func(p *cuttle.MachinePolicy) { p.ConnectionRetrySleepInterval = "00:00:00" },
		"no queue timeout":   func(p *cuttle.MachinePolicy) { p.PollingRequestQueueTimeout = "" },
		"no interval":        func(p *cuttle.MachinePolicy) { p.MachineHealthCheckPolicy.HealthCheckInterval = "" },
		"cron":               func(p *cuttle.MachinePolicy) { p.MachineHealthCheckPolicy.HealthCheckCron = "0 0 * * *" },
		"cleanup":            func(p *cuttle.MachinePolicy) { p.MachineCleanupPolicy.DeleteMachinesBehavior = "Sometimes" },
		"connectivity":       func(p *cuttle.MachinePolicy) { p.MachineConnectivityPolicy.MachineConnectivityBehavior = "" },
		"health type":        func(p *cuttle.MachinePolicy) { p.MachineHealthCheckPolicy.HealthCheckType = "runscript" },
		"bash run type":      func(p *cuttle.MachinePolicy) { p.MachineHealthCheckPolicy.BashHealthCheckPolicy.RunType = "" },
		"calamari":           func(p *cuttle.MachinePolicy) { p.MachineUpdatePolicy.CalamariUpdateBehavior = "Never" },
		"tentacle":           func(p *cuttle.MachinePolicy) { p.MachineUpdatePolicy.TentacleUpdateBehavior = "" },
		"kubernetes":         func(p *cuttle.MachinePolicy) { p.MachineUpdatePolicy.KubernetesAgentUpdateBehavior = "" },
		"account":            func(p *cuttle.MachinePolicy) { p.MachineUpdatePolicy.TentacleUpdateAccountId = &account },
		"cache strategy":     func(p *cuttle.MachinePolicy) { p.MachinePackageCacheRetentionPolicy.Strategy = "" },
		"cache quantities":   func(p *cuttle.MachinePolicy) { p.MachinePackageCacheRetentionPolicy.Strategy = "Quantities" },
		"cache unit": func(p *cuttle.MachinePolicy) {
			p.MachinePackageCacheRetentionPolicy = cuttle.MachinePackageCacheRetentionPolicy{Strategy: "Quantities", QuantityOfPackagesToKeep: 1, QuantityOfVersionsToKeep: 1, VersionUnit: "Days"}
		},
	} {
		bad := cuttle.NewMachinePolicy("x")
		change(&bad)
		if err := bad.Check(); !cuttle.IsKind(err, cuttle.KindInvalid) {
			t.Errorf("%s: Check = %v, want KindInvalid", what, err)
		}
	}
}
