// Package cluster is a gateway's membership in a cluster of scstd
// gateways that export the same logical units from shared storage, with
// their common state in etcd (docs/scale-out.md): membership by lease,
// configuration drift, persistent reservations shared by
// compare-and-swap, the ALUA states of every gateway's ports, drain,
// and the COMPARE AND WRITE token.
//
// # What it does
//
// Join starts a Node: a goroutine that connects to etcd (TLS, user and
// password as Options say), grants a lease of Options.LeaseTTL, puts the
// member key PREFIX/gateways/NAME with it, and keeps it alive. Every
// keep-alive is one LeaseKeepAliveOnce, every LeaseTTL/6, whose send time
// gives the local lease deadline: etcd renews the lease when it handles
// the request, no earlier than it was sent, so the lease lives at least
// until send time + TTL by etcd's clock; the deadline takes a 10⁻³ rate
// difference of the two clocks off that.
//
//	key                       value (JSON)                        bound to
//	PREFIX/gateways/NAME      Member: name, host, pid, portals,   the gateway's lease
//	                          version, start, config hash
//
// The watch of the prefix (below) keeps the member list:
// a gateway that stops refreshing its lease disappears from it when etcd
// expires the lease (within the TTL plus etcd's expiry check), and a
// gateway that stops cleanly revokes its lease (Close), so it leaves at
// once. Each member carries the hash of the configuration it runs;
// Status compares it with this gateway's (drift).
//
// Losing etcd is logged and shown in Status; logical units without
// reservation state serve on, reservation changes are refused. When etcd
// answers again the gateway keeps its lease if etcd still has it (a
// restarted etcd keeps its leases), and otherwise grants a new one and
// joins again.
//
// A gateway name is one member key: a second daemon that joins under a
// name whose key exists under another live lease is refused (and retries,
// so that a gateway restarted after a crash joins once its old lease has
// expired). Reconnect applies new connection settings make-before-break:
// the new connection takes over the member key from the old lease
// (compare-and-swap on the key's lease) before the old lease is revoked,
// so the others never see the gateway leave.
//
// # The shared state (phase 2)
//
// Once it holds its member key (as "transitioning") the session reads
// the whole prefix at one revision and watches it from the next
// (state.go): members and their states, acknowledgements, drains, and
// each logical unit's reservations, which go, in order, to the device
// attached for it (Node.Attach, reconcile.SharedState). Whatever others
// wait for is acknowledged in PREFIX/acks/NAME once applied. When the
// other members have acknowledged its join, the gateway's ports take
// their configured state, or standby when drained.
//
// A reservation change (scsi.SharedPR, lu.go) is one transaction that
// compares the key's revision; Settle waits until every member has
// acknowledged it, and revokes the lease of one that does not within a
// TTL. A gateway fences itself from logical units with reservation
// state two thirds of a TTL after its last renewed keep-alive: their
// commands answer TARGET PORT IN UNAVAILABLE STATE until etcd renews the
// lease. A reservation value the gateway cannot read (another scstd
// version's, or edited by hand) leaves the unit's state unknown: media
// access waits as for a stale state, its reservation changes are
// refused, and the gateway does not acknowledge the value's revision,
// until a value it can read replaces it. COMPARE AND WRITE runs under
// a per-logical-unit token, a key under the holder's lease handed over
// on request (caw.go). Drain, undrain and evict are admin.go.
//
// # What it does not do
//
// It implements no consensus: every decision is one etcd transaction.
// Without a cluster block the daemon never calls Join, nothing of this
// package runs, and the devices keep their reservations alone.
package cluster
