package portal_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ticks is how many lines the benchmark's script prints, one every 300 ms,
// each with the time it was printed (Unix nanoseconds).
const ticks = 30

// tickRE finds a tick line: its number and the time it was printed.
var tickRE = regexp.MustCompile(`tick (\d+) (\d{19})`)

// BenchmarkLogLineToBrowser measures how long a line a script prints on an
// agent takes to show on the deployment's page in a browser: three nodes
// behind HAProxy (round-robin, no stickiness), one polling agent (added
// by the commands of the "Add a target" page, polling node-a), and a
// deployment whose script prints a line "tick N <unix ns>" every 300 ms.
// The browser, through the balancer, shows the deployment's page; a
// MutationObserver records when each tick first appears in the page
// (Date.now(), the same machine's clock as the script's `date`). The path:
// the agent reports the line to the node it polls, which stores it and
// notifies; the node that runs the deployment copies it into the task's
// log in shared storage, which notifies cuttle_task_logs (at most every
// 100 ms); the node that serves the page's event stream (GET /api/live)
// sends the task's id; the page re-reads the task's details (at most
// every 250 ms) through the balancer. Each iteration is one deployment of
// a new release. It reports the median and the 90th percentile of the
// latencies of all the lines, in milliseconds (median-ms, p90-ms), and,
// to show where the time goes, the medians of two points on the way:
// when the line is in the task's log file in shared storage (log-ms, the
// folder polled every 5 ms) and when an event stream of the page's own
// (a second GET /api/live, through the balancer) first names the task
// after the line was printed (event-ms).
//
// It runs twice: behind HAProxy as testcluster.StartBalanced configures
// it (default), and with "option http-no-delay" (no-delay), which sends
// each event on at once where HAProxy otherwise holds a small one back
// for up to 200 ms.
//
//	go test ./portal/ -run '^$' -bench BenchmarkLogLineToBrowser -benchtime 1x
func BenchmarkLogLineToBrowser(b *testing.B) {
	b.Run("default", func(b *testing.B) { logLineToBrowser(b) })
	b.Run("no-delay", func(b *testing.B) { logLineToBrowser(b, "option http-no-delay") })
}

