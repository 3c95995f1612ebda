package bench

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// The package benchmarks (issue 11): an upload of 1 GiB to the built-in
// feed against `cp` of the same file on the same disk, an upload of 10 GiB
// generated on the fly, the acquisition of a 100 MiB package by 100
// simulated agents with their caches empty and full, and the Retention job
// over a project of 10,000 releases. One node on the shared PostgreSQL
// (newTaskCluster), its shared storage a folder (testcluster's, under the
// temporary folder, so on the same disk as the benchmarks' other files).
// Uploads are sent as the official client sends them
// (testcluster.UploadPackage: multipart/form-data, chunked, through an
// io.Pipe); times are taken by this process around the request, or from
// the database (tasks.queue_time, start_time, completed_time) and the task
// logs' lines; memory and CPU from /proc.

// uploadBytes is the size of BenchmarkPackageUpload1GiB's file: 1 GiB, or
// $BENCH_UPLOAD_MIB MiB (for a quick try).
func uploadBytes(b *testing.B) int64 { return sizeFromEnv(b, "BENCH_UPLOAD_MIB", 1<<30) }

// bigUploadBytes is the size of BenchmarkPackageUpload10GiB's upload:
// 10 GiB, or $BENCH_BIG_UPLOAD_MIB MiB.
func bigUploadBytes(b *testing.B) int64 { return sizeFromEnv(b, "BENCH_BIG_UPLOAD_MIB", 10<<30) }

// acquirePayloadBytes is the size of the file in the package of
// BenchmarkPackageAcquisition100Agents: 100 MiB, or $BENCH_ACQUIRE_MIB MiB.
func acquirePayloadBytes(b *testing.B) int64 { return sizeFromEnv(b, "BENCH_ACQUIRE_MIB", 100<<20) }

func sizeFromEnv(b *testing.B, name string, def int64) int64 {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive number", name, s)
	}
	return n << 20
}

// mbps is a rate in MB/s (10^6 bytes a second).
func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// newPackageNode starts one node on a fresh database (newTaskCluster) and
// waits until it leads and the jobs its first sweep queued have ended.
func newPackageNode(b *testing.B) (*testcluster.Cluster, *testcluster.Node, *pgxpool.Pool) {
	b.Helper()
	c := newTaskCluster(b, 1)
	steadyLeader(b, c)
	pool := openPool(b, c.DB)
	time.Sleep(2 * time.Second)
	waitTasksDone(b, pool, 0, 20*time.Millisecond, time.Minute)
	return c, c.Nodes[0], pool
}

// loadAverage returns the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// ioCounts are a process's I/O through system calls, from /proc/<pid>/io:
// the bytes read and written (files, sockets and pipes alike, whether or
// not they reached a disk) and the number of read and write calls.
type ioCounts struct{ rchar, wchar, syscr, syscw int64 }

func (c ioCounts) sub(d ioCounts) ioCounts {
	return ioCounts{c.rchar - d.rchar, c.wchar - d.wchar, c.syscr - d.syscr, c.syscw - d.syscw}
}

func (c ioCounts) String() string {
	return fmt.Sprintf("node read %.0f MiB in %d calls (%.1f KiB each), wrote %.0f MiB in %d calls (%.1f KiB each)",
		mib(c.rchar), c.syscr, float64(c.rchar)/1024/float64(max(c.syscr, 1)), mib(c.wchar), c.syscw, float64(c.wchar)/1024/float64(max(c.syscw, 1)))
}

// procIO reads a process's ioCounts.
func procIO(pid int) (ioCounts, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ioCounts{}, err
	}
	var c ioCounts
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		switch name {
		case "rchar":
			c.rchar = n
		case "wchar":
			c.wchar = n
		case "syscr":
			c.syscr = n
		case "syscw":
			c.syscw = n
		}
	}
	return c, nil
}

// cpuOf returns the CPU time (user and system) the processes have used.
func cpuOf(b *testing.B, pids ...int) time.Duration {
	b.Helper()
	var sum time.Duration
	for _, pid := range pids {
		d, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		sum += d
	}
	return sum
}

// procTimes are the CPU times of every process of the machine at one
// moment, by pid: kernel threads (the children of kthreadd, pid 2: page
// writeback, the file system's journal) apart.
type procTimes map[int]struct {
	kernel bool
	cpu    time.Duration
}

// snapshotProcs reads every process's CPU time from /proc/<pid>/stat.
func snapshotProcs() procTimes {
	out := procTimes{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = struct {
			kernel bool
			cpu    time.Duration
		}{pid == 2 || ppid == 2, time.Duration(utime+stime) * time.Second / clockTicks}
	}
	return out
}

// since returns the CPU time used between then and now by the kernel
// threads and by the other processes that lived through both moments, but
// those of exclude (counted apart). What processes that started or ended
// in between used is in neither: the machine's busy time less all the
// parts is that, and interrupts.
func (now procTimes) since(then procTimes, exclude ...int) (kernel, others time.Duration) {
	for pid, t := range now {
		t0, ok := then[pid]
		if !ok || slices.Contains(exclude, pid) {
			continue
		}
		if t.kernel {
			kernel += t.cpu - t0.cpu
		} else {
			others += t.cpu - t0.cpu
		}
	}
	return kernel, others
}

// rssWatch samples a process's resident memory (VmRSS) every interval and
// keeps the most it saw.
type rssWatch struct {
	most       atomic.Int64
	n          atomic.Int64
	stop, done chan struct{}
}

func watchRSS(pid int, interval time.Duration) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		if m, err := testcluster.ReadMemory(pid); err == nil {
			w.n.Add(1)
			if m.RSS > w.most.Load() {
				w.most.Store(m.RSS)
			}
		}
	}
	sample()
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				sample()
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	return w
}

