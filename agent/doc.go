// Package agent is cuttle's agent, the program on a deployment target
// (Octopus: Tentacle): it takes commands from the nodes of the clusters it
// trusts, runs them, and reports their output and outcome (package
// agentapi is the protocol). It never touches the cluster's database.
//
// # Home folder
//
// An agent lives in its home folder (default ~/.cuttle/agent):
//
//	agent.json           the configuration (Config)
//	agent.crt, agent.key its certificate, mode 0600 (package certs)
//	commands/<uid>/      the journal of one command
//	packages/            the cache of package files, <sha256><extension>
//	work/                the work folder: every path of a command is
//	                     relative to it and must stay inside it
//
// Many agents can run in one process: an Agent has no global state, and
// stops when the context given to Run ends.
//
// # Connections
//
// A polling agent keeps Config.PollConnections long polls open to each
// trusted server with an address, over TLS 1.3 with both certificates
// pinned; a listening agent accepts the TLS connections of trusted nodes,
// runs a yamux session over each and polls through it. Either way the
// agent is the HTTP/1.1 client. Every working connection, a polled server
// or a node's session, is a link; reports and file transfers use any link
// that works, the one that last worked first, and retry with backoff
// (1 s doubling to 10 s, with jitter) while none does.
//
// # The journal and at-most-once
//
// A command's UID is run at most once by an agent, whatever fails and
// however often the cluster hands it out. The journal, one folder per UID
// with state.json (written to a temporary file, synced and renamed, the
// folder synced too), output.jsonl (the output lines, numbered from 1) and
// ack.json (what the cluster acknowledged; renamed into place but not
// synced, since losing it only makes the agent report again what the
// cluster already stored), is what makes it so:
//
//	(no folder) ──journaled──▶ Running ──ends──▶ Success | Failed | Canceled
//	                              │                        │
//	                   agent restarts:                     ├─ the cluster acknowledges
//	                   Failed, "the agent stopped          │  the outcome: Acknowledged
//	                   while the command ran;              └─ the cluster refuses its
//	                   it was not run again"                  reports (4xx): Refused
//
//	Acknowledged or Refused, and ended more than JournalRetention ago: pruned.
//
// The folder and its state.json, Running, are durable before the work
// starts, so a UID the journal has is never started again: handed out
// again, before or after a restart, it is reported instead, from the first
// line the cluster has not acknowledged and, once it has ended, with its
// outcome. A Running state found when the agent starts means the agent died
// while it ran; it is marked Failed, not run again. The output is appended
// as it comes and synced before the outcome is journaled; a report never
// holds more than one batch of it in memory, reading it back from
// output.jsonl. A pruned UID is forgotten: the cluster never hands out a
// command again once it stored its outcome, so that is safe after
// JournalRetention.
//
// # Reports
//
// Each command has one reporter, with one request in flight: a report
// (agentapi.Report) carries the lines after the last the cluster stored
// (ReportAck.StoredSeq, which ack.json keeps), at most 1,000 of them or
// 256 KiB, gathered for a few milliseconds while output streams; and once
// the command has ended, its outcome, until an acknowledgement with a
// final State. A new command's first report waits up to 20 ms for the
// command to end, so that a short one is reported once, all its lines and
// its outcome together; a longer one says then that it runs. An acknowledgement with Cancel, or the UID in a poll's
// Cancel, cancels the command.
//
// # Packages
//
// A DeployPackage command deploys a package of the cluster's repository:
//
//   - The file: a file of the command's size at packages/<sha256><ext> is
//     used as it is (not hashed again: only a file whose SHA-256 was
//     checked in full is ever renamed there), and its modification time
//     set to now, its last use; else the file is fetched as ReceiveFile
//     fetches one, into a partial file in the command's journal folder,
//     resumed with Range requests, checked by size and SHA-256, and
//     renamed into the cache. Two commands fetching one package at once
//     each fetch their own partial file; the second rename replaces a file
//     with the same bytes. A cached file that fails to extract is hashed,
//     and removed if it was damaged.
//   - The folder: Folder, in the work folder as a command's paths are,
//     with _1, _2, ... added until a new folder is made (Octopus names
//     them so; a mkdir claims it, so two commands never share one); or
//     CustomFolder, absolute, which must be empty unless PurgeCustomFolder
//     has it emptied first, and may not be a root, the home or a folder
//     that holds it, the work folder itself or a folder of the home outside
//     it. The package is extracted into it (package packagefile).
//   - Variables: #{...} templates in the files Substitute matches, then
//     the JSON files JSONFiles matches; a pattern that matches no file is a
//     warning (an "info" line that starts with "Warning: ", since reports
//     know no other stream), not a failure.
//   - Scripts: PreDeploy, Deploy and PostDeploy, with the extension of the
//     Syntax (.sh for Bash, .ps1 for PowerShell), found at the folder's top
//     level (the exact name first, then ignoring case), run in that order
//     in the folder as a Script does, each after variables.Preamble over
//     the command's Variables and
//     Octopus.Action.Package.InstallationDirectoryPath (the folder), which
//     substitutions see too. The first to exit non-zero fails the command
//     with its exit code. A script's file, which holds the variables'
//     values, is removed from the journal folder once it ran (a Script
//     command's too).
//
// A PrunePackages command deletes the cached files not used for MaxAgeDays
// and, in each work/Applications/<environment>/<package> folder, the
// extracted folders but the KeepFolders newest by modification time (0
// keeps all of that kind), never what a running DeployPackage uses (the
// agent holds the file and the folder in memory while it runs); an output
// line tells each deletion.
//
// # Artifacts
//
// The scripts of a Script or DeployPackage command declare artifacts of
// their task with new_octopusartifact (New-OctopusArtifact in
// PowerShell), which prints a service message on standard output:
//
//	##octopus[createArtifact path='<base64 of the absolute path>' name='<base64 of the name>']
//
// The line is output as any other; the agent notices it as it comes and
// collects the artifact: an existing regular file (a relative path is
// taken from the script's folder; any file the agent's user can read, as
// the script itself can), named by the message's name reduced to its base
// name (after the last / or \), or else by the file's. A later
// declaration of a name replaces the earlier; a command collects at most
// 100, and ignores later ones with one warning. A message that cannot be
// read, a missing file or one that is not a regular file is a warning,
// not a failure. Once the command's scripts have ended, whatever their
// outcome, and before the outcome is journaled (and so reported, since
// the node takes no upload for a command in a final state), the agent
// uploads each, in order, as SendFile uploads a file: PUT
// agentapi.PathFile?name=<name>, streamed with its SHA-256, over any link,
// retried with backoff until the cluster takes or refuses it (4xx) or the
// command is cancelled. Each makes a line, "Uploaded artifact <name>
// (<size>)", or a warning: a failed upload never changes the command's
// outcome, as Octopus never fails a deployment for an artifact. The
// command stays Running in the journal while it uploads, so at-most-once
// holds as for any running command: an agent that dies meanwhile marks it
// Failed at its next start and uploads nothing more (an upload sent again
// would only replace the artifact of its name); one that stops cuts the
// uploads when its grace ends, with a warning.
//
// # Paths
//
// A command's paths (Script.WorkDir, ReceiveFile.Path, SendFile.Path,
// DeployPackage.Folder) must be relative and clean, and must resolve
// inside the work folder after the symbolic links of the parts that exist
// are followed; a command with any other path fails and does nothing. The check and the use of a path are
// not atomic: the agent guards against the cluster's commands, not against
// local users who can change the work folder.
//
// # Stopping
//
// When Run's context ends the agent polls no more, lets the running
// commands finish and report for Agent.ShutdownGrace, then stops what
// still runs (a script's whole process group), reports it Failed, "the
// agent stopped before the command finished", for a few more seconds, and
// returns.
package agent
