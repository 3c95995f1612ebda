package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/cuttledeploy/cuttle/script"
)

// maxArtifacts bounds the artifacts one command uploads; the scripts'
// later declarations are ignored, with a warning.
const maxArtifacts = 100

// createArtifact starts the service message by which a script declares a
// file an artifact of its task, as variables.Preamble's
// new_octopusartifact and New-OctopusArtifact print it:
//
//	##octopus[createArtifact path='<base64 of the path>' name='<base64 of the name>']
//
// (Octopus adds length='<base64>', which is read and ignored.)
const createArtifact = "##octopus[createArtifact"

// serviceAttribute is one attribute of a service message, after the
// message's name: a space or more, a name, and a base64 value in quotes.
var serviceAttribute = regexp.MustCompile(`^\s+([A-Za-z]+)='([A-Za-z0-9+/=]*)'`)

// parseCreateArtifact reads line as a createArtifact service message. ok
// is false for a line that is not one; err tells why one that is cannot
// be read. name is empty when the message names none.
func parseCreateArtifact(line string) (path, name string, ok bool, err error) {
	rest, found := strings.CutPrefix(strings.TrimRightFunc(line, unicode.IsSpace), createArtifact)
	if !found || (rest != "" && rest[0] != ']' && !unicode.IsSpace(rune(rest[0]))) {
		return "", "", false, nil // another message, such as createArtifactX
	}
	rest, closed := strings.CutSuffix(rest, "]")
	if !closed {
		return "", "", true, errors.New("it does not end with ]")
	}
	attrs := map[string]string{}
	for strings.TrimSpace(rest) != "" {
		m := serviceAttribute.FindStringSubmatch(rest)
		if m == nil {
			return "", "", true, fmt.Errorf("%q is not an attribute name='<base64>'", strings.TrimSpace(rest))
		}
		v, err := base64.StdEncoding.DecodeString(m[2])
		if err != nil {
			return "", "", true, fmt.Errorf("its %s is not base64: %v", m[1], err)
		}
		attrs[m[1]] = string(v)
		rest = rest[len(m[0]):]
	}
	if attrs["path"] == "" {
		return "", "", true, errors.New("it has no path")
	}
	return attrs["path"], attrs["name"], true, nil
}

// artifact is a file a command's script declared an artifact.
type artifact struct {
	path string // absolute
	name string // a base name
}

// artifacts collects the artifacts a command's scripts declare. notice
// runs in the scripts' output (script.Run calls it never concurrently,
// and not after it returned), upload after the scripts: never at once.
type artifacts struct {
	list    []artifact
	ignored int // declared beyond maxArtifacts
}

// notice reads the standard output lines of a script that runs in dir
// for createArtifact service messages (the lines themselves are the
// command's output as any other) and collects the artifacts they
// declare: an existing regular file (a relative path is taken from dir),
// named by the message's name reduced to its base name, or else the
// path's. A later declaration of a name replaces the earlier. Whatever
// cannot be collected is a warning: an artifact never fails its command.
func (as *artifacts) notice(c *command, dir string, lines []script.Line) {
	for _, l := range lines {
		if l.Stream != script.Stdout {
			continue
		}
		path, name, ok, err := parseCreateArtifact(l.Text)
		switch {
		case !ok:
			continue
		case err != nil:
			c.warn("A createArtifact service message cannot be read (%v); no artifact was collected", err)
			continue
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		path = filepath.Clean(path)
		name = artifactName(name, path)
		info, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.warn("The artifact %s was not collected: %s does not exist", name, path)
			continue
		case err != nil:
			c.warn("The artifact %s was not collected: %v", name, err)
			continue
		case !info.Mode().IsRegular():
			c.warn("The artifact %s was not collected: %s is not a file", name, path)
			continue
		case strings.ContainsFunc(name, unicode.IsControl):
			c.warn("The artifact %q was not collected: its name holds control characters", name)
			continue
		}
		if i := slices.IndexFunc(as.list, func(a artifact) bool { return a.name == name }); i >= 0 {
			as.list[i].path = path
			continue
		}
		if len(as.list) >= maxArtifacts {
			if as.ignored == 0 {
				c.warn("A command uploads at most %d artifacts: %s and those declared after it are ignored", maxArtifacts, name)
			}
			as.ignored++
			continue
		}
		as.list = append(as.list, artifact{path: path, name: name})
	}
}

// artifactName reduces an artifact's name to its base name (after the
// last / or \); a name that leaves nothing, or none, is the path's base
// name.
func artifactName(name, path string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || name == "." || name == ".." {
		name = filepath.Base(path)
	}
	return name
}

// uploadArtifacts uploads, in order, the artifacts the command's scripts
// declared, once they have ended and before the command's outcome is
// journaled (and so reported): PUT PathFile?name=<name>, as SendFile
// uploads a file (upload), which the node keeps among its task's
// artifacts, replacing one of the same name. Each makes a line,
// "Uploaded artifact <name> (<size>)", or a warning when it fails: the
// command's outcome stays the scripts'. Nothing is uploaded once the
// command's context has ended (cancelled, the agent stopping).
func (a *Agent) uploadArtifacts(ctx context.Context, c *command, as *artifacts) {
	for i, art := range as.list {
		if ctx.Err() != nil {
			c.warn("%d of the artifacts were not uploaded: %v", len(as.list)-i, context.Cause(ctx))
			return
		}
		u, err := openUpload(art.path, art.name)
		if err == nil {
			var size int64
			if _, err = a.upload(ctx, c, u, "name="+url.QueryEscape(art.name)); err == nil {
				size = u.size
			}
			u.close()
			if err == nil {
				c.info("Uploaded artifact %s (%s)", art.name, sizeText(size))
				continue
			}
		}
		c.log.Warn("uploading an artifact failed", "artifact", art.name, "path", art.path, "err", err)
		c.warn("Uploading the artifact %s failed: %v", art.name, err)
	}
}

// sizeText writes a size in bytes for people: 512 bytes, 1.5 KiB, 3.0 MiB.
func sizeText(n int64) string {
	if n < 1024 {
		if n == 1 {
			return "1 byte"
		}
		return fmt.Sprintf("%d bytes", n)
	}
	f, unit := float64(n)/1024, "KiB"
	for _, next := range []string{"MiB", "GiB", "TiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, next
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}