// end stops sampling and returns the most resident memory seen and the
// number of samples.
func (w *rssWatch) end() (most int64, n int64) {
	close(w.stop)
	<-w.done
	return w.most.Load(), w.n.Load()
}

// rssInterval is how often the upload benchmarks sample the node's VmRSS.
const rssInterval = 100 * time.Millisecond

// readWhole reads a file to its end (into the page cache) and returns its
// SHA-256 in hex and the time that took.
func readWhole(path string) (string, time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	t0 := time.Now()
	_, err = io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), time.Since(t0), err
}

// touchWhole reads a file to its end without hashing it: it is in the page
// cache afterwards (as long as memory allows).
func touchWhole(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// freeBytes returns the bytes an unprivileged process may still write on
// the file system of path.
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// sameDevice reports whether two paths are on the same file system.
func sameDevice(a, b string) (bool, error) {
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := syscall.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev, nil
}

// storedFiles returns the regular files under the package's folder of the
// storage, packages/<id>/, with their sizes.
func storedFiles(storage, id string) (map[string]int64, error) {
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(storage, "packages", id), func(p string, d os.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = info.Size()
		}
		return nil
	})
	return out, err
}

// deletePackage deletes a package version through the API (with a client
// that waits up to five minutes: the node removes the file before it
// answers), checks that its file is gone from the storage, and returns how
// long the DELETE took.
func deletePackage(b *testing.B, node *testcluster.Node, id, version string) time.Duration {
	b.Helper()
	slow := &client.Client{BaseURL: node.URL, APIKey: node.Client.APIKey, HTTP: &http.Client{Timeout: 5 * time.Minute}}
	t0 := time.Now()
	if err := slow.Do(context.Background(), http.MethodDelete, "/api/Spaces-1/packages/packages-"+id+"."+version, nil, nil); err != nil {
		b.Fatalf("deleting %s %s: %v", id, version, err)
	}
	took := time.Since(t0)
	files, err := storedFiles(node.Config.Storage, id)
	if err != nil {
		b.Fatal(err)
	}
	if len(files) > 0 {
		b.Fatalf("after DELETE of %s %s the storage still holds %v", id, version, files)
	}
	return took
}

// procCPUSplit returns the user and the system CPU time a process has
// used, from /proc/<pid>/stat.
func procCPUSplit(pid int) (user, system time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat has too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: bad CPU times %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime) * time.Second / clockTicks, time.Duration(stime) * time.Second / clockTicks, nil
}

// upload is one measured upload: its answer, time, the node's memory
// before and at most during it (sampled and the kernel's peak), and the
// CPU time the node and this process used.
type upload struct {
	answer             testcluster.UploadAnswer
	took               time.Duration
	rssBefore, rssMost int64
	hwm                int64
	samples            int64
	nodeCPU, selfCPU   time.Duration
	nodeSys            time.Duration // of nodeCPU, in the kernel
	nodeIO             ioCounts      // during the upload
}

func (u upload) growth() int64    { return u.rssMost - u.rssBefore }
func (u upload) hwmGrowth() int64 { return u.hwm - u.rssBefore }

// timedUpload uploads body as fileName (FailIfExists) through node and
// measures it.
func timedUpload(b *testing.B, node *testcluster.Node, fileName string, body io.Reader) upload {
	b.Helper()
	pid := node.Pid()
	mem0, err := testcluster.ReadMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	if err := testcluster.ResetPeakMemory(pid); err != nil {
		b.Fatal(err)
	}
	u := upload{rssBefore: mem0.RSS}
	cpu0, self0 := cpuOf(b, pid), cpuOf(b, os.Getpid())
	_, sys0, err := procCPUSplit(pid)
	if err != nil {
		b.Fatal(err)
	}
	io0, err := procIO(pid)
	if err != nil {
		b.Fatal(err)
	}
	w := watchRSS(pid, rssInterval)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	u.answer, err = testcluster.UploadPackage(ctx, node.Client, fileName, "FailIfExists", body)
	u.took = time.Since(t0)
	u.rssMost, u.samples = w.end()
	if err != nil {
		b.Fatalf("uploading %s: %v", fileName, err)
	}
	u.nodeCPU, u.selfCPU = cpuOf(b, pid)-cpu0, cpuOf(b, os.Getpid())-self0
	_, sys1, err := procCPUSplit(pid)
	if err != nil {
		b.Fatal(err)
	}
	u.nodeSys = sys1 - sys0
	io1, err := procIO(pid)
	if err != nil {
		b.Fatal(err)
	}
	u.nodeIO = io1.sub(io0)
	mem, err := testcluster.ReadMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	u.hwm = mem.Peak
	if u.answer.Status != http.StatusCreated {
		b.Fatalf("uploading %s: %d %s", fileName, u.answer.Status, u.answer.Body)
	}
	return u
}

