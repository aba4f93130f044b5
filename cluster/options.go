package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// Options say how to reach etcd and who this gateway is.
type Options struct {
	// Endpoints are etcd client URLs ("https://etcd1:2379").
	Endpoints []string
	// Gateway is this gateway's name in the cluster.
	Gateway string
	// Prefix starts every key ("/scstd/").
	Prefix string
	// LeaseTTL is the lease's time to live, whole seconds.
	LeaseTTL time.Duration
	// DialTimeout bounds a connection attempt and each request.
	DialTimeout time.Duration
	// CAFile, CertFile and KeyFile are PEM files for https endpoints: the
	// authorities to trust ("": the system's) and a client certificate.
	CAFile, CertFile, KeyFile string
	// Username and Password log in to etcd ("": no authentication).
	Username, Password string
}

// memberKey is this gateway's member key.
func (o Options) memberKey() string { return o.membersPrefix() + o.Gateway }

// membersPrefix starts every member key.
func (o Options) membersPrefix() string { return o.Prefix + "gateways/" }

// tlsConfig returns the TLS configuration of https endpoints: the CA file
// (read now) and the client certificate, read again at each handshake so
// that rotated files apply at the next connection.
func (o Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		// Fail now on files that cannot be read, rather than at each
		// handshake with a less clear error.
		if _, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile); err != nil {
			return nil, fmt.Errorf("cert_file, key_file: %w", err)
		}
		certFile, keyFile := o.CertFile, o.KeyFile
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, errors.Join(errors.New("client certificate"), err)
			}
			return &c, nil
		}
	}
	return cfg, nil
}
