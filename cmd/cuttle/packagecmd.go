package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cuttledeploy/cuttle/client"
)

// overwriteModes are the values of package push's --overwrite-mode, as
// Octopus names them.
var overwriteModes = []string{"FailIfExists", "IgnoreIfExists", "OverwriteExisting"}

// runPackage: cuttle package push|list|versions|delete, on the built-in feed.
func runPackage(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle package push|list|versions|delete")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	switch sub {
	case "push":
		return pushPackages(ctx, args, stdout, stderr)
	case "list":
		c := newClientCommand("package list", "cuttle package list [--filter X] [--take N] [flags]", stdout, stderr)
		filter := c.fs.String("filter", "", "only the packages whose id contains this (ignoring case)")
		take := c.fs.Int("take", 30, "at most this many packages, in order of id")
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		q := url.Values{"take": {strconv.Itoa(*take)}}
		if *filter != "" {
			q.Set("filter", *filter)
		}
		var page struct {
			TotalResults int
			Items        []client.Package
		}
		if err := c.client().Do(ctx, http.MethodGet, "/api/Spaces-1/packages?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		return c.print(page.Items, func(w io.Writer) {
			fmt.Fprintln(w, "PACKAGE\tLATEST VERSION\tSIZE\tPUBLISHED")
			for _, p := range page.Items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.PackageId, p.Version, humanSize(p.PackageSizeBytes), when(&p.Published))
			}
			if page.TotalResults > len(page.Items) {
				fmt.Fprintf(w, "(%d of %d; --take for more)\n", len(page.Items), page.TotalResults)
			}
		})
	case "versions":
		c := newClientCommand("package versions", "cuttle package versions ID [--take N] [flags]", stdout, stderr)
		take := c.fs.Int("take", 30, "at most this many versions, highest first")
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		q := url.Values{"packageId": {pos[0]}, "take": {strconv.Itoa(*take)}}
		var page struct {
			TotalResults int
			Items        []packageVersion
		}
		if err := c.client().Do(ctx, http.MethodGet, "/api/Spaces-1/feeds/feeds-builtin/packages/versions?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		if page.TotalResults == 0 {
			return fmt.Errorf("there is no package %q in the built-in feed", pos[0])
		}
		return c.print(page.Items, func(w io.Writer) {
			fmt.Fprintln(w, "VERSION\tSIZE\tPUBLISHED")
			for _, v := range page.Items {
				fmt.Fprintf(w, "%s\t%s\t%s\n", v.Version, humanSize(v.SizeBytes), when(&v.Published))
			}
			if page.TotalResults > len(page.Items) {
				fmt.Fprintf(w, "(%d of %d; --take for more)\n", len(page.Items), page.TotalResults)
			}
		})
	case "delete":
		c := newClientCommand("package delete", "cuttle package delete ID VERSION [flags]", stdout, stderr)
		pos, err := c.parse(args, 2)
		if err != nil {
			return err
		}
		id := "packages-" + pos[0] + "." + pos[1]
		if err := c.client().Do(ctx, http.MethodDelete, "/api/Spaces-1/packages/"+url.PathEscape(id), nil, nil); err != nil {
			return err
		}
		return c.print(map[string]string{"Deleted": id, "PackageId": pos[0], "Version": pos[1]}, func(w io.Writer) {
			fmt.Fprintf(w, "deleted package %s %s (%s)\n", pos[0], pos[1], id)
		})
	default:
		return usageErr("unknown package command %q: use push, list, versions or delete", sub)
	}
}

// packageVersion is an item of the built-in feed's versions of a package.
type packageVersion struct {
	Id        string
	PackageId string
	FeedId    string
	Version   string
	Title     string
	Published time.Time
	SizeBytes int64
	Links     map[string]string
}

// pushResult is what package push did with one file.
type pushResult struct {
	File    string
	Outcome string          // Pushed, Kept or Failed
	Package *client.Package `json:",omitempty"` // as the server answered it
	Error   string          `json:",omitempty"`
}