func logLineToBrowser(b *testing.B, haproxyOptions ...string) {
	p := startClusterPortal(b, haproxyOptions...)
	p.run("signing in through the balancer", p.signIn()...)
	p.run("adding an environment", p.addEnvironment("Production")...)
	script := fmt.Sprintf(`for i in $(seq 1 %d); do echo "tick $i $(date +%%s%%N)"; sleep 0.3; done`, ticks)
	p.run("adding a project whose script ticks", p.addProject("Ticks", script, "")...)
	p.addTarget()

	var shown, logged, evented []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		p.run("creating a release", p.createRelease("Ticks", "1.0."+strconv.Itoa(i))...)
		files := watchTicks(filepath.Join(p.c.Storage, "tasklogs"))
		b.StartTimer()
		var task string
		p.run("deploying it with the page watched", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](observeTicks)(ctx, tg)
			return err
		}),
			chromedp.Click(chromedp.CSS(`form[aria-label="Deploy this release"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`p.status [data-state="Success"]`)),
			// The render after the last line.
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := chromedp.Poll[bool](fmt.Sprintf(`Object.keys(window.cuttleTicks).length >= %d`, ticks))(ctx, tg)
				return err
			}),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				href, err := chromedp.Evaluate[string](`document.querySelector('a[href^="#/Spaces-1/tasks/"]').getAttribute("href")`)(ctx, tg)
				task = href[strings.LastIndex(href, "/")+1:]
				return err
			}),
		)
		b.StopTimer()
		inFiles := files()
		seen, err := chromedp.Run(p.ctx, chromedp.Evaluate[map[string]float64](`window.cuttleTicks`))
		if err != nil {
			b.Fatal(err)
		}
		events, err := chromedp.Run(p.ctx, chromedp.Evaluate[[][2]any](`window.cuttleEvents`))
		if err != nil {
			b.Fatal(err)
		}
		var named []time.Time // when the event stream named the task
		for _, e := range events {
			if id, _ := e[0].(string); id == task {
				at, _ := e[1].(float64)
				named = append(named, time.UnixMilli(int64(at)))
			}
		}
		if len(seen) != ticks || len(inFiles) != ticks {
			b.Fatalf("the page showed %d ticks and the task's log has %d, want %d each: %v", len(seen), len(inFiles), ticks, seen)
		}
		for line, ms := range seen {
			ns, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				b.Fatalf("a tick %q: %v", line, err)
			}
			printed := time.Unix(0, ns)
			shown = append(shown, time.UnixMilli(int64(ms)).Sub(printed))
			inLog, ok := inFiles[line]
			if !ok {
				b.Fatalf("the tick %q is not in the task's log", line)
			}
			logged = append(logged, inLog.Sub(printed))
			// The first event after the line was printed: the one its
			// write into the log caused (the lines are 300 ms apart).
			if k := slices.IndexFunc(named, func(at time.Time) bool { return at.After(printed) }); k >= 0 {
				evented = append(evented, named[k].Sub(printed))
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	median := quantile(shown, 0.5)
	b.ReportMetric(ms(median), "median-ms")
	b.ReportMetric(ms(quantile(shown, 0.9)), "p90-ms")
	b.ReportMetric(ms(quantile(logged, 0.5)), "log-ms")
	b.ReportMetric(ms(quantile(evented, 0.5)), "event-ms")
	b.Logf("%d lines shown: min %v, median %v, p90 %v, max %v; in the task's log: median %v; the event stream named the task: median %v (%d lines)",
		len(shown), quantile(shown, 0).Round(time.Millisecond), median.Round(time.Millisecond), quantile(shown, 0.9).Round(time.Millisecond),
		quantile(shown, 1).Round(time.Millisecond), quantile(logged, 0.5).Round(time.Millisecond), quantile(evented, 0.5).Round(time.Millisecond), len(evented))
}

// quantile returns the q quantile of ds (nearest rank), sorting them.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[int(q*float64(len(ds)-1)+0.5)]
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// observeTicks records in window.cuttleTicks, by "N <unix ns>", the time
// (Date.now(), in ms) each tick line first appears in the view; and in
// window.cuttleEvents the id and time of each "changed" event of an event
// stream of its own.
const observeTicks = `(() => {
	window.cuttleTicks = {};
	window.cuttleEvents = [];
	if (window.cuttleObserver) window.cuttleObserver.disconnect();
	if (window.cuttleStream) window.cuttleStream.close();
	const view = document.getElementById("view");
	window.cuttleObserver = new MutationObserver(() => {
		const now = Date.now();
		for (const m of view.textContent.matchAll(/tick (\d+) (\d{19})/g)) {
			const key = m[1] + " " + m[2];
			if (!(key in window.cuttleTicks)) window.cuttleTicks[key] = now;
		}
	});
	window.cuttleObserver.observe(view, { childList: true, subtree: true, characterData: true });
	window.cuttleStream = new EventSource("/api/live");
	window.cuttleStream.addEventListener("changed", (ev) => window.cuttleEvents.push([ev.data, Date.now()]));
	return true;
})()`

// watchTicks polls the task logs under dir every 5 ms and records when
// each tick line first appears in one, by "N <unix ns>", until the
// function it returns is called, which returns what it recorded.
func watchTicks(dir string) func() map[string]time.Time {
	var (
		mu   sync.Mutex
		seen = map[string]time.Time{}
		done = make(chan struct{})
		over sync.WaitGroup
	)
	sizes := map[string]int64{}
	over.Go(func() {
		for {
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				info, err := d.Info()
				if err != nil || info.Size() == sizes[path] {
					return nil
				}
				sizes[path] = info.Size()
				text, err := os.ReadFile(path)
				if err != nil {
					return nil
				}
				now := time.Now()
				mu.Lock()
				for _, m := range tickRE.FindAllStringSubmatch(string(text), -1) {
					if key := m[1] + " " + m[2]; seen[key].IsZero() {
						seen[key] = now
					}
				}
				mu.Unlock()
				return nil
			})
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() map[string]time.Time {
		close(done)
		over.Wait()
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}
