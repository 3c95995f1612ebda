package cuttle

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxNameLength is the most characters a name may have: of a document
// (collection.DefaultMaxLength), a machine or a role. Octopus's limit.
const MaxNameLength = 200

// Id prefixes of environments, machines and agent commands.
const (
	EnvironmentIDPrefix = "Environments-"
	MachineIDPrefix     = "Machines-"
)

// Environment is a stage that deployment targets belong to, such as
// Production: a document of the environments collection. Machines name
// environments by their number (Machine.EnvironmentIDs); ParseID gives it.
type Environment struct {
	Resource
	Name                       string // unique in its space, ignoring case
	Description                string
	SortOrder                  int // environments are listed by it, then by name
	UseGuidedFailure           bool
	AllowDynamicInfrastructure bool
	// EnvironmentTags and ExtensionSettings exist for clients that send
	// them back; cuttle keeps no tags or extensions, so both are empty.
	EnvironmentTags   []string
	ExtensionSettings []json.RawMessage
}

// MarshalJSON writes the environment with its Slug, which is always the
// slug of its name (cuttle keeps no other).
func (e Environment) MarshalJSON() ([]byte, error) {
	type plain Environment
	return json.Marshal(struct {
		plain
		Slug string
	}{plain(e), Slug(e.Name)})
}

// CommunicationStyle says which side of an agent's connection dials.
type CommunicationStyle string

const (
	// Listening agents accept connections from nodes (Octopus:
	// TentaclePassive). Default port 10933.
	Listening CommunicationStyle = "TentaclePassive"
	// Polling agents connect to nodes (Octopus: TentacleActive). Default
	// port 10943 on the nodes.
	Polling CommunicationStyle = "TentacleActive"
)

// Default ports of agent traffic.
const (
	DefaultPollingPort   = 10943 // on nodes, for polling agents
	DefaultListeningPort = 10933 // on listening agents
)

// HealthStatus is what the last health check found of a machine.
type HealthStatus string

const (
	Healthy     HealthStatus = "Healthy"
	HasWarnings HealthStatus = "HasWarnings"
	Unhealthy   HealthStatus = "Unhealthy"
	Unavailable HealthStatus = "Unavailable"
	Unknown     HealthStatus = "Unknown" // never checked
)

// Machine is a deployment target: an agent registered with the cluster.
type Machine struct {
	ID             int64
	SpaceID        string
	Name           string // unique in its space
	Roles          []string
	EnvironmentIDs []int64
	Style          CommunicationStyle
	// URI is where a listening agent is reached (https://host:port/), or a
	// polling agent's subscription id (poll://<20 characters>/).
	URI string
	// Thumbprint is the agent's certificate's thumbprint (see package certs).
	Thumbprint string
	IsDisabled bool

	HealthStatus  HealthStatus
	StatusSummary string
	// HealthCheckedAt is when the last health check ended; zero if never.
	HealthCheckedAt time.Time
	AgentVersion    string // as the last health check found
	OS              string
}

// MachineQuery selects machines; zero fields select all. Machines are
// ordered by name.
type MachineQuery struct {
	IDs            []int64
	Name           string // exact, case-insensitive
	PartialName    string // case-insensitive substring
	Roles          []string
	EnvironmentIDs []int64
	Thumbprint     string
	Styles         []CommunicationStyle
	HealthStatuses []HealthStatus
	IsDisabled     *bool
	SubscriptionID string // a polling machine's URI
}

// MachineHealth is what a health check records of one machine.
type MachineHealth struct {
	// TaskID is the health task that found it. The store keeps a result
	// only if it holds none of a later task (a higher id), so that a late
	// write of an older check never overwrites a newer one.
	TaskID        int64
	Status        HealthStatus
	StatusSummary string
	AgentVersion  string
	OS            string
}

// CommandKind is what an agent command does.
type CommandKind string

const (
	// CommandScript runs a script on the agent.
	CommandScript CommandKind = "Script"
	// CommandHealth reports the agent's version, OS, free disk and time.
	CommandHealth CommandKind = "Health"
	// CommandReceiveFile sends a file of shared storage to the agent.
	CommandReceiveFile CommandKind = "ReceiveFile"
	// CommandDeployPackage deploys a package of the built-in
	// repository (agentapi.DeployPackage).
	CommandDeployPackage CommandKind = "DeployPackage"
	// CommandSendFile fetches a file from the agent into shared storage.
	CommandSendFile CommandKind = "SendFile"
	// CommandPrunePackages applies the agent's retention policy to its
	// package cache and extracted packages (agentapi.PrunePackages).
	CommandPrunePackages CommandKind = "PrunePackages"
)

