// Package deploy runs deployments: a release of a project deployed to one
// environment, as a Deploy task (DESIGN.md, Deployments; invariants 2, 6,
// 11 and 12). This file is the design the code keeps; what is not built
// yet is listed at its end.
//
// # What a deployment is made of
//
// A release freezes, when it is created, the project's deployment process
// and variable set as snapshots: documents written once and never changed.
// A deployment names the release and an environment, and what the person
// deploying chose: targets to run on or leave out, steps to skip, guided
// failure on or off, values of prompted variables. It runs as one task of
// kind Deploy, queued in the same unit of work that creates the deployment.
//
// # The plan and its progress: the task's checkpoint
//
// The first owner of the task makes the plan from the snapshots and the
// targets as they are then (machines of the step's roles in the
// environment, less the excluded and, by the project's connectivity
// policy, the unhealthy ones), and writes it as the task's checkpoint
// before anything runs. Every later owner runs the plan in the checkpoint,
// never a new one: the targets of a deployment do not change under it.
//
// The checkpoint holds, for every step, every target of the step, and
// every action on that target (an action on the node counts as a target of
// its own, "the server"):
//
//	pending ──▶ running ──▶ succeeded
//	   │          │  └────▶ failed ──▶ (guided failure) waiting ──▶ retried | ignored | excluded | failed
//	   └──────────┴───────▶ skipped (disabled, other environment or channel, condition false, step skipped)
//
// with the agent command's key while it runs and the output variables it
// produced once it succeeded. Every transition is written (Execution.
// Checkpoint, fenced by the task's owner and epoch) before the next action
// starts, so what the checkpoint says has happened has happened.
//
// # Invariants
//
//   - An action that succeeded on a target never runs on it again: a new
//     owner skips what the checkpoint says succeeded (DESIGN.md 11).
//   - An agent command is queued with a key derived from (step, action,
//     target, attempt); the store keeps one command per (task, key), so a
//     new owner finds the command its predecessor queued and follows it
//     instead of sending it again, and the agent's journal runs a command
//     at most once (DESIGN.md 6).
//   - An action that ran on the dead node itself (RunOnServer) cannot be
//     shown to have finished: it runs again on the new owner, and the log
//     says so. Server-side hooks (a load balancer's API) must therefore be
//     idempotent; docs/deployments.md says so to the people who write them.
//   - A sensitive variable's value is in memory only while it is used: the
//     snapshot keeps it sealed with the master key, a command's payload
//     carries it sealed (the node that hands the command out opens it for
//     the agent, over mutual TLS), the node that receives an agent's
//     output masks it before storing it (secrets.go), sensitive output
//     variables are sealed in the checkpoint, and every line that enters
//     the task's log is masked (DESIGN.md 12).
//   - One deployment of a project to an environment runs at a time: its
//     task's concurrency key is the project and environment (package tasks,
//     "One at a time"), so a claim passes over it while another of the same
//     key runs or waits on a guided failure. A deployment waiting on a
//     manual intervention releases the key (the next one may run) unless
//     the intervention blocks concurrent deployments.
//
// # Steps and targets
//
// Steps run in order; a step whose StartTrigger is StartWithPrevious runs
// alongside the one before it. A step's condition (Success, Failure,
// Always, Variable) is evaluated when it is reached, against the outcome
// so far. Within a step:
//
//   - parallel (no window): every target runs the step's actions, at most
//     Octopus.Action.MaxParallelism targets at once (default 10);
//   - rolling (window W): each target runs the parent action and then each
//     child action in order, and counts as done only after the last; at
//     most W targets are in progress at once. A child action that runs on
//     the server runs on the executing node once per target, with that
//     target's variables: seed 003's scripts before and after each target.
//
// A target that fails fails its step (the rest of a rolling step's targets
// are not started), and the deployment fails: later steps run only if
// their condition is Failure or Always. With guided failure the failed
// action instead waits for a person (below), whose answer decides for that
// action on that target: Retry runs it again (a new attempt, a new command
// key), Ignore counts it as succeeded and goes on, Exclude takes the target
// out of the rest of the deployment (only for a real target, never for the
// server), Fail fails as without guided failure. Ignore and Exclude are not
// offered for a required action.
//
// # Waiting for a person: parked tasks
//
// A manual intervention, or an action under guided failure, creates an
// interruption and parks the task in one unit of work: the task stays
// Executing with HasPendingInterruptions, but is owned by no node and
// counts in no cap, so no node holds it, and no queue expiry applies while
// it waits. Answering the interruption (through any node) records the
// answer and makes the task claimable in one unit of work; the node that
// claims it resumes from the checkpoint, where the answer is waiting for
// it. A node that dies while a deployment waits loses nothing: nothing of
// the deployment is in its memory. The checkpoint that says an action
// waits is written in the unit of work that parks the task and creates its
// interruption, so no wait exists without its question: until then (other
// targets and steps go on, and write checkpoints) a checkpoint stores the
// waiting action as it was before it asked, so that a node dying before it
// parks leaves the action to run or ask again (an agent's command is
// followed again, not sent again). The answer finds its action by the
// interruption's correlation id (task/step/target/action).
//
// # The project's connectivity policy
//
// A new plan leaves out the machines the last health check found
// Unhealthy or Unavailable when the project excludes unhealthy targets,
// and the Unavailable ones when it skips unavailable targets
// (SkipUnavailableMachines, for its TargetRoles or every role). With the
// latter, a target whose agent does not take its command within the
// node's pickup timeout is Skipped for the rest of the deployment instead
// of failing it.
//
// # The activity tree
//
// The task's details show the deployment as a tree read from the
// checkpoint (activity.go): its steps, each step's targets, each target's
// actions, each with its status (Pending, Running, Success, Failed,
// Skipped) and times; every action's entry records when it started and
// when it got its outcome. A target's log lines, whose block is "step /
// target", hang under its element.
//
// # Variables
//
// Package variables resolves a name for an action on a target:
// of a variable's values, the one whose scope matches and is the most
// specific wins (Octopus's precedence); system variables (Octopus.Project.
// Name, Octopus.Environment.Name, Octopus.Machine.Name, ...) and output
// variables of earlier actions (Octopus.Action[Step].Output.Name) join
// them; #{Name} substitution, with #{if} and #{each}, applies to script
// bodies. A script sets an output variable with set_octopusvariable (Bash)
// or Set-OctopusVariable (PowerShell), which print a service message
// (##octopus[setVariable name='<base64>' value='<base64>']) that the node
// reads out of the output and logs as a note; get_octopusvariable and
// $OctopusParameters read variables.
//
// # Package steps
//
// An Octopus.TentaclePackage action runs as a DeployPackage command on
// each target (deploy/package.go): the release's chosen version, sent
// from shared storage unless the agent's cache has it, extracted into a
// new folder, its variables substituted and its scripts run by the agent
// (agent/package.go). The command is keyed and followed as a script's, so
// a node that takes the deployment over follows it in flight.
package deploy
