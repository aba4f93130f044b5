package main

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// raiseNoFile raises the soft limit on open files to the hard limit, so
// that the connection caps, not the kernel, decide when connections are
// refused, and returns the limit now in force (0 when it cannot be
// read). The iSCSI server keeps a reserve below it for the admin socket,
// backing files and known initiators.
func raiseNoFile(log *slog.Logger) int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open file limit", "err", err)
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("cannot raise the open file limit", "soft", lim.Cur, "hard", lim.Max, "err", err)
		} else {
			lim = raised
		}
	}
	log.Info("open file limit", "limit", lim.Cur)
	return int(min(lim.Cur, 1<<30))
}
