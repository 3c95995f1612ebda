package host

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestOSDescriptionNamesThePlatform(t *testing.T) {
	if d := OSDescription(); !strings.Contains(d, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("OSDescription() = %q; want it to name %s/%s", d, runtime.GOOS, runtime.GOARCH)
	}
}

func TestAddressesPutLoopbackLast(t *testing.T) {
	addrs := Addresses()
	if len(addrs) == 0 {
		t.Fatal("no addresses, not even loopback")
	}
	seenLoopback := false
	for _, a := range addrs {
		loop := a == "::1" || strings.HasPrefix(a, "127.")
		if seenLoopback && !loop {
			t.Fatalf("Addresses() = %v: %s follows a loopback address", addrs, a)
		}
		seenLoopback = seenLoopback || loop
	}
}

func TestDisk(t *testing.T) {
	dir := t.TempDir()
	free, total, err := Disk(dir)
	if err != nil || total == 0 || free > total {
		t.Fatalf("Disk(%s) = %d, %d, %v", dir, free, total, err)
	}
	if _, _, err := Disk(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("Disk of a missing path: %v; want a not-exist error", err)
	}
}
