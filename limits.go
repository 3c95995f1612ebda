package cuttle

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Limits bounds what clients, agents and scripts can make a node hold
// (DESIGN.md invariant 13). A field left zero takes its default, which real
// workloads never reach; every bound reached is a clear refusal or a marked
// truncation, logged once and rate-limited.
type Limits struct {
	// ConnsPerAddress bounds the connections one remote IP address holds
	// open on the API port; one more is closed as soon as it is accepted.
	// Behind a load balancer every client has the balancer's address.
	// Default 1000.
	ConnsPerAddress int
	// AgentConnsPerAddress is the same bound on the polling port, where a
	// TCP balancer in front of many polling agents shows them all from its
	// address. Default 5000.
	AgentConnsPerAddress int
	// BodyTimeout is how long a request body may send nothing before the
	// node gives up on it and closes the connection; while data arrives
	// the deadline moves, so an upload of any size goes through. Default
	// 30 s.
	BodyTimeout time.Duration
	// LogLineBytes bounds a line entering a task log: the rest is cut and
	// a mark says how much. Default 16 KiB.
	LogLineBytes int
	// CommandOutputBytes and CommandOutputLines bound the output one
	// command (on an agent) or script (on a node) stores; what comes after
	// is counted and said, not stored. Defaults 256 MiB and 1,000,000
	// lines.
	CommandOutputBytes int64
	CommandOutputLines int64
	// ArtifactBytes bounds one file an agent uploads (413 beyond). Default
	// 4 GiB.
	ArtifactBytes int64
	// ReportConcurrency bounds the agent reports one node decodes at once;
	// one agent holds at most a quarter of them (at least one), and a
	// report waits up to 5 s for a place before it is answered 429.
	// Default two per core (GOMAXPROCS): decoding is CPU work, and more at
	// once only makes every other answer of the node wait.
	ReportConcurrency int
	// DetailsBytes bounds the log text of one task details answer: the
	// newest lines that fit. Default 8 MiB.
	DetailsBytes int
	// CommandRetention is how long agent commands and their stored output
	// are kept after their task ended (the task's log keeps the output).
	// Default 7 days.
	CommandRetention time.Duration
	// PackageRetention is how long the built-in feed keeps a package
	// version that no kept release uses, counted from its upload. Default
	// 30 days, as Octopus's feed.
	PackageRetention time.Duration
	// AgentCacheRetention is how long an agent keeps a cached package file
	// it has not deployed from (PackageCacheCleanup). Default 30 days.
	AgentCacheRetention time.Duration
	// EventRetention is how long the audit log keeps an event. Default 90
	// days.
	EventRetention time.Duration
}

// Defaults of Limits.
const (
	DefaultConnsPerAddress      = 1000
	DefaultAgentConnsPerAddress = 5000
	DefaultBodyTimeout          = 30 * time.Second
	DefaultLogLineBytes         = 16 << 10
	DefaultCommandOutputBytes   = 256 << 20
	DefaultCommandOutputLines   = 1_000_000
	DefaultArtifactBytes        = 4 << 30
	DefaultDetailsBytes         = 8 << 20
	DefaultCommandRetention     = 7 * 24 * time.Hour
	DefaultPackageRetention     = 30 * 24 * time.Hour
	DefaultAgentCacheRetention  = 30 * 24 * time.Hour
	DefaultEventRetention       = 90 * 24 * time.Hour
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.ConnsPerAddress, DefaultConnsPerAddress)
	def(&l.AgentConnsPerAddress, DefaultAgentConnsPerAddress)
	def(&l.LogLineBytes, DefaultLogLineBytes)
	def(&l.ReportConcurrency, 2*runtime.GOMAXPROCS(0))
	def(&l.DetailsBytes, DefaultDetailsBytes)
	def64(&l.CommandOutputBytes, DefaultCommandOutputBytes)
	def64(&l.CommandOutputLines, DefaultCommandOutputLines)
	def64(&l.ArtifactBytes, DefaultArtifactBytes)
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.CommandRetention, DefaultCommandRetention}, {&l.PackageRetention, DefaultPackageRetention}, {&l.AgentCacheRetention, DefaultAgentCacheRetention}, {&l.EventRetention, DefaultEventRetention}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	return l
}

// Check returns KindInvalid naming the first field out of range: a negative
// value, a log line bound under 1 KiB (the truncation mark needs room), or a
// body timeout under a second.
func (l Limits) Check() error {
	l = l.WithDefaults()
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"ConnsPerAddress", int64(l.ConnsPerAddress)}, {"AgentConnsPerAddress", int64(l.AgentConnsPerAddress)},
		{"CommandOutputBytes", l.CommandOutputBytes}, {"CommandOutputLines", l.CommandOutputLines},
		{"ArtifactBytes", l.ArtifactBytes}, {"ReportConcurrency", int64(l.ReportConcurrency)},
		{"DetailsBytes", int64(l.DetailsBytes)}, {"CommandRetention", int64(l.CommandRetention)},
		{"PackageRetention", int64(l.PackageRetention)}, {"AgentCacheRetention", int64(l.AgentCacheRetention)},
		{"EventRetention", int64(l.EventRetention)},
	} {
		if f.v < 0 {
			return Errorf(KindInvalid, "The limit %s must not be negative.", f.name)
		}
	}
	if l.LogLineBytes < 1<<10 {
		return Errorf(KindInvalid, "The limit LogLineBytes must be at least 1 KiB.")
	}
	if l.BodyTimeout < time.Second {
		return Errorf(KindInvalid, "The limit BodyTimeout must be at least a second.")
	}
	return nil
}

// ParseSize reads a size in bytes: a whole number, optionally followed by
// B, KiB, MiB, GiB or TiB (KB, MB, GB and TB are taken as the same powers
// of 1024, as operators mean them). It fails on anything else and on
// negative sizes.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: a whole number of bytes, or one followed by KiB, MiB, GiB or TiB", s)
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
		"g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}
	sh, ok := shift[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("%q is not a size: the unit %q is not one of B, KiB, MiB, GiB, TiB", s, unit)
	}
	if n > (1<<63-1)>>sh {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return n << sh, nil
}

// FormatSize writes a size the way ParseSize reads it, in the largest unit
// that divides it.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.name)
		}
	}
	return strconv.FormatInt(n, 10)
}
