package testcluster

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// StartBalancedWith starts HAProxy in front of nodes as StartBalanced
// does (round-robin, no stickiness, each answer naming its node in
// X-Served-By), with options added to its defaults section, such as
// "option http-no-delay" (which sends each server-sent event on at once,
// where HAProxy otherwise may hold a small one back for up to 200 ms).
func StartBalancedWith(tb testing.TB, options []string, nodes ...*Node) *Balanced {
	tb.Helper()
	front := "127.0.0.1:" + strconv.Itoa(FreePort(tb))
	var servers strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&servers, "  server %s %s\n", n.Config.Name, strings.TrimPrefix(n.URL, "http://"))
	}
	var extra strings.Builder
	for _, o := range options {
		fmt.Fprintf(&extra, "  %s\n", o)
	}
	lb := StartHAProxy(tb, fmt.Sprintf(`defaults
  mode http
  option http-server-close
%s  timeout connect 2s
  timeout client 30s
  timeout server 30s

frontend api
  bind %s
  default_backend nodes

backend nodes
  balance roundrobin
  http-response set-header %s %%[srv_name]
%s`, extra.String(), front, ServedBy, servers.String()))
	return &Balanced{HAProxy: lb, URL: "http://" + front, Nodes: nodes}
}
