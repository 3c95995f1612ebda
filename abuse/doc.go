// Package abuse is the abuse suite of issue 9 ("Hardening"): tests that
// attack a real `cuttle server` process, with a real agent certificate
// registered as a machine, and check that the node stays within its limits
// (DESIGN.md, invariant 13: every input is bounded).
//
// Each test runs one attack from loopback addresses of its own (127.0.0.2,
// 127.0.0.3), so that per-address bounds hit the attacker and not the
// genuine traffic on 127.0.0.1, and checks, over the attack:
//
//   - the node's resident memory grows by less than 256 MiB (its peak,
//     VmHWM, against its resident memory before the attack);
//   - its ping answers every call, the 99th percentile within 100 ms of
//     the baseline's, a ping of 1.5 s just before the attack (a few ms on
//     an idle machine; what other work costs the machine is not the
//     attack's doing). The ping calls every 20 ms on a new connection,
//     from a process of its own so that the test's own work does not
//     count;
//   - the attacker's connections are closed by the node within its bound;
//   - a genuine agent on 127.0.0.1 runs a script to completion meanwhile.
//
// The attacks: a flood of agent reports (for the attacker's own command and
// for another machine's), huge lines in reports, the details of a huge task
// log, 2,000 slow connections on the API port and on the polling port, an
// oversized artifact upload, and output after a command's outcome.
//
// A node that lacks a bound is killed once its resident memory passes
// about 3 GB, so that the suite fails instead of exhausting the machine.
// The package holds tests only. They run only with CUTTLE_ABUSE=1, alone:
// `CUTTLE_ABUSE=1 go test ./abuse/` (./scripts/test runs it so, after the
// other packages), since beside other packages' tests the ping's figures
// would measure their load, not the node's bounds.
package abuse
