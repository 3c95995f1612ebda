package comms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/netguard"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// maxPollBody bounds the body of a poll.
const maxPollBody = 64 << 10

// routes returns the handler of agentapi's routes.
func (c *Comms) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				c.writeError(w, r, err)
			}
		})
	}
	handle("POST "+agentapi.PathPoll, c.handlePoll)
	handle("POST "+agentapi.PathReport, c.handleReport)
	handle("GET "+agentapi.PathFile, c.handleFileGet)
	handle("PUT "+agentapi.PathFile, c.handleFilePut)
	handle("/", func(w http.ResponseWriter, r *http.Request) error {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no agent route %s %s.", r.Method, r.URL.Path)
	})
	return mux
}

func (c *Comms) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *cuttle.Error
	if !errors.As(err, &e) {
		e = &cuttle.Error{Kind: cuttle.KindInternal, Err: err}
	}
	msg := e.Message
	switch e.Kind {
	case cuttle.KindInternal:
		c.log.Error("an agent request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "The node failed to handle the request; the cause is in its log."
	case cuttle.KindUnavailable:
		msg = "The node cannot serve this request now; try again."
	}
	writeJSON(w, e.Kind.HTTPStatus(), agentapi.Error{ErrorMessage: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		return &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The request body is not the JSON this route takes.", Err: err}
	}
	return nil
}

// peerKey carries, on a session to a listening agent, the thumbprint of
// the agent's certificate into each request's context.
type peerKey struct{}

// peerThumbprint returns the thumbprint of the agent's certificate.
func peerThumbprint(r *http.Request) string {
	if r.TLS != nil {
		return certs.PeerThumbprint(*r.TLS)
	}
	t, _ := r.Context().Value(peerKey{}).(string)
	return t
}

// pollMachines returns the machines a poll serves: the polling machine of
// the subscription id, which must have the peer's certificate; or, without
// one, the listening machines with the peer's certificate.
func (c *Comms) pollMachines(ctx context.Context, peer, subscription string) ([]int64, error) {
	if subscription != "" {
		m, ok, err := c.machines.bySubscription(ctx, subscription)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, cuttle.Errorf(cuttle.KindNotFound, "No machine is registered with the subscription id %q.", subscription)
		}
		if !strings.EqualFold(m.Thumbprint, peer) {
			c.log.Warn("refused a poll: the subscription id belongs to a machine with another certificate",
				"subscription", subscription, "machine", cuttle.FormatID(cuttle.MachineIDPrefix, m.ID), "thumbprint", peer)
			return nil, cuttle.Errorf(cuttle.KindForbidden, "The subscription id %q belongs to a machine with another certificate.", subscription)
		}
		return []int64{m.ID}, nil
	}
	ms, err := c.machines.byThumbprint(ctx, peer)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, m := range ms {
		if m.Style == cuttle.Listening {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		return nil, cuttle.Errorf(cuttle.KindNotFound, "No listening machine is registered with certificate %s; a polling agent must name its subscription id.", peer)
	}
	return ids, nil
}

// handlePoll hands out the machine's commands, waiting up to
// agentapi.PollWait for some.
func (c *Comms) handlePoll(w http.ResponseWriter, r *http.Request) error {
	var req agentapi.PollRequest
	if err := decode(w, r, maxPollBody, &req); err != nil {
		return err
	}
	ctx := r.Context()
	ids, err := c.pollMachines(ctx, peerThumbprint(r), req.SubscriptionId)
	if err != nil {
		return err
	}
	woken, stop := c.hub.waitMachines(ids...)
	defer stop()
	deadline := time.NewTimer(agentapi.PollWait)
	defer deadline.Stop()
	node := c.member.State().Node.Name
	for {
		resp := agentapi.PollResponse{Commands: []agentapi.Command{}}
		for _, id := range ids {
			cmds, cancel, err := c.store.DispatchCommands(ctx, id, node, agentapi.MaxPollCommands-len(resp.Commands), c.redeliv)
			if err != nil {
				return err
			}
			for _, cmd := range cmds {
				payload, err := c.openPayload(cmd.Payload)
				if err != nil {
					c.log.Error("a command's sealed payload cannot be opened; the command is cancelled", "command", cmd.UID, "err", err)
					c.store.CancelCommand(context.WithoutCancel(ctx), cmd.ID)
					continue
				}
				resp.Commands = append(resp.Commands, agentapi.Command{UID: cmd.UID, Kind: string(cmd.Kind), Payload: payload})
				c.log.Debug("handed out a command", "command", cmd.UID, "kind", cmd.Kind,
					"machine", cuttle.FormatID(cuttle.MachineIDPrefix, id), "task", cuttle.FormatID(cuttle.TaskIDPrefix, cmd.TaskID))
			}
			resp.Cancel = append(resp.Cancel, cancel...)
		}
		if len(resp.Commands) > 0 || len(resp.Cancel) > 0 {
			writeJSON(w, http.StatusOK, resp)
			return nil
		}
		select {
		case <-woken:
		case <-deadline.C:
			writeJSON(w, http.StatusOK, resp)
			return nil
		case <-c.hub.done:
			writeJSON(w, http.StatusOK, resp)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// agentCommand returns the command of uid if it belongs to a machine with
// the peer's certificate; KindNotFound otherwise (see ownCommand).
func (c *Comms) agentCommand(r *http.Request, uid string) (cuttle.Command, error) {
	if _, err := c.ownCommand(r, uid); err != nil {
		return cuttle.Command{}, err
	}
	cmd, err := c.store.CommandByUID(r.Context(), uid)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return cuttle.Command{}, noSuchCommand(uid)
	}
	return cmd, err
}

// handleFileGet serves the file of a ReceiveFile or DeployPackage command
// (its payload's Source), with Range requests for resuming.
func (c *Comms) handleFileGet(w http.ResponseWriter, r *http.Request) error {
	cmd, err := c.agentCommand(r, r.PathValue("uid"))
	if err != nil {
		return err
	}
	if (cmd.Kind != cuttle.CommandReceiveFile && cmd.Kind != cuttle.CommandDeployPackage) || cmd.State.Final() {
		return cuttle.Errorf(cuttle.KindConflict, "The command %s is not a file transfer in progress.", cmd.UID)
	}
	payload, err := c.openPayload(cmd.Payload)
	if err != nil {
		return cuttle.Wrap(err, "opening a file command's payload")
	}
	var p struct{ Source string }
	if err := json.Unmarshal(payload, &p); err != nil {
		return cuttle.Wrap(err, "reading a file command's payload")
	}
	f, err := c.storage.Open(r.Context(), p.Source)
	if errors.Is(err, fs.ErrNotExist) {
		// Final for the agent (a 4xx): the package was replaced or
		// deleted after the command was queued.
		return cuttle.Errorf(cuttle.KindNotFound, "The file %s is no longer in shared storage (replaced or deleted since the command was queued).", p.Source)
	}
	if err != nil {
		return cuttle.Wrap(err, "opening a file to send")
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", f.Info().ModTime, f)
	return nil
}

// handleFilePut stores the upload of a SendFile command among the
// artifacts of its task, checking its SHA-256 if the agent sent one, and
// records it (resources.Artifacts). A Script or DeployPackage command
// uploads the files its scripts declared (new_octopusartifact) so, each
// named by the query's name.
func (c *Comms) handleFilePut(w http.ResponseWriter, r *http.Request) error {
	cmd, err := c.agentCommand(r, r.PathValue("uid"))
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		netguard.Refuse(w)
	}
	if err != nil {
		return err
	}
	var p agentapi.SendFile
	switch {
	case cmd.State.Final():
		netguard.Refuse(w)
		return cuttle.Errorf(cuttle.KindConflict, "The command %s is not a file upload in progress.", cmd.UID)
	case cmd.Kind == cuttle.CommandSendFile:
		if err := json.Unmarshal(cmd.Payload, &p); err != nil {
			return cuttle.Wrap(err, "reading a file command's payload")
		}
	case cmd.Kind == cuttle.CommandScript || cmd.Kind == cuttle.CommandDeployPackage:
		if p.Path = r.URL.Query().Get("name"); p.Path == "" {
			netguard.Refuse(w)
			return cuttle.Errorf(cuttle.KindInvalid, "An artifact of a script needs its name (?name=).")
		}
	default:
		netguard.Refuse(w)
		return cuttle.Errorf(cuttle.KindConflict, "The command %s is not a file upload in progress.", cmd.UID)
	}
	limit := c.limits.ArtifactBytes
	if r.ContentLength > limit {
		netguard.Refuse(w)
		return c.artifactTooLarge(r, cmd)
	}
	key := ArtifactKey(cmd.TaskID, cmd.MachineID, p.Path)
	body := &checkedBody{r: r.Body, h: sha256.New(), limit: limit, want: r.Header.Get(agentapi.HeaderSHA256)}
	info, err := c.storage.Put(r.Context(), key, body)
	switch {
	case errors.Is(err, errTooLarge):
		netguard.Refuse(w)
		return c.artifactTooLarge(r, cmd)
	case errors.Is(err, blob.ErrBadKey):
		return cuttle.Errorf(cuttle.KindInvalid, "The file %q cannot be stored as an artifact: %v.", p.Path, err)
	case body.err != nil:
		return &cuttle.Error{Kind: cuttle.KindInvalid, Message: body.err.Error(), Err: err}
	case err != nil:
		return cuttle.Wrap(err, "storing an artifact")
	}
	n, sum := info.Size, body.sum
	a := cuttle.Artifact{Resource: cuttle.Resource{SpaceID: resources.DefaultSpaceID}, Filename: path.Base(key),
		ServerTaskId: cuttle.FormatID(cuttle.TaskIDPrefix, cmd.TaskID), Source: cuttle.FormatID(cuttle.MachineIDPrefix, cmd.MachineID),
		Created: time.Now().UTC(), LogCorrelationId: cmd.UID, Length: n, StorageKey: key}
	if err := c.store.Update(r.Context(), func(tx *collection.Tx) error { return resources.KeepArtifact(r.Context(), tx, &a) }); err != nil {
		return cuttle.Wrap(err, "recording an artifact")
	}
	c.log.Info("stored an artifact from an agent", "key", key, "bytes", n, "task", cuttle.FormatID(cuttle.TaskIDPrefix, cmd.TaskID))
	writeJSON(w, http.StatusOK, agentapi.FileResult{Size: n, SHA256: sum})
	return nil
}

// errTooLarge fails the read of an upload past its limit.
var errTooLarge = errors.New("the upload is over its limit")

// checkedBody is an upload read into storage: it fails the read past
// limit bytes, and at the end one whose SHA-256 is not want (if set), so
// that storage keeps nothing of it.
type checkedBody struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	limit int64
	want  string
	sum   string // the SHA-256, once read whole
	err   error  // why the upload was refused, if the body was not at fault
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if b.n += int64(n); b.n > b.limit {
		return n, errTooLarge
	}
	switch {
	case err == io.EOF:
		b.sum = hex.EncodeToString(b.h.Sum(nil))
		if b.want != "" && !strings.EqualFold(b.want, b.sum) {
			b.err = fmt.Errorf("The upload's SHA-256 is %s, not the %s the agent sent.", b.sum, b.want)
			return n, b.err
		}
	case err != nil:
		b.err = errors.New("The upload was cut off.")
	}
	return n, err
}

// artifactTooLarge logs (rate-limited) and returns the refusal of an
// upload over the artifact limit.
func (c *Comms) artifactTooLarge(r *http.Request, cmd cuttle.Command) error {
	c.limited.Warn("artifact-too-large/"+peerThumbprint(r), "refused an agent's upload over the artifact limit",
		"command", cmd.UID, "limit", c.limits.ArtifactBytes, "thumbprint", peerThumbprint(r))
	return cuttle.Errorf(cuttle.KindTooLarge, "An upload is at most %s (the node's artifact limit).", cuttle.FormatSize(c.limits.ArtifactBytes))
}

// ArtifactKey returns the storage key under which a file an agent sends for
// a task is kept: artifacts/ServerTasks-N/Machines-M/<the file's name>.
func ArtifactKey(taskID, machineID int64, agentPath string) string {
	name := path.Base(filepath.ToSlash(agentPath))
	if name == "." || name == ".." || name == "/" {
		name = "file"
	}
	return blob.ArtifactsKey + cuttle.FormatID(cuttle.TaskIDPrefix, taskID) + "/" + cuttle.FormatID(cuttle.MachineIDPrefix, machineID) + "/" + name
}

// openPayload returns a command's payload as its agent takes it: a sealed
// one (cuttle.SealedPayload) opened with the master key, any other as it
// is.
func (c *Comms) openPayload(p json.RawMessage) (json.RawMessage, error) {
	var sealed cuttle.SealedPayload
	if json.Unmarshal(p, &sealed) != nil || sealed.Sealed == "" {
		return p, nil
	}
	b, err := base64.StdEncoding.DecodeString(sealed.Sealed)
	if err != nil {
		return nil, err
	}
	return c.key.Open(cuttle.SealedPayloadPurpose, b)
}
