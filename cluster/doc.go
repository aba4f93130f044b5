// Package cluster is a gateway's membership in a cluster of scstd
// gateways that export the same logical units from shared storage, with
// their common state in etcd (docs/scale-out.md). It is phase 1 of that
// design: the gateway joins, keeps a lease, publishes who it is, and
// watches who else is there; persistent reservations, ALUA and COMPARE
// AND WRITE across gateways come later.
//
// # What it does
//
// Join starts a Node: a goroutine that connects to etcd (TLS, user and
// password as Options say), grants a lease of Options.LeaseTTL, puts the
// member key PREFIX/gateways/NAME with it, and keeps it alive. Every
// keep-alive is one LeaseKeepAliveOnce, every LeaseTTL/3, whose send time
// gives the local lease deadline: etcd renews the lease when it handles
// the request, no earlier than it was sent, so the lease lives at least
// until send time + TTL by etcd's clock; the deadline takes a 10⁻³ rate
// difference of the two clocks off that. Phase 2 fences the gateway
// before the deadline; phase 1 only reports it.
//
//	key                       value (JSON)                        bound to
//	PREFIX/gateways/NAME      Member: name, host, pid, portals,   the gateway's lease
//	                          version, start, config hash
//
// A second goroutine watches PREFIX/gateways/ and keeps the member list:
// a gateway that stops refreshing its lease disappears from it when etcd
// expires the lease (within the TTL plus etcd's expiry check), and a
// gateway that stops cleanly revokes its lease (Close), so it leaves at
// once. Each member carries the hash of the configuration it runs;
// Status compares it with this gateway's (drift).
//
// Losing etcd is logged and shown in Status, and changes nothing else:
// the daemon serves on. When etcd answers again the gateway keeps its
// lease if etcd still has it (a restarted etcd keeps its leases), and
// otherwise grants a new one and joins again.
//
// A gateway name is one member key: a second daemon that joins under a
// name whose key exists under another live lease is refused (and retries,
// so that a gateway restarted after a crash joins once its old lease has
// expired). Reconnect applies new connection settings make-before-break:
// the new connection takes over the member key from the old lease
// (compare-and-swap on the key's lease) before the old lease is revoked,
// so the others never see the gateway leave.
//
// # What it does not do
//
// It implements no consensus and keeps nothing but the member key in
// etcd. It never touches the command path: without a cluster block the
// daemon never calls Join, and nothing of this package runs.
package cluster
