// Package testtarget runs the real scstd binary for integration tests.
//
// A test describes the configuration it wants as an HCL template and gets a
// running daemon on an ephemeral loopback port:
//
//	tgt := testtarget.Start(t, `
//	iscsi { portals = ["{{.Portal}}"] }
//	handler "vdisk_fileio" {
//	  device "disk0" {
//	    filename = "{{.Dir}}/disk0.img"
//	    size     = "64MiB"
//	  }
//	}
//	target "iqn.2026-11.org.example:t1" { lun "0" { device = "disk0" } }
//	`)
//	url := tgt.LUNURL("iqn.2026-11.org.example:t1", 0) // iscsi://127.0.0.1:PORT/iqn.../0
//
// The helper owns the daemon's whole life: it builds bin/scstd once per test
// binary (or uses $SCSTD_BIN), picks a free port, renders and writes the
// configuration, starts `scstd run -config FILE -admin-socket SOCK`, waits
// until the portal accepts TCP connections, and stops the process by its PID
// in t.Cleanup (SIGTERM, then SIGKILL after a timeout). Reconfigure rewrites
// the file and reloads (SIGHUP, then waits for the admin API to report the
// reload's outcome); Restart stops and starts the daemon on the same files
// and port. The daemon's stderr is logged when the test fails, and a daemon
// that dies on its own fails the test.
//
// SetHost puts the portal on another loopback address (127.0.0.2, ...),
// for several daemons on one machine as a cluster's gateways; Kill ends
// the daemon with SIGKILL, as a crash would, and Start starts it again.
//
// Templates see the fields of Params: {{.Portal}} ("127.0.0.1:PORT"),
// {{.Host}}, {{.Port}} and {{.Dir}} (a per-target scratch directory that
// holds the configuration, the admin socket and the backing files).
//
// The package does not drive initiators; tests run libiscsi's and qemu's
// command-line tools themselves.
package testtarget
