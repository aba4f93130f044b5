// Package isns is scstd's iSNS client (RFC 4171): it registers the
// daemon's network entity, its portals and its enabled targets with an
// iSNS server, keeps the registration alive, removes it on shutdown, and
// answers access-control questions from the server's discovery domains.
//
// iSNSP message layout (RFC 4171 §5.1, §5.5), all integers big-endian:
//
//	 0               2               4               6
//	+---------------+---------------+---------------+---------------+
//	| version (1)   | function ID   | PDU length    | flags         |
//	+---------------+---------------+---------------+---------------+
//	| transaction ID| sequence ID   |  payload (PDU length bytes) ...
//	+---------------+---------------+-------------------------------+
//
// A request payload is a list of TLV attributes: the Source attribute,
// the Message Key attributes, a Delimiter (tag 0, length 0), then the
// Operating attributes. A response payload starts with a 4-byte status.
// Each attribute is
//
//	| tag (4) | length (4, a multiple of 4) | value (length bytes) |
//
// strings are NUL-terminated and zero-padded to 4 bytes, IP addresses are
// 16 bytes (IPv4 mapped into IPv6), ports are 4 bytes (bit 16 set for UDP).
// A message longer than one PDU is split into PDUs numbered by sequence ID,
// the first flagged FIRST and the last LAST.
//
// What scstd does with it: one DevAttrReg with the Replace flag carries the
// whole registration (entity, portals, targets as nodes of type Target,
// one portal group per target and portal) and is sent again whenever the
// set changes (Update) and every half registration period (Run); DevDereg
// of the entity on Close. Access control is a DevAttrQry whose Source is
// the target and whose key is the initiator's name: the server answers
// only with nodes that share a discovery domain with the source. ESI and
// SCN are not used: the registration period keeps the entity alive and
// access answers are cached for a few seconds only.
//
// The package speaks the protocol and nothing else. Package reconcile
// owns the clients: one per isns_server block, told the enabled targets
// and the listening portals after every reload (Update), kept alive
// (Run), closed when the block goes or the daemon stops (Close). The
// iSCSI server asks a Client, through its own iscsi.AccessControl
// interface, whether an initiator may see a target (Allowed).
package isns