// pushPackages: cuttle package push FILE... [--overwrite-mode M]. Each file
// is streamed to the built-in feed in turn, with a progress bar on a
// terminal; its outcome is printed as it ends. It fails if any file
// failed, after trying them all.
func pushPackages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("package push", "cuttle package push FILE... [--overwrite-mode FailIfExists|IgnoreIfExists|OverwriteExisting] [flags]", stdout, stderr)
	modeFlag := c.fs.String("overwrite-mode", "FailIfExists", "when the version exists: FailIfExists (refuse the file), IgnoreIfExists (keep the stored one) or OverwriteExisting (replace it)")
	files, err := c.parse(args, -1)
	if err != nil {
		return err
	}
	mode := ""
	for _, m := range overwriteModes {
		if strings.EqualFold(*modeFlag, m) {
			mode = m
		}
	}
	if mode == "" {
		return usageErr("--overwrite-mode must be FailIfExists, IgnoreIfExists or OverwriteExisting, not %q", *modeFlag)
	}
	if len(files) == 0 {
		c.fs.Usage()
		return usageErr("name the package files to push, such as app.1.0.0.zip")
	}
	var progress io.Writer
	if isTerminal(stderr) {
		progress = stderr
	}
	cl := c.client()
	var results []pushResult
	failed := 0
	for _, file := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := pushFile(ctx, cl, file, mode, progress)
		results = append(results, r)
		if r.Outcome == "Failed" {
			failed++
		}
		if c.output == "table" {
			switch p := r.Package; r.Outcome {
			case "Pushed":
				fmt.Fprintf(stdout, "%s: pushed %s %s (%s, SHA-256 %s)\n", file, p.PackageId, p.Version, humanSize(p.PackageSizeBytes), shortHash(p.Hash))
			case "Kept":
				fmt.Fprintf(stdout, "%s: kept the existing %s %s (%s)\n", file, p.PackageId, p.Version, mode)
			default:
				fmt.Fprintf(stderr, "%s: failed: %s\n", file, r.Error)
			}
		}
	}
	if c.output == "json" {
		if err := c.print(results, nil); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d package file(s) failed", failed, len(files))
	}
	return nil
}

// pushFile uploads one package file, under its base name, drawing a
// progress bar on progress (nil: none).
func pushFile(ctx context.Context, cl *client.Client, file, mode string, progress io.Writer) pushResult {
	r := pushResult{File: file, Outcome: "Failed"}
	fail := func(err error) pushResult {
		r.Error = err.Error()
		return r
	}
	f, err := os.Open(file)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !info.Mode().IsRegular() {
		return fail(fmt.Errorf("%s is not a file", file))
	}
	var body io.Reader = f
	if progress != nil {
		bar := startProgress(progress, filepath.Base(file), info.Size(), progressInterval)
		defer bar.finish()
		body = bar.reader(f)
	}
	p, kept, err := cl.UploadPackage(ctx, filepath.Base(file), body, mode)
	if err != nil {
		return fail(err)
	}
	r.Package, r.Outcome = &p, "Pushed"
	if kept {
		r.Outcome = "Kept"
	}
	return r
}

// shortHash is the start of a SHA-256, enough to tell files apart.
func shortHash(h string) string {
	if len(h) <= 16 {
		return h
	}
	return h[:16] + "…"
}

// humanSize writes a size in bytes for people: 512 B, 12.3 MiB.
func humanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || unit == "TiB" {
			return fmt.Sprintf("%.1f %s", f, unit)
		}
	}
	panic("unreachable")
}

// progressInterval is how often a progress bar is redrawn.
const progressInterval = 100 * time.Millisecond

// progressBar draws, on one terminal line redrawn in place, how much of a
// file was sent: the bytes a reader took of it, of its size, and the rate.
// It draws nothing until its first interval has passed (a small file is
// sent before), and finish clears its line.
type progressBar struct {
	w     io.Writer
	name  string
	total int64
	sent  atomic.Int64
	start time.Time
	stop  chan struct{}
	done  chan struct{}
}