// BenchmarkPackageUpload1GiB measures an upload of a 1 GiB file of random
// bytes to the built-in feed of one node, whose shared storage is a
// folder on the same disk, against `cp` of the same file on that disk.
// The file is read once before each copy and each upload, so that both
// read it from the page cache. One iteration copies the file with cp to a
// new file and flushes the copy (`sync FILE`: the node fsyncs an upload
// before it answers), removes the copy, then uploads the file as the
// official client does (POST /api/Spaces-1/packages/raw?overwriteMode=
// FailIfExists, multipart part "file", chunked through an io.Pipe) as
// version 1.0.N, checks the answer's size and SHA-256, and deletes the
// version through DELETE /api/Spaces-1/packages/packages-upload.1.0.N (and
// checks that its file is gone). It reports the medians of the upload's
// MB/s (10^6 bytes; the request's start to the answer read), cp's with and
// without the sync, the ratio of the upload to cp with sync (each
// iteration's pair), the node's resident memory growth during the upload
// (VmRSS sampled every 100 ms, and the kernel's VmHWM, each less the VmRSS
// before), and the CPU time of the node and of this process (the client)
// per upload.
func BenchmarkPackageUpload1GiB(b *testing.B) {
	size := uploadBytes(b)
	c, node, _ := newPackageNode(b)
	dir := b.TempDir()
	if same, err := sameDevice(dir, c.Storage); err != nil || !same {
		b.Fatalf("the source folder %s and the storage %s are not on one file system (%v)", dir, c.Storage, err)
	}
	src := filepath.Join(dir, "upload.bin")
	if err := writeRandomFile(src, size); err != nil {
		b.Fatal(err)
	}
	if err := runProgram("sync", src); err != nil {
		b.Fatal(err)
	}
	want, hashTook, err := readWhole(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("load average at the start: %s; SHA-256 of the file in this process: %.0f MB/s", loadAverage(), mbps(size, hashTook))
	copyPath := filepath.Join(dir, "copy.bin")
	var (
		ups, cps, cpSyncs        samples
		ratios, ratiosNoSync     []float64
		growth, hwmGrowth        []float64
		nodeCPU, selfCPU, others []float64
		runs                     runLog
	)
	i := 0
	for b.Loop() {
		i++
		if err := touchWhole(src); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := runProgram("cp", src, copyPath); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := runProgram("sync", copyPath); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := os.Remove(copyPath); err != nil {
			b.Fatal(err)
		}
		if err := touchWhole(src); err != nil {
			b.Fatal(err)
		}
		version := "1.0." + strconv.Itoa(i)
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		busy0, _ := machineBusy()
		procs0 := snapshotProcs()
		u := timedUpload(b, node, "upload."+version+".zip", f)
		busy1, _ := machineBusy()
		kern, otherProcs := snapshotProcs().since(procs0, node.Pid(), os.Getpid())
		f.Close()
		if u.answer.Package.PackageSizeBytes != size || u.answer.Package.Hash != want {
			b.Fatalf("upload %s: the node stored %d bytes with SHA-256 %s; sent %d bytes with %s", version,
				u.answer.Package.PackageSizeBytes, u.answer.Package.Hash, size, want)
		}
		del := deletePackage(b, node, "upload", version)
		cp, cpSync := t1.Sub(t0), t2.Sub(t0)
		other := (busy1 - busy0 - u.nodeCPU - u.selfCPU).Seconds()
		ups, cps, cpSyncs = append(ups, u.took), append(cps, cp), append(cpSyncs, cpSync)
		ratios, ratiosNoSync = append(ratios, mbps(size, u.took)/mbps(size, cpSync)), append(ratiosNoSync, mbps(size, u.took)/mbps(size, cp))
		growth, hwmGrowth = append(growth, mib(u.growth())), append(hwmGrowth, mib(u.hwmGrowth()))
		nodeCPU, selfCPU, others = append(nodeCPU, u.nodeCPU.Seconds()), append(selfCPU, u.selfCPU.Seconds()), append(others, other)
		runs.add("%s: upload %.0f ms = %.0f MB/s (node RSS %.1f MiB before, +%.1f MiB most of %d samples, VmHWM +%.1f MiB; CPU node %.2f s (%.2f s system), client %.2f s, rest of the machine %.2f s (kernel threads %.2f s, other processes %.2f s) over %.1f s; %s); DELETE %.0f ms; cp %.0f ms = %.0f MB/s, with sync %.0f ms = %.0f MB/s; upload/cp+sync %.2f, upload/cp %.2f; load %s",
			version, ms(u.took), mbps(size, u.took), mib(u.rssBefore), mib(u.growth()), u.samples, mib(u.hwmGrowth()),
			u.nodeCPU.Seconds(), u.nodeSys.Seconds(), u.selfCPU.Seconds(), other, kern.Seconds(), otherProcs.Seconds(), u.took.Seconds(), u.nodeIO, ms(del), ms(cp), mbps(size, cp), ms(cpSync), mbps(size, cpSync),
			ratios[len(ratios)-1], ratiosNoSync[len(ratiosNoSync)-1], loadAverage())
	}
	b.StopTimer()
	runs.flush(b)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mbps(size, ups.median()), "upload_MB/s")
	b.ReportMetric(mbps(size, slices.Max(ups)), "slowest_upload_MB/s")
	b.ReportMetric(mbps(size, cpSyncs.median()), "cp_sync_MB/s")
	b.ReportMetric(mbps(size, cps.median()), "cp_MB/s")
	b.ReportMetric(medianF(ratios), "ratio_cp_sync")
	b.ReportMetric(slices.Min(ratios), "lowest_ratio_cp_sync")
	b.ReportMetric(medianF(ratiosNoSync), "ratio_cp")
	b.ReportMetric(medianF(growth), "rss_growth_MiB")
	b.ReportMetric(slices.Max(growth), "most_rss_growth_MiB")
	b.ReportMetric(slices.Max(hwmGrowth), "most_hwm_growth_MiB")
	b.ReportMetric(medianF(nodeCPU), "node_cpu_s")
	b.ReportMetric(medianF(selfCPU), "client_cpu_s")
	b.ReportMetric(medianF(others), "rest_cpu_s")
}

// bigUploadFree is the free space BenchmarkPackageUpload10GiB asks for:
// the upload, its anchor written after it, and room for the rest of the
// machine's work.
const bigUploadFree = 25 << 30

