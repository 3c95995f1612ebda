// Package host describes the machine this process runs on: its operating
// system, its IP addresses and the space on its disks. Nodes report it in
// the cluster's servers table, agents in their health checks.
package host

import (
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// OSDescription names the operating system, such as "Ubuntu 24.04 LTS
// (linux/amd64)": the PRETTY_NAME of /etc/os-release where there is one,
// with the platform Go was built for; only the platform otherwise.
func OSDescription() string {
	desc := runtime.GOOS + "/" + runtime.GOARCH
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"`) + " (" + desc + ")"
			}
		}
	}
	return desc
}

// Addresses lists this host's unicast IP addresses, loopback last and
// link-local ones left out; none if the interfaces cannot be read.
func Addresses() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out, loop []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		if ipnet.IP.IsLoopback() {
			loop = append(loop, ipnet.IP.String())
		} else {
			out = append(out, ipnet.IP.String())
		}
	}
	return append(out, loop...)
}

// Disk returns the bytes free (to an unprivileged user) and the size, in
// bytes, of the file system that holds path. It fails if path does not
// exist.
func Disk(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
