package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
)

// Names in a command's journal folder.
const (
	stateFile  = "state.json"
	outputFile = "output.jsonl"
	// ackFile holds what the cluster acknowledged (StoredSeq, Acknowledged),
	// written without syncing: losing it in a crash only makes the agent
	// report again what the cluster has stored, which the cluster ignores.
	ackFile = "ack.json"
)

// JournalRetention is how long the journal keeps a command after it ended
// and the cluster acknowledged its outcome.
const JournalRetention = 7 * 24 * time.Hour

// record is a command's state.json (see the package doc).
type record struct {
	UID  string
	Kind string
	// State is Running from before the work starts; then Success, Failed
	// or Canceled.
	State cuttle.CommandState
	// StoredSeq is the last output line the cluster acknowledged storing.
	StoredSeq int64
	ExitCode  int             `json:",omitempty"`
	Result    json.RawMessage `json:",omitempty"`
	Error     string          `json:",omitempty"`
	// Acknowledged is set once the cluster stored the outcome.
	Acknowledged bool `json:",omitempty"`
	// Refused is why the cluster refused the command's reports; they are
	// not sent again.
	Refused    string `json:",omitempty"`
	StartedAt  time.Time
	FinishedAt time.Time `json:",omitzero"`
}

// settled reports whether nothing remains to be reported of the command.
func (r record) settled() bool {
	return r.State.Final() && (r.Acknowledged || r.Refused != "")
}

// journal is the commands folder of the agent's home: a folder per UID.
type journal struct {
	dir string
}

// uidPattern is what the agent accepts as a command's UID, which names a
// folder.
var uidPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (j journal) commandDir(uid string) string { return filepath.Join(j.dir, uid) }

// create journals a new command durably, with an empty output.jsonl it
// returns open: once it returns, the UID is known to the journal across a
// crash. It fails if the UID's folder exists, and otherwise leaves no
// folder behind when it fails.
func (j journal) create(rec record) (*os.File, error) {
	dir := j.commandDir(rec.UID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	out, _, err := openOutput(dir)
	if err == nil {
		err = syncDir(j.dir)
	}
	if err == nil {
		err = j.save(rec)
	}
	if err != nil {
		if out != nil {
			out.Close()
		}
		os.RemoveAll(dir)
		return nil, err
	}
	return out, nil
}

// save replaces the command's state.json atomically and durably.
func (j journal) save(rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(j.commandDir(rec.UID), stateFile), b, 0o600)
}

// acknowledged is the content of ackFile.
type acknowledged struct {
	StoredSeq    int64
	Acknowledged bool `json:",omitempty"`
}

// saveAck records what the cluster acknowledged of the command, atomically
// but not durably (see ackFile).
func (j journal) saveAck(rec record) error {
	b, err := json.Marshal(acknowledged{StoredSeq: rec.StoredSeq, Acknowledged: rec.Acknowledged})
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(j.commandDir(rec.UID), ackFile), b, 0o600, false)
}

// load reads the command's state.json, with what its ack.json adds if it
// can be read; it fails with an fs.ErrNotExist error if the journal has no
// such command.
func (j journal) load(uid string) (record, error) {
	b, err := os.ReadFile(filepath.Join(j.commandDir(uid), stateFile))
	if err != nil {
		return record{}, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, fmt.Errorf("the journal of command %s is damaged: %w", uid, err)
	}
	var ack acknowledged
	if b, err := os.ReadFile(filepath.Join(j.commandDir(uid), ackFile)); err == nil && json.Unmarshal(b, &ack) == nil {
		rec.StoredSeq = max(rec.StoredSeq, ack.StoredSeq)
		// The outcome is durable in state.json before it is reported.
		rec.Acknowledged = rec.Acknowledged || (ack.Acknowledged && rec.State.Final())
	}
	return rec, nil
}

// uids lists the commands of the journal.
func (j journal) uids() ([]string, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, e := range entries {
		if e.IsDir() && uidPattern.MatchString(e.Name()) {
			uids = append(uids, e.Name())
		}
	}
	return uids, nil
}

func (j journal) remove(uid string) error { return os.RemoveAll(j.commandDir(uid)) }

// writeFileAtomic writes data to path through a temporary file that is
// synced and renamed over path; then it syncs the folder, so that path has
// the old content or the new one, whatever happens.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, true)
}

// writeFile writes data to path through a temporary file renamed over
// path, so that path never holds a part of data; durable, it also syncs
// the file before the rename and the folder after it.
func writeFile(path string, data []byte, perm fs.FileMode, durable bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the entries of a folder durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	return err
}

// position is where a line of output.jsonl starts: its Seq and its byte
// offset. The position after the last line has the next Seq and the size
// of the file.
type position struct {
	seq    int64
	offset int64
}

var startOfOutput = position{seq: 1}

// openOutput opens a command's output.jsonl for appending, creating it if
// needed, and returns the position after its last complete line; a torn
// last line (the agent died while writing it) is cut off.
func openOutput(dir string) (*os.File, position, error) {
	f, err := os.OpenFile(filepath.Join(dir, outputFile), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, position{}, err
	}
	end, err := scanOutput(f, startOfOutput, -1)
	if err == nil {
		err = f.Truncate(end.offset)
	}
	if err != nil {
		f.Close()
		return nil, position{}, err
	}
	return f, end, nil
}

// scanOutput reads output.jsonl from the position from and returns the
// position of line seq, or, for seq -1 or past the last complete line,
// the position after the last complete line.
func scanOutput(f *os.File, from position, seq int64) (position, error) {
	at := from
	buf := make([]byte, 64<<10)
	for chunkAt := from.offset; at.seq != seq; chunkAt += int64(len(buf)) {
		n, err := f.ReadAt(buf, chunkAt)
		for start := 0; at.seq != seq; {
			i := bytes.IndexByte(buf[start:n], '\n')
			if i < 0 {
				break
			}
			start += i + 1
			at = position{seq: at.seq + 1, offset: chunkAt + int64(start)}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return at, err
		}
	}
	return at, nil
}

// readOutput reads the lines from the position from up to end, at most
// agentapi.MaxReportLines of them and about maxReportBytes (at least one line), and
// returns them with the position after them. A damaged line is replaced by
// an "info" line that says so. It fails only if the file cannot be read.
func readOutput(f *os.File, from, end position) ([]agentapi.Line, position, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, from.offset, end.offset-from.offset), 64<<10)
	var lines []agentapi.Line
	at, size := from, 0
	for at.seq < end.seq && len(lines) < agentapi.MaxReportLines {
		b, err := r.ReadBytes('\n')
		if err != nil {
			return nil, from, fmt.Errorf("reading line %d of the output: %w", at.seq, err)
		}
		if len(lines) > 0 && size+len(b) > maxReportBytes {
			break
		}
		var l agentapi.Line
		if err := json.Unmarshal(b, &l); err != nil || l.Seq != at.seq {
			// Reports go on, with the line numbered as it should be.
			l = agentapi.Line{Seq: at.seq, Time: time.Now().UTC(), Stream: "info", Text: fmt.Sprintf("(line %d of the output is damaged in the agent's journal)", at.seq)}
		}
		lines = append(lines, l)
		size += len(b)
		at = position{seq: at.seq + 1, offset: at.offset + int64(len(b))}
	}
	return lines, at, nil
}