// CommandState is where an agent command is in its life (see package comms).
type CommandState string

const (
	CommandPending    CommandState = "Pending"    // queued for its machine
	CommandDispatched CommandState = "Dispatched" // handed to the agent, not yet confirmed
	CommandRunning    CommandState = "Running"    // the agent confirmed it runs it
	CommandSuccess    CommandState = "Success"
	CommandFailed     CommandState = "Failed"
	CommandCanceled   CommandState = "Canceled"
)

// Final reports whether a command in this state has ended.
func (s CommandState) Final() bool {
	return s == CommandSuccess || s == CommandFailed || s == CommandCanceled
}

// Command is one unit of work for one agent, queued in the database so that
// any node can hand it to the agent and record what comes back.
type Command struct {
	ID int64
	// UID is the command's id as the agent knows it: random, so that an
	// agent never mistakes a command of another cluster for one it ran.
	UID       string
	MachineID int64
	TaskID    int64
	// Key names the command within its task (for example "script"), so that
	// a task resumed on another node finds the commands it queued before.
	Key     string
	Kind    CommandKind
	Payload json.RawMessage // the kind's arguments (package agentapi)
	State   CommandState

	CreatedAt    time.Time
	DispatchedAt time.Time // zero until dispatched
	FinishedAt   time.Time // zero until final
	// DispatchedBy is the name of the node that last handed it out.
	DispatchedBy string
	// OutputSeq is the sequence number of the last output line received:
	// stored, or dropped over the command's output bound.
	OutputSeq int64
	// Output counts the output stored, and what came over the command's
	// bound and was not.
	Output OutputCount
	// CancelRequested is set when the task wants the command stopped.
	CancelRequested bool

	ExitCode int             // of a script
	Result   json.RawMessage // the kind's result (package agentapi); nil until final
	Error    string          // why a command failed, as the agent or node says
}

// SealedPayload is a command payload that holds secrets (a deployment's
// script with its sensitive values): sealed with the master key for
// SealedPayloadPurpose, base64. The node that hands the command out opens
// it for the agent, over mutual TLS; the database never holds it in clear.
type SealedPayload struct {
	Sealed string
}

// SealedPayloadPurpose names the master key's use for sealed payloads.
const SealedPayloadPurpose = "command payload"

// NewCommand is a command to queue.
type NewCommand struct {
	MachineID int64
	TaskID    int64
	Key       string
	Kind      CommandKind
	Payload   json.RawMessage
}

// CommandLine is one line of a command's output.
type CommandLine struct {
	Seq  int64 // from 1, in the order the agent saw the lines
	Time time.Time
	// Stream is "stdout" or "stderr" for a script, "info" for the agent's
	// own messages.
	Stream string
	Text   string
}

// OutputStreams are the streams of a command's output: a script's
// standard output and error, and the agent's own messages.
var OutputStreams = []string{"stdout", "stderr", "info"}

// CommandReport is what an agent (or a node, for a listening agent) reports
// of a command: output lines that follow the ones already stored, and,
// once it has ended, its final state and result.
type CommandReport struct {
	UID   string
	Lines []CommandLine // consecutive, starting at any seq up to one past the last stored
	// State is Running, or a final state with ExitCode, Result and Error.
	State    CommandState
	ExitCode int
	Result   json.RawMessage
	Error    string
	// Bound is the most output the command may store; lines over it are
	// counted, not stored. The zero value stores everything.
	Bound OutputBound
}

// OutputBound bounds the output one command stores, in lines and in bytes
// of text (zero: no bound), and in time: lines that come more than Grace
// after the command's outcome was stored are refused (zero: OutputGrace).
type OutputBound struct {
	Lines, Bytes int64
	Grace        time.Duration
}

// GraceOrDefault returns b.Grace, or OutputGrace if it is zero.
func (b OutputBound) GraceOrDefault() time.Duration {
	if b.Grace <= 0 {
		return OutputGrace
	}
	return b.Grace
}

// OutputCount counts output: the lines and bytes of text stored, and those
// dropped over a bound.
type OutputCount struct {
	Lines, Bytes               int64
	DroppedLines, DroppedBytes int64
}

// Admit counts a line of n bytes and reports whether it is to be stored:
// it is while b admits it and no line before it was dropped, so that what
// is stored is always the start of the output.
func (c *OutputCount) Admit(b OutputBound, n int) bool {
	if c.DroppedLines == 0 && (b.Lines <= 0 || c.Lines+1 <= b.Lines) && (b.Bytes <= 0 || c.Bytes+int64(n) <= b.Bytes) {
		c.Lines++
		c.Bytes += int64(n)
		return true
	}
	c.DroppedLines++
	c.DroppedBytes += int64(n)
	return false
}