// BenchmarkPackageUpload10GiB measures one upload of 10 GiB to the
// built-in feed of one node (storage a folder on the same disk), the body
// generated on the fly by a ChaCha8 generator in the uploading goroutine
// (testcluster.PseudoRandom; no source file). It fails at once if the file
// system of the storage has less than 25 GiB free. One iteration uploads
// the bytes as big.1.0.N.zip, then checks the answer's size and SHA-256
// against the same bytes generated again (not timed), and the stored
// file's size; deletes the version through the API; then, as the anchor,
// writes the same generated bytes straight into a file on the same disk
// and fsyncs it (this process, no HTTP), and removes it. It reports the
// upload's time and MB/s, the node's resident memory growth during it
// (VmRSS every 100 ms; VmHWM), its CPU time and the client's, the anchor's
// MB/s, and the generator's rate alone (1 GiB into io.Discard).
func BenchmarkPackageUpload10GiB(b *testing.B) {
	size := bigUploadBytes(b)
	c, node, _ := newPackageNode(b)
	need := max(int64(bigUploadFree), size*5/2)
	free, err := freeBytes(c.Storage)
	if err != nil {
		b.Fatal(err)
	}
	if free < need {
		b.Fatalf("the file system of the storage %s has %.1f GiB free; this benchmark writes %.1f GiB twice and wants %.1f GiB free: free some space first",
			c.Storage, float64(free)/(1<<30), float64(size)/(1<<30), float64(need)/(1<<30))
	}
	t0 := time.Now()
	if _, err := io.Copy(io.Discard, testcluster.PseudoRandom(0, 1<<30)); err != nil {
		b.Fatal(err)
	}
	genRate := mbps(1<<30, time.Since(t0))
	b.Logf("load average at the start: %s; %.1f GiB free on the storage's file system; the generator alone: %.0f MB/s",
		loadAverage(), float64(free)/(1<<30), genRate)
	dir := b.TempDir()
	var (
		ups, anchors     samples
		growth, hwm      []float64
		nodeCPU, selfCPU []float64
		runs             runLog
	)
	i := 0
	for b.Loop() {
		i++
		seed := uint64(1000 + i)
		version := "1.0." + strconv.Itoa(i)
		u := timedUpload(b, node, "big."+version+".zip", testcluster.PseudoRandom(seed, size))
		tv := time.Now()
		h := sha256.New()
		if _, err := io.Copy(h, testcluster.PseudoRandom(seed, size)); err != nil {
			b.Fatal(err)
		}
		want := hex.EncodeToString(h.Sum(nil))
		verify := time.Since(tv)
		if u.answer.Package.PackageSizeBytes != size || u.answer.Package.Hash != want {
			b.Fatalf("upload %s: the node stored %d bytes with SHA-256 %s; sent %d bytes with %s", version,
				u.answer.Package.PackageSizeBytes, u.answer.Package.Hash, size, want)
		}
		files, err := storedFiles(c.Storage, "big")
		if err != nil {
			b.Fatal(err)
		}
		if len(files) != 1 {
			b.Fatalf("the storage holds %v for big %s, want one file", files, version)
		}
		for path, n := range files {
			if n != size {
				b.Fatalf("%s holds %d bytes, want %d", path, n, size)
			}
		}
		del := deletePackage(b, node, "big", version)

		// The anchor: the same bytes into a file of the same disk, fsynced.
		if free, err := freeBytes(dir); err != nil || free < size+(2<<30) {
			b.Fatalf("%.1f GiB free for the anchor's %.1f GiB (%v)", float64(free)/(1<<30), float64(size)/(1<<30), err)
		}
		anchorPath := filepath.Join(dir, "anchor.bin")
		ta := time.Now()
		f, err := os.Create(anchorPath)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(f, testcluster.PseudoRandom(seed, size))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		anchor := time.Since(ta)
		os.Remove(anchorPath)
		if err != nil {
			b.Fatal(err)
		}
		ups, anchors = append(ups, u.took), append(anchors, anchor)
		growth, hwm = append(growth, mib(u.growth())), append(hwm, mib(u.hwmGrowth()))
		nodeCPU, selfCPU = append(nodeCPU, u.nodeCPU.Seconds()), append(selfCPU, u.selfCPU.Seconds())
		runs.add("%s: upload %.1f s = %.0f MB/s (node RSS %.1f MiB before, +%.1f MiB most of %d samples, VmHWM +%.1f MiB; CPU node %.1f s (%.1f s system), client %.1f s; %s); size and SHA-256 checked (%.1f s to generate and hash again); DELETE %.1f s; anchor: generated into a file + fsync %.1f s = %.0f MB/s; load %s",
			version, u.took.Seconds(), mbps(size, u.took), mib(u.rssBefore), mib(u.growth()), u.samples, mib(u.hwmGrowth()),
			u.nodeCPU.Seconds(), u.nodeSys.Seconds(), u.selfCPU.Seconds(), u.nodeIO, verify.Seconds(), del.Seconds(), anchor.Seconds(), mbps(size, anchor), loadAverage())
	}
	b.StopTimer()
	runs.flush(b)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ups.median().Seconds(), "upload_s")
	b.ReportMetric(mbps(size, ups.median()), "upload_MB/s")
	b.ReportMetric(mbps(size, anchors.median()), "anchor_MB/s")
	b.ReportMetric(mbps(size, ups.median())/mbps(size, anchors.median()), "ratio_anchor")
	b.ReportMetric(slices.Max(growth), "most_rss_growth_MiB")
	b.ReportMetric(slices.Max(hwm), "most_hwm_growth_MiB")
	b.ReportMetric(medianF(nodeCPU), "node_cpu_s")
	b.ReportMetric(medianF(selfCPU), "client_cpu_s")
	b.ReportMetric(genRate, "generator_MB/s")
}

