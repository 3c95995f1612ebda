// Package agentapi is the protocol between cuttle nodes and agents: its
// routes and the JSON bodies they carry. It holds no logic, so that the
// server side (package comms) and the agent (package agent) share one
// definition.
//
// # Transport
//
// Every connection is TLS 1.3 with a certificate on both sides, each side
// pinning the other's thumbprint (package certs): the node presents the
// cluster's certificate, the agent its own. A handshake with an unknown
// certificate fails before any request is read.
//
// The agent is always the HTTP/1.1 client and the node always the server,
// whichever side dials:
//
//   - A polling agent dials a node (or a TCP load balancer in front of
//     nodes), by default on port 10943, and sends requests over that
//     connection.
//   - A node that needs a listening agent dials it, by default on port
//     10933, and runs a yamux session (github.com/hashicorp/yamux) over the
//     TLS connection in which the agent opens the streams: each stream is
//     one HTTP/1.1 connection from the agent to the node, so the agent
//     speaks exactly as it does when polling.
//
// # Commands
//
// Work for an agent is a command with a random UID, queued in the cluster's
// database for its machine. A poll (POST PathPoll) waits until commands are
// pending for the machine, up to PollWait, and hands them out; any node can
// answer any agent's poll. The agent journals every UID it accepts before
// it starts the work and never runs a UID twice: a command handed out again
// (after a lost answer) makes it report what it has instead. It reports
// output and the outcome with POST PathReport to any node it can reach,
// resending from the first line not yet acknowledged, and keeps a result
// until a node has acknowledged storing it.
package agentapi

import (
	"encoding/json"
	"strings"
	"time"
)

// Routes of the node's agent endpoint. {uid} is a command's UID.
const (
	// PathPoll takes a PollRequest and answers a PollResponse, possibly
	// empty after PollWait.
	PathPoll = "/agent/v1/poll"
	// PathReport takes a Report for the command and answers a ReportAck.
	PathReport = "/agent/v1/commands/{uid}/report"
	// PathFile serves the file of a ReceiveFile or DeployPackage command
	// (GET, with Range requests for resuming) and takes uploads into the
	// task's artifacts (PUT, with HeaderSHA256, answering a FileResult):
	// the file of a SendFile command, and the artifacts that the scripts
	// of a Script or DeployPackage command declare, each named by the
	// query (?name=<file name>). Uploads come before the command's
	// outcome: a command in a final state takes none. An artifact of a
	// name the task holds already for the machine replaces it. Any 4xx
	// but 429 is final: the transfer fails.
	PathFile = "/agent/v1/commands/{uid}/file"
)

// HeaderSHA256 carries the lower-case hex SHA-256 of an uploaded file.
const HeaderSHA256 = "X-Cuttle-Sha256"

// CommandPath returns path with {uid} replaced by uid.
func CommandPath(path, uid string) string { return strings.Replace(path, "{uid}", uid, 1) }

// PollWait is how long a node holds a poll that finds no work before it
// answers with none. Agents time their requests out some seconds later.
const PollWait = 30 * time.Second

// MaxPollCommands bounds the commands one poll hands out.
const MaxPollCommands = 20

// PollRequest asks for work. A polling agent names its subscription id,
// which must belong to a machine with the agent's thumbprint; a listening
// agent leaves it empty and is known by its thumbprint alone.
type PollRequest struct {
	SubscriptionId string
	AgentVersion   string
}

// PollResponse hands out commands, and names running commands of this agent
// that the cluster wants cancelled.
type PollResponse struct {
	Commands []Command
	Cancel   []string // UIDs
}

// Command is one unit of work. Payload is the JSON of the kind's type:
// Script, Health, ReceiveFile, DeployPackage, PrunePackages or SendFile.
type Command struct {
	UID     string
	Kind    string // "Script", "Health", "ReceiveFile", "DeployPackage", "PrunePackages", "SendFile"
	Payload json.RawMessage
}

// Script runs a script with the shell its syntax names: Bash (bash), Sh
// (sh) or PowerShell (pwsh, where installed). The agent writes Body to a
// file and runs it in its own process group, streaming standard output and
// standard error as lines; the exit code decides Success or Failed. The
// files the script declares artifacts (a createArtifact service message
// on standard output, as new_octopusartifact prints it) are uploaded
// (PUT PathFile?name=) once it has ended, before its outcome; an artifact
// that cannot be uploaded is a warning, never the command's failure.
type Script struct {
	Body   string
	Syntax string
	// Env adds environment variables to the agent's own, which scripts
	// see less the agent's settings (CUTTLE_*).
	Env map[string]string `json:",omitempty"`
	// WorkDir is the working folder, relative to the agent's work folder
	// (created if missing); empty means the work folder itself. A path that
	// leaves the work folder is refused.
	WorkDir string `json:",omitempty"`
	// TimeoutSeconds stops the script (its whole process group) after that
	// long and fails the command; 0 means no limit.
	TimeoutSeconds int `json:",omitempty"`
}

// Health asks for a HealthResult.
type Health struct{}

// HealthResult is what an agent reports of itself.
type HealthResult struct {
	Version        string
	OS             string
	FreeDiskBytes  uint64 // of the file system of the work folder
	TotalDiskBytes uint64
	Time           time.Time // the agent's clock
}

// ReceiveFile makes the agent fetch a file (GET PathFile) into Path,
// relative to its work folder. The agent streams it to a partial file,
// resumes an interrupted transfer from the bytes it has (a Range request),
// checks Size and SHA256, then moves it into place. A path that leaves the
// work folder is refused.
type ReceiveFile struct {
	Path   string
	Size   int64
	SHA256 string // lower-case hex
	// Source is the file's key in the cluster's shared storage, which the
	// node serves it from; agents need not read it.
	Source string `json:",omitempty"`
}