// Note says what output was over its bound and not kept, for a task's
// log: "" when nothing was dropped.
func (c OutputCount) Note(b OutputBound) string {
	if c.DroppedLines == 0 {
		return ""
	}
	return fmt.Sprintf("%d more lines of output (%d bytes) were over the limit of %d lines or %s, and were not kept.",
		c.DroppedLines, c.DroppedBytes, b.Lines, FormatSize(b.Bytes))
}

// ReportPlan is what a store does with a report: the lines it stores, what
// it adds to the command's counts, and the output position after it.
type ReportPlan struct {
	Store     []CommandLine
	OutputSeq int64
	Added     OutputCount
}

// Plan decides what a store keeps of r for the command c as stored. Lines
// already received are passed over; new ones are stored as c.Output admits
// them under r.Bound, the others only counted. closed says that c's outcome
// was stored more than r.Bound's grace ago, by the database's clock.
// KindConflict if the lines start after the line that follows c.OutputSeq
// (the agent resends from there); KindInvalid for new lines on closed
// output.
func (r CommandReport) Plan(c Command, closed bool) (ReportPlan, error) {
	lines := r.Lines
	if len(lines) > 0 && lines[0].Seq > c.OutputSeq+1 {
		return ReportPlan{}, Errorf(KindConflict, "The report's lines start at %d, but the cluster has stored only %d; send again from %d.",
			lines[0].Seq, c.OutputSeq, c.OutputSeq+1)
	}
	for len(lines) > 0 && lines[0].Seq <= c.OutputSeq {
		lines = lines[1:]
	}
	p := ReportPlan{OutputSeq: c.OutputSeq}
	if len(lines) == 0 {
		return p, nil
	}
	if closed {
		return ReportPlan{}, Errorf(KindInvalid, "The command %s ended at %s; its output is closed and line %d is not taken.",
			c.UID, c.FinishedAt.UTC().Format(time.RFC3339), lines[0].Seq)
	}
	count := c.Output
	for i, l := range lines {
		if count.Admit(r.Bound, len(l.Text)) {
			p.Store = lines[:i+1]
		}
	}
	p.Added = OutputCount{Lines: count.Lines - c.Output.Lines, Bytes: count.Bytes - c.Output.Bytes,
		DroppedLines: count.DroppedLines - c.Output.DroppedLines, DroppedBytes: count.DroppedBytes - c.Output.DroppedBytes}
	p.OutputSeq = lines[len(lines)-1].Seq
	return p, nil
}

// OutputGrace is how long after a command's outcome is stored new output
// lines are still taken; later ones are refused. An agent sends the outcome
// with its last lines, so only a resend of stored lines comes later.
const OutputGrace = 10 * time.Second

// ClusterCertificate is the certificate every node of a cluster presents
// to agents. Its private key is kept sealed with the master key.
type ClusterCertificate struct {
	CertPEM    []byte
	SealedKey  []byte
	Thumbprint string
}

// Matches reports whether m is one of the machines q selects. Every list
// filter matches any of its values; an empty filter matches all.
func (q MachineQuery) Matches(m Machine) bool {
	switch {
	case len(q.IDs) > 0 && !slices.Contains(q.IDs, m.ID),
		q.Name != "" && !strings.EqualFold(q.Name, m.Name),
		q.PartialName != "" && !strings.Contains(strings.ToLower(m.Name), strings.ToLower(q.PartialName)),
		len(q.Roles) > 0 && !slices.ContainsFunc(q.Roles, func(r string) bool {
			return slices.ContainsFunc(m.Roles, func(mr string) bool { return strings.EqualFold(r, mr) })
		}),
		len(q.EnvironmentIDs) > 0 && !slices.ContainsFunc(q.EnvironmentIDs, func(id int64) bool { return slices.Contains(m.EnvironmentIDs, id) }),
		q.Thumbprint != "" && !strings.EqualFold(q.Thumbprint, m.Thumbprint),
		len(q.Styles) > 0 && !slices.Contains(q.Styles, m.Style),
		len(q.HealthStatuses) > 0 && !slices.Contains(q.HealthStatuses, m.HealthStatus),
		q.IsDisabled != nil && *q.IsDisabled != m.IsDisabled,
		q.SubscriptionID != "" && (m.Style != Polling || m.URI != q.SubscriptionID):
		return false
	}
	return true
}

