package bench

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// BenchmarkPermissionRevocation measures a revocation through a real
// HAProxy (round-robin over three node processes, each having served and
// cached the grant): a scoped user role is given and deleted through one
// node in turn while requests go through the balancer one after another.
// It reports, over b.N revocations, the median and p99 of the time from
// sending the delete until every node has refused a request (each after
// its last allowed one), and how many requests were allowed after the
// delete's answer arrived (0: the revocation held at once).
//
//	cd bench && go test -run '^$' -bench BenchmarkPermissionRevocation -benchtime 50x
func BenchmarkPermissionRevocation(b *testing.B) {
	c := newCluster(b, 3)
	lb := testcluster.StartBalanced(b, c.Nodes...)
	ctx := testcluster.Context(b, 20*time.Minute)
	g, err := testcluster.NewGrantee(ctx, c.Nodes[0], "rita", cuttle.RoleProjectViewer)
	if err != nil {
		b.Fatal(err)
	}
	const path = "/api/Spaces-1/environments"
	var refusals []time.Duration
	lateAllows := 0
	b.ResetTimer()
	for i := range b.N {
		through := c.Nodes[i%len(c.Nodes)]
		b.StopTimer()
		if err := g.Grant(ctx, through); err != nil {
			b.Fatal(err)
		}
		if err := lb.Allowed(ctx, path, g.Header(), 30*time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sent, answered, err := g.Revoke(ctx, through)
		if err != nil {
			b.Fatal(err)
		}
		last, all, err := lb.Refused(ctx, path, g.Header(), http.StatusForbidden, sent, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		refusals = append(refusals, all)
		if last > answered.Sub(sent) {
			lateAllows++
		}
	}
	b.StopTimer()
	slices.Sort(refusals)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(refusals[len(refusals)/2]), "median-ms")
	b.ReportMetric(ms(refusals[(len(refusals)*99)/100]), "p99-ms")
	b.ReportMetric(ms(refusals[len(refusals)-1]), "max-ms")
	b.ReportMetric(float64(lateAllows), "allowed-after-answer")
}
