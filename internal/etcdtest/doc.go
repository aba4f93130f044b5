// Package etcdtest runs a real etcd server for tests: Debian's etcd-server
// (3.4), which `make deps` installs, as one member on loopback ports with a
// temporary data directory.
//
//	srv := etcdtest.Start(t, etcdtest.Options{})
//	endpoint := srv.Endpoint() // "http://127.0.0.1:PORT"
//	srv.Stop()                 // SIGTERM by PID; the data stays
//	srv.Start()                // the same member, ports and data again
//
// The server is stopped by its PID when the test ends (SIGTERM, then
// SIGKILL after a timeout), and killed by the kernel if the test binary
// dies (Pdeathsig); nothing is ever stopped by name. With Options.TLS the
// client URL is https and requires a client certificate; the test gets the
// CA, a client certificate and its key as PEM files.
//
// A missing etcd binary fails the test, since `make test` installs it;
// with SCSTD_E2E_OPTIONAL=1 the test is skipped instead.
package etcdtest