// Check validates an environment about to be stored and completes it: a
// trimmed name, no NUL in its texts, a 32-bit sort order, no extension
// settings; empty tags. old is the stored environment for a change, nil
// for a create. Errors are KindInvalid.
func (e *Environment) Check(old *Environment) error {
	if err := CheckName(&e.Name, "environment"); err != nil {
		return err
	}
	switch {
	case strings.ContainsRune(e.Name+e.Description, 0):
		return Errorf(KindInvalid, "An environment's Name and Description cannot hold a NUL character.")
	case e.SortOrder < math.MinInt32 || e.SortOrder > math.MaxInt32:
		return Errorf(KindInvalid, "An environment's SortOrder must be between %d and %d.", math.MinInt32, math.MaxInt32)
	case len(e.ExtensionSettings) > 0:
		return Errorf(KindInvalid, "cuttle has no environment extensions; leave ExtensionSettings empty.")
	case len(e.EnvironmentTags) > 0:
		return Errorf(KindInvalid, "cuttle has no environment tags yet; leave EnvironmentTags empty.")
	}
	e.EnvironmentTags, e.ExtensionSettings = []string{}, []json.RawMessage{}
	return nil
}

// Validate returns a KindInvalid error unless the machine has a name, a
// known communication style, a URI and a thumbprint, and no NUL in them or
// its roles.
func (m Machine) Validate() error {
	switch {
	case strings.TrimSpace(m.Name) == "":
		return Errorf(KindInvalid, "A machine needs a name.")
	case m.Style != Listening && m.Style != Polling:
		return Errorf(KindInvalid, "A machine's CommunicationStyle must be %s (a listening agent) or %s (a polling agent), not %q.", Listening, Polling, m.Style)
	case m.URI == "":
		return Errorf(KindInvalid, "A machine needs a Uri: https://host:port/ for a listening agent, poll://<subscription id>/ for a polling one.")
	case m.Thumbprint == "":
		return Errorf(KindInvalid, "A machine needs the Thumbprint of its agent's certificate.")
	case strings.ContainsRune(m.Name+m.URI+m.Thumbprint+strings.Join(m.Roles, ""), 0):
		return Errorf(KindInvalid, "A machine's Name, Roles, Uri and Thumbprint cannot hold a NUL character.")
	case utf8.RuneCountInString(m.Name) > MaxNameLength:
		return Errorf(KindInvalid, "A machine's Name must be at most %d characters; it has %d.", MaxNameLength, utf8.RuneCountInString(m.Name))
	case len(m.URI) > 2048 || len(m.Thumbprint) > 128:
		return Errorf(KindInvalid, "A machine's Uri must be at most 2048 bytes and its Thumbprint at most 128.")
	case len(m.Roles) > 100:
		return Errorf(KindInvalid, "A machine has at most 100 roles; this one has %d.", len(m.Roles))
	}
	for _, r := range m.Roles {
		if utf8.RuneCountInString(r) > MaxNameLength {
			return Errorf(KindInvalid, "A machine's role must be at most %d characters; %.40q... has %d.", MaxNameLength, r, utf8.RuneCountInString(r))
		}
	}
	return nil
}

// Validate returns a KindInvalid error unless the command names its
// machine, task, key and kind and its payload is JSON.
func (c NewCommand) Validate() error {
	if c.MachineID <= 0 || c.TaskID <= 0 || c.Key == "" || c.Kind == "" {
		return Errorf(KindInvalid, "A command needs a machine, a task, a key and a kind.")
	}
	if len(c.Payload) > 0 && !json.Valid(c.Payload) {
		return Errorf(KindInvalid, "A command's payload must be JSON.")
	}
	return nil
}

// Validate returns a KindInvalid error unless the report's state is
// Running or final and its lines are numbered consecutively from at least 1.
func (r CommandReport) Validate() error {
	if r.State != CommandRunning && !r.State.Final() {
		return Errorf(KindInvalid, "A report's State must be Running, Success, Failed or Canceled, not %q.", r.State)
	}
	if len(r.Result) > 0 && !json.Valid(r.Result) {
		return Errorf(KindInvalid, "A report's Result must be JSON.")
	}
	for i, l := range r.Lines {
		if l.Seq < 1 || (i > 0 && l.Seq != r.Lines[i-1].Seq+1) {
			return Errorf(KindInvalid, "A report's lines must be numbered consecutively from 1 or more; line %d has Seq %d.", i, l.Seq)
		}
		if !slices.Contains(OutputStreams, l.Stream) {
			return Errorf(KindInvalid, "A report's line %d has the stream %.40q; streams are stdout, stderr and info.", l.Seq, l.Stream)
		}
	}
	return nil
}