// acquireAgents is how many simulated agents acquire the package.
const acquireAgents = 100

// acquireID and acquireVersion name the package of
// BenchmarkPackageAcquisition100Agents.
const acquireID, acquireVersion = "acquire", "1.0.0"

// writeTarPackage writes a tar archive of one file, payload.bin, of size
// pseudo-random bytes: extracting it is one copy, no decompression.
func writeTarPackage(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = tw.WriteHeader(&tar.Header{Name: "payload.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Now()})
	if err == nil {
		_, err = io.Copy(tw, testcluster.PseudoRandom(7, size))
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// packageStepOn is a step with one Octopus.TentaclePackage action that
// deploys the built-in feed's package id on the targets of role, at most
// deploy.DefaultWindow (10) at once.
func packageStepOn(name, role, id string) map[string]any {
	return map[string]any{"Name": name, "Properties": map[string]string{"Octopus.Action.TargetRoles": role},
		"Actions": []any{map[string]any{"Name": name, "ActionType": "Octopus.TentaclePackage",
			"Packages":   []any{map[string]any{"Name": "", "PackageId": id, "FeedId": "feeds-builtin"}},
			"Properties": map[string]string{"Octopus.Action.Package.PackageId": id, "Octopus.Action.Package.FeedId": "feeds-builtin"}}}}
}

// agentHomes returns the homes of the load's simulated agents.
func (l *agentLoad) agentHomes(b *testing.B) []string {
	b.Helper()
	var homes []string
	for _, s := range l.sims {
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				homes = append(homes, filepath.Join(s.dir, e.Name()))
			}
		}
	}
	return homes
}

// cachedCount returns how many agents hold a file of size bytes in their
// package cache (<home>/packages).
func cachedCount(b *testing.B, homes []string, size int64) int {
	b.Helper()
	n := 0
	for _, h := range homes {
		entries, _ := os.ReadDir(filepath.Join(h, "packages"))
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() == size {
				n++
				break
			}
		}
	}
	return n
}

// clearAgents removes every agent's extracted packages
// (<home>/work/Applications) and, if cache, its package cache
// (<home>/packages), in parallel, then syncs the file systems, so that a
// deployment starts with no writeback of the last one pending.
func clearAgents(b *testing.B, homes []string, cache bool) {
	b.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := atomic.Int64{}
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(homes); i = int(next.Add(1) - 1) {
				dirs := []string{filepath.Join(homes[i], "work", "Applications")}
				if cache {
					dirs = append(dirs, filepath.Join(homes[i], "packages"))
				}
				for _, d := range dirs {
					entries, err := os.ReadDir(d)
					if os.IsNotExist(err) {
						continue
					}
					for _, e := range entries {
						if err == nil {
							err = os.RemoveAll(filepath.Join(d, e.Name()))
						}
					}
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if err := runProgram("sync"); err != nil {
		b.Fatal(err)
	}
}

// acquisition is the load of BenchmarkPackageAcquisition100Agents: the
// node and agents, the homes, the project, the package's size.
type acquisition struct {
	l       *agentLoad
	homes   []string
	project *deployProject
	size    int64 // the package file's
}

// BenchmarkPackageAcquisition100Agents measures a deployment of a 100 MiB
// package (a tar of one file of random bytes: extracting it is one copy)
// to 100 simulated polling agents (one simagents process, as
// BenchmarkAgentsFanOut's, of role pkg in the environment Sim) on one node
// with the default settings. The package is uploaded once; the project's
// process is one Octopus.TentaclePackage step on role pkg, at most
// deploy.DefaultWindow (10) targets at once. Each agent fetches the file
// from the node (DeployPackage) unless its cache (<home>/packages, by
// SHA-256) has it, and extracts it into a new folder. Sub-benchmarks:
// cache=cold: each iteration first empties every agent's cache (and
// extracted folders), then deploys a new release; cache=warm: each
// iteration removes the extracted folders only (the disk would fill) and
// deploys a new release, which every agent finds in its cache (if an agent
// lacks it, one deployment that is not measured fills the caches first).
// Between iterations the file systems are synced and the benchmark pauses
// 0–1 s. It reports the deployment task's queue_time to completed_time;
// the CPU time over the deployment of the node, of the simagents process
// (the 100 agents: TLS, SHA-256, writing, extracting), of PostgreSQL, of
// the kernel threads (writeback) and of the other processes that lived
// through it (other work on the machine), and the machine's; the bytes the node served, from the deployment's log
// (the targets that say "sent" × the file's size; those that say "found in
// cache, nothing sent" count nothing) and the bytes the node wrote through
// system calls (/proc/<pid>/io wchar: the TLS records to the agents, plus
// its log and database traffic).
func BenchmarkPackageAcquisition100Agents(b *testing.B) {
	const role = "pkg"
	payload := acquirePayloadBytes(b)
	l := newAgentLoad(b, acquireAgents, role)
	homes := l.agentHomes(b)
	if len(homes) != acquireAgents {
		b.Fatalf("%d agent homes, want %d", len(homes), acquireAgents)
	}
	pkgPath := filepath.Join(b.TempDir(), acquireID+"."+acquireVersion+".tar")
	if err := writeTarPackage(pkgPath, payload); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(pkgPath)
	if err != nil {
		b.Fatal(err)
	}
	ans, err := testcluster.UploadPackage(context.Background(), l.node.Client, filepath.Base(pkgPath), "FailIfExists", f)
	f.Close()
	if err != nil || ans.Status != http.StatusCreated {
		b.Fatalf("uploading the package: %v %d %s", err, ans.Status, ans.Body)
	}
	os.Remove(pkgPath)
	a := &acquisition{l: l, homes: homes, size: ans.Package.PackageSizeBytes,
		project: newDeployProject(b, l.node.Client, "Acquire", packageStepOn("Acquire", role, acquireID))}
	b.Logf("package %s %s: %d bytes; load average %s", acquireID, acquireVersion, a.size, loadAverage())
	for _, cache := range []string{"cold", "warm"} {
		b.Run("cache="+cache, func(b *testing.B) { benchmarkAcquisition(b, a, cache == "cold") })
	}
}

func benchmarkAcquisition(b *testing.B, a *acquisition, cold bool) {
	l := a.l
	ctx := context.Background()
	slow := &client.Client{BaseURL: l.node.URL, APIKey: l.node.Client.APIKey, HTTP: &http.Client{Timeout: 5 * time.Minute}}
	if !cold && cachedCount(b, a.homes, a.size) < len(a.homes) {
		clearAgents(b, a.homes, false)
		_, id := a.project.deploy(b, l.node.Client)
		waitTasksDone(b, l.pool, id-1, 50*time.Millisecond, 20*time.Minute)
		readDeployRun(b, l.pool, id).check(b, acquireAgents)
		b.Logf("filled the agents' caches with one deployment (not measured): %d of %d hold the package", cachedCount(b, a.homes, a.size), len(a.homes))
	}
	pid := l.node.Pid()
	simPids := l.simPids()
	var (
		total, perTarget                   samples
		nodeCPU, simCPU, dbCPU, machineCPU []float64
		kernelCPU, othersCPU, unattributed []float64
		served, wrote, atOnce              []float64
		runs                               runLog
		unfinished                         int
	)
	for b.Loop() {
		clearAgents(b, a.homes, cold)
		if n := cachedCount(b, a.homes, a.size); (cold && n != 0) || (!cold && n != len(a.homes)) {
			b.Fatalf("%d of %d agents hold the package in their cache before a cache=%s deployment", n, len(a.homes), map[bool]string{true: "cold", false: "warm"}[cold])
		}
		randomPhase(time.Second)
		db := dbPids(b, l.pool)
		io0, err := procIO(pid)
		if err != nil {
			b.Fatal(err)
		}
		n0, s0, d0, self0 := cpuOf(b, pid), cpuOf(b, simPids...), cpuOf(b, db...), cpuOf(b, os.Getpid())
		procs0 := snapshotProcs()
		m0, err := machineBusy()
		if err != nil {
			b.Fatal(err)
		}
		task, id := a.project.deploy(b, l.node.Client)
		waitTasksDone(b, l.pool, id-1, 20*time.Millisecond, 20*time.Minute)
		n1, s1, d1, self1 := cpuOf(b, pid), cpuOf(b, simPids...), cpuOf(b, db...), cpuOf(b, os.Getpid())
		m1, _ := machineBusy()
		kern, other := snapshotProcs().since(procs0, slices.Concat([]int{pid, os.Getpid()}, simPids, db)...)
		io1, _ := procIO(pid)
		w0, w1 := io0.wchar, io1.wchar
		r := readDeployRun(b, l.pool, id)
		bad := noteUnfinished(b, task, r.check(b, acquireAgents), &unfinished)
		text, err := testcluster.TaskLog(ctx, slow, task)
		if err != nil {
			b.Fatal(err)
		}
		sent := strings.Count(text, fmt.Sprintf("Package %s %s sent (", acquireID, acquireVersion))
		inCache := strings.Count(text, "found in cache, nothing sent")
		if sent+inCache != acquireAgents || (cold && sent != acquireAgents) || (!cold && inCache != acquireAgents) {
			b.Fatalf("%s: %d targets were sent the package and %d found it in their cache (cache=%v cold)", task, sent, inCache, cold)
		}
		if n := cachedCount(b, a.homes, a.size); n != len(a.homes) {
			b.Fatalf("after %s, %d of %d agents hold the package in their cache", task, n, len(a.homes))
		}
		oh, once := r.perCommand(0)
		firstCreated, _, _, lastFinished := r.commandSpan()
		nc, sc, dc, mc := (n1 - n0).Seconds(), (s1 - s0).Seconds(), (d1 - d0).Seconds(), (m1 - m0).Seconds()
		bc, kc, oc := (self1 - self0).Seconds(), kern.Seconds(), other.Seconds()
		uc := mc - nc - sc - dc - bc - kc - oc
		total, perTarget = append(total, r.total()), append(perTarget, oh)
		nodeCPU, simCPU, dbCPU, machineCPU = append(nodeCPU, nc), append(simCPU, sc), append(dbCPU, dc), append(machineCPU, mc)
		kernelCPU, othersCPU, unattributed = append(kernelCPU, kc), append(othersCPU, oc), append(unattributed, uc)
		served, wrote, atOnce = append(served, mib(int64(sent)*a.size)), append(wrote, mib(w1-w0)), append(atOnce, once)
		runs.add("%s: %.0f ms (first command created +%.0f ms, last result +%.0f ms); one target's command %.0f ms median, %.1f targets at once; sent to %d targets = %.0f MiB, %d found it in cache; node wrote %.0f MiB; CPU node %.1f s, agents %.1f s, db %.1f s, benchmark %.1f s, kernel threads %.1f s, other processes %.1f s, unattributed %.1f s, machine %.1f s over %.1f s; load %s%s",
			task, ms(r.total()), ms(firstCreated.Sub(r.queued)), ms(lastFinished.Sub(r.queued)), ms(oh), once, sent, mib(int64(sent)*a.size), inCache,
			mib(w1-w0), nc, sc, dc, bc, kc, oc, uc, mc, r.total().Seconds(), loadAverage(), bad)
	}
	b.StopTimer()
	runs.flush(b)
	total.report(b)
	b.ReportMetric(ms(perTarget.median()), "median_target_ms")
	b.ReportMetric(medianF(atOnce), "targets_at_once")
	b.ReportMetric(medianF(nodeCPU), "node_cpu_s")
	b.ReportMetric(medianF(simCPU), "agents_cpu_s")
	b.ReportMetric(medianF(dbCPU), "db_cpu_s")
	b.ReportMetric(medianF(machineCPU), "machine_cpu_s")
	b.ReportMetric(medianF(kernelCPU), "kthreads_cpu_s")
	b.ReportMetric(medianF(othersCPU), "others_cpu_s")
	b.ReportMetric(medianF(unattributed), "unattributed_cpu_s")
	b.ReportMetric(medianF(served), "served_MiB")
	b.ReportMetric(medianF(wrote), "node_wrote_MiB")
	b.ReportMetric(float64(unfinished), "unfinished_checkpoints")
}

// retentionKeep is how many releases the policy of
// BenchmarkRetention10000Releases keeps.
const retentionKeep = 10

// retentionReleases is how many releases BenchmarkRetention10000Releases
// makes: 10,000, or $BENCH_RETENTION_RELEASES.
func retentionReleases(b *testing.B) int {
	b.Helper()
	s := os.Getenv("BENCH_RETENTION_RELEASES")
	if s == "" {
		return 10000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= retentionKeep {
		b.Fatalf("BENCH_RETENTION_RELEASES=%q is not a number above %d", s, retentionKeep)
	}
	return n
}

// retentionWorkers is how many requests create releases at once.
const retentionWorkers = 4

// setReleaseRetention sets Lifecycles-1's release retention policy to keep
// the newest keep releases.
func setReleaseRetention(b *testing.B, cl *client.Client, keep int) {
	b.Helper()
	ctx := context.Background()
	var lc map[string]any
	if err := cl.Do(ctx, http.MethodGet, "/api/Spaces-1/lifecycles/Lifecycles-1", nil, &lc); err != nil {
		b.Fatal(err)
	}
	lc["ReleaseRetentionPolicy"] = map[string]any{"QuantityToKeep": keep, "ShouldKeepForever": false, "Unit": "Items", "Strategy": "Count"}
	if err := cl.Do(ctx, http.MethodPut, "/api/Spaces-1/lifecycles/Lifecycles-1", lc, nil); err != nil {
		b.Fatal(err)
	}
}

// createReleases creates releases 2.0.first to 2.0.(first+n-1) of the
// project through the API (POST /api/Spaces-1/releases/create/v1),
// retentionWorkers requests at once.
func createReleases(b *testing.B, cl *client.Client, project string, first, n int) {
	b.Helper()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ctx := context.Background()
	for range retentionWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				v := fmt.Sprintf("2.0.%d", first+i)
				if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/releases/create/v1",
					map[string]any{"spaceId": "Spaces-1", "projectName": project, "releaseVersion": v}, nil); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("creating release %s: %w", v, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

// countReleases returns how many releases the cluster's database holds.
func countReleases(b *testing.B, pool *pgxpool.Pool) int {
	b.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM releases`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// retentionRun is one run of the Retention job as the database and its
// log have it.
type retentionRun struct {
	id                         int64
	queued, started, completed time.Time
	listed, deletedAt          time.Time // its lines "N releases are beyond ..." and "Deleted N releases ..."
	beyond, deleted            int
	releasesLeft               int
	nodeCPU, dbCPU             time.Duration // from the trigger to the end
}

func (r retentionRun) took() time.Duration { return r.completed.Sub(r.started) }

// runRetention makes the leader queue the Retention job at its next sweep
// (within a heartbeat) by clearing the job's last run, as on a cluster's
// first start (the interval stays at its default, an hour, so no second
// run follows), waits until the run has ended, and reads it.
func runRetention(b *testing.B, c *testcluster.Cluster, pool *pgxpool.Pool) retentionRun {
	b.Helper()
	ctx := context.Background()
	prev := maxTaskID(b, pool)
	pid, db := c.Nodes[0].Pid(), dbPids(b, pool)
	n0, d0 := cpuOf(b, pid), cpuOf(b, db...)
	if _, err := pool.Exec(ctx, `UPDATE schedules SET last_run = NULL WHERE job = 'Retention'`); err != nil {
		b.Fatal(err)
	}
	var r retentionRun
	testcluster.Eventually(b, 30*time.Second, func() error {
		return pool.QueryRow(ctx, `SELECT id FROM tasks WHERE name = 'Retention' AND id > $1 ORDER BY id LIMIT 1`, prev).Scan(&r.id)
	})
	waitTasksDone(b, pool, prev, 10*time.Millisecond, 20*time.Minute)
	r.nodeCPU, r.dbCPU = cpuOf(b, pid)-n0, cpuOf(b, db...)-d0
	var (
		state     string
		completed *time.Time
		others    int
	)
	if err := pool.QueryRow(ctx, `SELECT state, queue_time, start_time, completed_time FROM tasks WHERE id = $1`, r.id).
		Scan(&state, &r.queued, &r.started, &completed); err != nil {
		b.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE id > $1 AND id <> $2`, prev, r.id).Scan(&others); err != nil {
		b.Fatal(err)
	}
	if state != "Success" || completed == nil || others != 0 {
		b.Fatalf("the Retention run ServerTasks-%d ended %s (%d other tasks ran meanwhile)", r.id, state, others)
	}
	r.completed = *completed
	lines, err := taskLogLines(c.Storage, r.id)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range lines {
		switch {
		case strings.Contains(l.Text, "releases are beyond their lifecycle's retention policy"):
			r.listed = l.Time
			fmt.Sscanf(l.Text, "%d releases", &r.beyond)
		case strings.HasPrefix(l.Text, "Deleted ") && strings.Contains(l.Text, " releases, with their deployments"):
			r.deletedAt = l.Time
			fmt.Sscanf(l.Text, "Deleted %d releases", &r.deleted)
		}
	}
	if r.listed.IsZero() || r.deletedAt.IsZero() {
		b.Fatalf("the log of the Retention run ServerTasks-%d lacks its lines on releases (%d lines)", r.id, len(lines))
	}
	r.releasesLeft = countReleases(b, pool)
	return r
}

// taskLogLines returns the lines of a task's log segments in the cluster's
// storage, segment after segment.
func taskLogLines(storage string, task int64) ([]logLine, error) {
	dir := filepath.Join(storage, "tasklogs", strconv.FormatInt(task, 10))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []logLine
	for _, e := range entries { // in epoch order: the names are zero-padded
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for _, raw := range strings.Split(string(text), "\n") {
			var l logLine
			if json.Unmarshal([]byte(raw), &l) == nil {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// BenchmarkRetention10000Releases measures the Retention job (housekeeping)
// over one project of 10,000 releases on one node. The releases are
// created through the API (POST /api/Spaces-1/releases/create/v1, four
// requests at once; their creation is not measured), none deployed; the
// project's process is one script step on the node. One iteration tops the
// project up to 10,000 releases, then runs the job three times
// (runRetention): with Lifecycles-1's release retention policy at Items
// 10,000 (nothing to delete: the cost of reading 10,000 releases), at
// Items 10 (it deletes 9,990), and again at Items 10 (nothing to delete
// over the 10 left). It reports each run's time from its task's
// start_time to completed_time, the part from the start to its line "N
// releases are beyond ..." (reading the project's releases and
// deployments) and from there to its line "Deleted N releases ..." (the
// deleting, in fenced units of work of 100 releases), the releases
// deleted, and the rate of the release creation.
func BenchmarkRetention10000Releases(b *testing.B) {
	total := retentionReleases(b)
	c, node, pool := newPackageNode(b)
	cl := node.Client
	const project = "Retained"
	newDeployProject(b, cl, project, scriptStep("Say", "", 0, "echo deployed"))
	var (
		scan, del, idle                samples
		listing, deleting, createRates []float64
		deleted                        []float64
		runs                           runLog
	)
	made := 0
	for b.Loop() {
		have := countReleases(b, pool)
		t0 := time.Now()
		createReleases(b, cl, project, made+1, total-have)
		made += total - have
		created := time.Since(t0)
		createRates = append(createRates, float64(total-have)/created.Seconds())
		if n := countReleases(b, pool); n != total {
			b.Fatalf("%d releases, want %d", n, total)
		}
		if _, err := pool.Exec(context.Background(), "ANALYZE"); err != nil {
			b.Fatal(err)
		}
		setReleaseRetention(b, cl, total)
		s := runRetention(b, c, pool)
		if s.deleted != 0 || s.releasesLeft != total {
			b.Fatalf("the run with nothing to delete deleted %d releases; %d left", s.deleted, s.releasesLeft)
		}
		setReleaseRetention(b, cl, retentionKeep)
		d := runRetention(b, c, pool)
		if d.deleted != total-retentionKeep || d.releasesLeft != retentionKeep {
			b.Fatalf("the run deleted %d releases (%d beyond the policy); %d left, want %d", d.deleted, d.beyond, d.releasesLeft, retentionKeep)
		}
		e := runRetention(b, c, pool)
		if e.deleted != 0 || e.releasesLeft != retentionKeep {
			b.Fatalf("the second run at Items %d deleted %d releases; %d left", retentionKeep, e.deleted, e.releasesLeft)
		}
		scan, del, idle = append(scan, s.took()), append(del, d.took()), append(idle, e.took())
		listing, deleting = append(listing, ms(d.listed.Sub(d.started))), append(deleting, ms(d.deletedAt.Sub(d.listed)))
		deleted = append(deleted, float64(d.deleted))
		runs.add("created %d releases in %.1f s (%.0f/s); Items %d: ServerTasks-%d %.0f ms (listed +%.0f ms), deleted %d; Items %d: ServerTasks-%d %.0f ms (queued to started %.0f ms, listed %d beyond the policy +%.0f ms, deleted %d by +%.0f ms; CPU node %.1f s, db %.1f s), %d left; again: ServerTasks-%d %.0f ms (listed +%.0f ms), deleted %d; load %s",
			total-have, created.Seconds(), createRates[len(createRates)-1],
			total, s.id, ms(s.took()), ms(s.listed.Sub(s.started)), s.deleted,
			retentionKeep, d.id, ms(d.took()), ms(d.started.Sub(d.queued)), d.beyond, ms(d.listed.Sub(d.started)), d.deleted, ms(d.deletedAt.Sub(d.started)), d.nodeCPU.Seconds(), d.dbCPU.Seconds(), d.releasesLeft,
			e.id, ms(e.took()), ms(e.listed.Sub(e.started)), e.deleted, loadAverage())
	}
	b.StopTimer()
	runs.flush(b)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(del.median()), "delete_ms")
	b.ReportMetric(medianF(listing), "delete_listing_ms")
	b.ReportMetric(medianF(deleting), "delete_deleting_ms")
	b.ReportMetric(medianF(deleted), "deleted")
	b.ReportMetric(ms(scan.median()), "nothing_10000_ms")
	b.ReportMetric(ms(idle.median()), "nothing_10_ms")
	b.ReportMetric(medianF(createRates), "created_releases/s")
}