func startProgress(w io.Writer, name string, total int64, interval time.Duration) *progressBar {
	p := &progressBar{w: w, name: name, total: total, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(interval)
	return p
}

func (p *progressBar) run(interval time.Duration) {
	defer close(p.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	drawn := false
	for {
		select {
		case <-p.stop:
			if drawn {
				io.WriteString(p.w, "\r\x1b[K")
			}
			return
		case <-tick.C:
		}
		io.WriteString(p.w, "\r"+renderProgress(p.name, p.sent.Load(), p.total, time.Since(p.start))+"\x1b[K")
		drawn = true
	}
}

// finish stops the bar and clears its line.
func (p *progressBar) finish() {
	close(p.stop)
	<-p.done
}

// reader returns r counting what is read of it into the bar.
func (p *progressBar) reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &p.sent} }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// renderProgress is a progress bar's line: the file's name, the bar, the
// percentage, the bytes sent of its size and the mean rate.
func renderProgress(name string, sent, total int64, elapsed time.Duration) string {
	const width = 24
	if utf8.RuneCountInString(name) > 32 {
		name = string([]rune(name)[:31]) + "…"
	}
	frac := 1.0
	if total > 0 {
		frac = min(float64(sent)/float64(total), 1)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	rate := int64(0)
	if elapsed > 0 {
		rate = int64(float64(sent) / elapsed.Seconds())
	}
	return fmt.Sprintf("%s [%s] %3d%% %s / %s, %s/s", name, bar, int(frac*100), humanSize(sent), humanSize(total), humanSize(rate))
}

// artifact is an artifact (a file a task kept) as the API answers it.
type artifact struct {
	Id               string
	Filename         string
	ServerTaskId     string
	Source           string
	Created          time.Time
	LogCorrelationId string
	Length           int64
	Links            map[string]string
}

// runArtifact: cuttle artifact list|get.
func runArtifact(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle artifact list|get")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		c := newClientCommand("artifact list", "cuttle artifact list [--task ServerTasks-N | ServerTasks-N] [--take N] [flags]", stdout, stderr)
		task := c.fs.String("task", "", "only the artifacts of this task, such as ServerTasks-42 (or give it as the argument)")
		take := c.fs.Int("take", 30, "at most this many artifacts, newest first")
		pos, err := c.parse(args, -1)
		if err != nil {
			return err
		}
		if len(pos) > 1 {
			c.fs.Usage()
			return usageErr("expected at most 1 argument (the task), got %d", len(pos))
		}
		if len(pos) == 1 {
			given := false
			c.fs.Visit(func(f *flag.Flag) { given = given || f.Name == "task" })
			if given && !strings.EqualFold(*task, pos[0]) {
				return usageErr("give the task as the argument or with --task, not both")
			}
			*task = pos[0]
		}
		q := url.Values{"take": {strconv.Itoa(*take)}}
		if *task != "" {
			q.Set("regarding", *task)
		}
		var page struct {
			TotalResults int
			Items        []artifact
		}
		if err := c.client().Do(ctx, http.MethodGet, "/api/Spaces-1/artifacts?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		return c.print(page.Items, func(w io.Writer) {
			if *task == "" {
				fmt.Fprintln(w, "ID\tTASK\tFILENAME\tSOURCE\tLENGTH\tCREATED")
			} else {
				fmt.Fprintln(w, "ID\tFILENAME\tSOURCE\tLENGTH\tCREATED")
			}
			for _, a := range page.Items {
				if *task == "" {
					fmt.Fprintf(w, "%s\t%s\t", a.Id, a.ServerTaskId)
				} else {
					fmt.Fprintf(w, "%s\t", a.Id)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.Filename, dash(a.Source), humanSize(a.Length), when(&a.Created))
			}
			if page.TotalResults > len(page.Items) {
				fmt.Fprintf(w, "(%d of %d; --take for more)\n", len(page.Items), page.TotalResults)
			}
		})
	case "get":
		c := newClientCommand("artifact get", "cuttle artifact get ID [--output-file PATH|-] [--force] [flags]", stdout, stderr)
		outFile := c.fs.String("output-file", "", "where to save it: a file, a folder, or - for standard output (default: the artifact's file name in the current folder)")
		force := c.fs.Bool("force", false, "replace a file that exists")
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		return getArtifact(ctx, c, pos[0], *outFile, *force)
	default:
		return usageErr("unknown artifact command %q: use list or get", sub)
	}
}

// getArtifact saves an artifact's content to outFile (see artifact get's
// --output-file): streamed into a temporary file in the same folder,
// renamed into place once whole. Without force it refuses a file that
// exists.
func getArtifact(ctx context.Context, c *clientCommand, id, outFile string, force bool) error {
	cl := c.client()
	path := "/api/Spaces-1/artifacts/" + url.PathEscape(id)
	var a artifact
	if err := cl.Do(ctx, http.MethodGet, path, nil, &a); err != nil {
		return err
	}
	if outFile == "-" {
		_, err := cl.Download(ctx, path+"/content", c.stdout)
		return err
	}
	name := filepath.Base(filepath.FromSlash(a.Filename))
	dest := outFile
	if info, err := os.Stat(dest); dest == "" || (err == nil && info.IsDir()) {
		if name == "." || name == ".." || name == string(filepath.Separator) {
			return fmt.Errorf("the artifact's file name %q names no file: give --output-file", a.Filename)
		}
		dest = filepath.Join(dest, name)
	}
	refuse := func() error {
		if force {
			return nil
		}
		if _, err := os.Lstat(dest); err == nil {
			return fmt.Errorf("%s exists: give --force to replace it, or --output-file another path", dest)
		}
		return nil
	}
	if err := refuse(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.part")
	if err != nil {
		return err
	}
	n, err := cl.Download(ctx, path+"/content", tmp)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil && n != a.Length {
		err = fmt.Errorf("the server sent %d bytes of %s, which has %d", n, a.Id, a.Length)
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = refuse() // made while it downloaded
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return c.print(map[string]any{"Id": a.Id, "Filename": a.Filename, "Path": dest, "Length": n}, func(w io.Writer) {
		fmt.Fprintf(w, "saved %s (%s, %s) to %s\n", a.Id, a.Filename, humanSize(n), dest)
	})
}
