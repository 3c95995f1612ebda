package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// transferArgs are the arguments of a TransferFile task: a file of shared
// storage (a key such as packages/app.1.0.zip) and where to put it on each
// target, relative to the agent's work folder.
type transferArgs struct {
	Source      string
	Destination string
	targetArgs
}

// collectArgs are the arguments of a CollectFile task: a file on each
// target, relative to the agent's work folder, to keep among the task's
// artifacts.
type collectArgs struct {
	Path string
	targetArgs
}

// checkAgentPath returns a KindInvalid error unless p is a clean relative
// path (the agent checks again that it stays in its work folder).
func checkAgentPath(kind, field, p string) error {
	if p == "" || strings.Contains(p, `\`) || !fsValid(p) {
		return cuttle.Errorf(cuttle.KindInvalid, "%s's %s must be a clean path relative to the agent's work folder, such as app/app.zip; %q is not.", kind, field, p)
	}
	return nil
}

// fsValid reports whether p is a clean slash-separated relative path
// without "." or ".." elements.
func fsValid(p string) bool {
	if path.IsAbs(p) || path.Clean(p) != p || p == "." {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." {
			return false
		}
	}
	return true
}

// transferFile sends a file of shared storage to the agents of its targets,
// each of which checks its SHA-256 and resumes an interrupted transfer.
func transferFile(files blob.Store) Kind {
	const kind = "TransferFile"
	return Kind{
		Name:      kind,
		Resumable: true,
		Prepare: func(raw json.RawMessage) (Plan, error) {
			var a transferArgs
			if err := decodeArguments(kind, raw, &a); err != nil {
				return Plan{}, err
			}
			if !strings.HasPrefix(a.Source, blob.PackagesKey) && !strings.HasPrefix(a.Source, blob.ArtifactsKey) {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "%s's Source %q is neither a package (%s...) nor an artifact (%s...).", kind, a.Source, blob.PackagesKey, blob.ArtifactsKey)
			}
			ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
			defer cancel()
			if _, err := files.Stat(ctx, a.Source); err != nil {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "%s's Source %q is not a file of the cluster's shared storage.", kind, a.Source)
			}
			if err := checkAgentPath(kind, "Destination", a.Destination); err != nil {
				return Plan{}, err
			}
			if err := a.check(kind); err != nil {
				return Plan{}, err
			}
			if !a.any() {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "%s needs targets: MachineIds, or TargetRoles and EnvironmentIds.", kind)
			}
			return Plan{Description: "Send " + a.Source + " to deployment targets"}, nil
		},
		Run: func(ctx context.Context, x *Execution) error {
			var a transferArgs
			if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
				return fmt.Errorf("the task's arguments cannot be read: %v", err)
			}
			ms, err := x.targets(ctx, a.targetArgs)
			if err != nil {
				return err
			}
			size, digest, err := digestFile(ctx, files, a.Source)
			if err != nil {
				return fmt.Errorf("reading %s: %v", a.Source, err)
			}
			x.Log.Logf(tasklog.Info, "Sending %s (%s, SHA-256 %s) to %d target(s).", a.Source, bytesText(uint64(size)), digest, len(ms))
			payload := agentapi.ReceiveFile{Path: a.Destination, Size: size, SHA256: digest, Source: a.Source}
			return onTargets(ctx, x, ms, "receive", cuttle.CommandReceiveFile, payload, func(m cuttle.Machine, cmd cuttle.Command) string {
				var r agentapi.ReceiveFileResult
				json.Unmarshal(cmd.Result, &r)
				return fmt.Sprintf("%s received %s (%s, SHA-256 %s; resumed %d time(s)).", m.Name, a.Destination, bytesText(uint64(r.Size)), r.SHA256, r.Resumes)
			})
		},
	}
}

// collectFile fetches a file from the agents of its targets into the
// task's artifacts (artifacts/ServerTasks-N/Machines-M/<file name>).
func collectFile() Kind {
	const kind = "CollectFile"
	return Kind{
		Name:      kind,
		Resumable: true,
		Prepare: func(raw json.RawMessage) (Plan, error) {
			var a collectArgs
			if err := decodeArguments(kind, raw, &a); err != nil {
				return Plan{}, err
			}
			if err := checkAgentPath(kind, "Path", a.Path); err != nil {
				return Plan{}, err
			}
			if err := a.check(kind); err != nil {
				return Plan{}, err
			}
			if !a.any() {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "%s needs targets: MachineIds, or TargetRoles and EnvironmentIds.", kind)
			}
			return Plan{Description: "Collect " + a.Path + " from deployment targets"}, nil
		},
		Run: func(ctx context.Context, x *Execution) error {
			var a collectArgs
			if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
				return fmt.Errorf("the task's arguments cannot be read: %v", err)
			}
			ms, err := x.targets(ctx, a.targetArgs)
			if err != nil {
				return err
			}
			return onTargets(ctx, x, ms, "collect", cuttle.CommandSendFile, agentapi.SendFile{Path: a.Path}, func(m cuttle.Machine, cmd cuttle.Command) string {
				var r agentapi.FileResult
				json.Unmarshal(cmd.Result, &r)
				return fmt.Sprintf("Collected %s from %s (%s, SHA-256 %s).", a.Path, m.Name, bytesText(uint64(r.Size)), r.SHA256)
			})
		},
	}
}

// onTargets runs one command on each machine, at most
// DefaultTargetParallelism at once, logging done's summary of each that
// succeeds; it fails if the command failed on any.
func onTargets(ctx context.Context, x *Execution, ms []cuttle.Machine, key string, kind cuttle.CommandKind, payload any,
	done func(cuttle.Machine, cuttle.Command) string) error {
	if len(ms) == 0 {
		return errors.New("no enabled machine matches the task's MachineIds, TargetRoles and EnvironmentIds")
	}
	failed := forEachTarget(ctx, ms, DefaultTargetParallelism, func(ctx context.Context, m cuttle.Machine) error {
		cmd, err := x.runCommand(ctx, m, key+"/"+cuttle.FormatID(cuttle.MachineIDPrefix, m.ID), kind, payload)
		if err != nil {
			if context.Cause(ctx) == nil {
				x.Log.Write(tasklog.Line{Category: tasklog.Error, Block: m.Name, Text: err.Error()})
			}
			return err
		}
		switch {
		case cmd.State == cuttle.CommandCanceled && context.Cause(ctx) != nil:
			return context.Cause(ctx)
		case cmd.State != cuttle.CommandSuccess:
			msg := cmd.Error
			if msg == "" {
				msg = fmt.Sprintf("The command ended %s.", cmd.State)
			}
			x.Log.Write(tasklog.Line{Category: tasklog.Error, Block: m.Name, Text: msg, Source: "outcome/" + cmd.UID, Seq: 1})
			return errors.New(msg)
		}
		// Once in the log, though a resumed task reaches it again.
		x.Log.Write(tasklog.Line{Category: tasklog.Info, Block: m.Name, Text: done(m, cmd), Source: "outcome/" + cmd.UID, Seq: 1})
		return nil
	})
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return failedOn(failed, len(ms))
}

// prepareTimeout bounds what a Prepare reads from shared storage.
const prepareTimeout = 10 * time.Second

// digestFile returns the size and lower-case hex SHA-256 of a file of
// shared storage.
func digestFile(ctx context.Context, files blob.Store, key string) (int64, string, error) {
	f, err := files.Open(ctx, key)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}