// ReceiveFileResult reports a received file.
type ReceiveFileResult struct {
	Size   int64
	SHA256 string
	// Resumes counts the transfers that continued from a partial file.
	Resumes int
}

// DeployPackage deploys a package of the built-in repository on the
// target: the agent takes the file from its cache of packages by SHA-256
// (its home's packages folder), or else fetches it as ReceiveFile does
// (GET PathFile, resumed with Range, checked by Size and SHA256) into the
// cache; extracts it into a new folder; substitutes variables in the files
// named; runs the scripts the package holds (PreDeploy, Deploy,
// PostDeploy, with the extension of Syntax) in that folder, each after
// Preamble, uploading the artifacts they declare as a Script does; and
// reports a DeployPackageResult. Its payload is sealed: it holds the
// deployment's variables.
type DeployPackage struct {
	PackageID string
	Version   string
	// Extension is the file's, such as ".zip" or ".tar.gz"; it says how
	// the file is extracted.
	Extension string
	Size      int64
	SHA256    string // lower-case hex
	// Source is the file's key in shared storage; agents need not read it.
	Source string `json:",omitempty"`
	// Folder is where the package is extracted, relative to the agent's
	// work folder, such as Applications/Production/Acme.Web/1.0.0; when
	// it exists, _1, _2, ... is added until it does not. CustomFolder, if
	// set, is an absolute folder used instead, emptied first when
	// PurgeCustomFolder is set.
	Folder            string
	CustomFolder      string `json:",omitempty"`
	PurgeCustomFolder bool   `json:",omitempty"`
	// Variables are the deployment's variables for this action and target,
	// by name, evaluated; Names is their order in the preamble.
	Variables map[string]string
	Names     []string
	// Substitute are glob patterns (relative to the folder, ** for any
	// depth) of files whose #{...} templates are replaced; JSONFiles of
	// JSON files whose properties named by variables get their values.
	Substitute []string `json:",omitempty"`
	JSONFiles  []string `json:",omitempty"`
	// Syntax is the shell of the package's scripts: Bash (.sh, the
	// default) or PowerShell (.ps1).
	Syntax string `json:",omitempty"`
	// Each script runs after variables.Preamble of Syntax over Variables
	// and Names, to which the agent adds
	// Octopus.Action.Package.InstallationDirectoryPath (the folder).
	// TimeoutSeconds bounds each script; 0 means no limit.
	TimeoutSeconds int `json:",omitempty"`
	// ExtractOnly leaves the package's scripts alone: a package a script
	// step references is extracted for the script to use.
	ExtractOnly bool `json:",omitempty"`
}

// DeployPackageResult reports a deployed package.
type DeployPackageResult struct {
	// InstallationDirectory is the folder the package was extracted to.
	InstallationDirectory string
	// FromCache says the file was in the agent's cache: nothing was sent.
	FromCache bool
	Files     int // extracted
	Resumes   int // transfers that continued from a partial file
	// Scripts are the package's scripts that ran, in order.
	Scripts []string
}

// PrunePackages applies the agent's retention policy: it deletes the
// cached package files not used (deployed from) for MaxAgeDays, and in
// each package's folder of Applications keeps the KeepFolders newest
// extracted folders; 0 keeps that kind of thing.
type PrunePackages struct {
	MaxAgeDays  int
	KeepFolders int
}

// PrunePackagesResult lists what PrunePackages deleted: cached files by
// name, folders relative to the work folder.
type PrunePackagesResult struct {
	Files   []string
	Folders []string
	Bytes   int64 // freed by the files
}

// SendFile makes the agent upload the file at Path, relative to its work
// folder (PUT PathFile), into the cluster's artifacts. A path that leaves
// the work folder is refused.
type SendFile struct {
	Path string
}

// FileResult is what a node answers to a SendFile upload, and the result of
// the command.
type FileResult struct {
	Size   int64
	SHA256 string
}

// Bounds of one report. A node refuses a report beyond them (413 for the
// body, 400 for the rest), and decodes none before it knows the command is
// the agent's; an agent batches its output within them.
const (
	// MaxReportBody bounds the bytes of a report's JSON body.
	MaxReportBody = 1 << 20
	// MaxReportLines bounds the lines of one report.
	MaxReportLines = 1000
	// MaxLineBytes bounds the text of one line; an agent splits longer
	// ones.
	MaxLineBytes = 64 << 10
	// MaxErrorBytes bounds a report's Error.
	MaxErrorBytes = 64 << 10
)

// Report carries a command's output lines, in order, from the first the
// agent has not seen acknowledged; and once the command has ended, its
// outcome (State Success, Failed or Canceled). State Running reports
// progress only.
type Report struct {
	Lines    []Line `json:",omitempty"`
	State    string
	ExitCode int             `json:",omitempty"`
	Result   json.RawMessage `json:",omitempty"`
	Error    string          `json:",omitempty"`
}

// Line is one line of output. Seq counts a command's lines from 1.
type Line struct {
	Seq    int64
	Time   time.Time
	Stream string // "stdout", "stderr", or "info" for the agent's own messages
	Text   string // at most MaxLineBytes
}

// ReportAck tells the agent what the cluster has stored: every line up to
// StoredSeq, and the outcome once State is final. Cancel asks the agent to
// stop the command, as does a final State while the command still runs. A
// report refused with 409 (its lines start after the first one not stored)
// is answered with a ReportAck too, and the agent resends from StoredSeq+1.
type ReportAck struct {
	StoredSeq int64
	State     string
	Cancel    bool
}

// Error is the body of a refused request (4xx or 5xx).
type Error struct {
	ErrorMessage string
}
