package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
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
	// IDs are the gateways' ids by name (member blocks): gateway n's
	// target ports carry target portal group tag n.
	IDs map[string]uint16
}

// The keys under the prefix P (docs/scale-out.md, "What lives in etcd"):
//
//	P/gateways/<gw>          member (lease)     Member: who, config hash, state
//	P/acks/<gw>              -                  the revision the gateway applied
//	P/alua/<gw>              -                  "standby": drained
//	P/revoked/<gw>           -                  a lease another gateway revoked
//	P/lus/<naa>/pr           -                  the logical unit's reservations
//	P/lus/<naa>/held         -                  exists while it has some: its
//	                                            create revision is since when
//	P/lus/<naa>/caw          holder's lease     the atomic token's holder
//	P/lus/<naa>/caw-want/<gw> wanter's lease    a gateway waiting for the token
const (
	dirGateways = "gateways"
	dirAcks     = "acks"
	dirALUA     = "alua"
	dirRevoked  = "revoked"
	dirLUs      = "lus"
)

// key returns the key P/dir/name.
func (o Options) key(dir, name string) string { return o.Prefix + dir + "/" + name }

// memberKey is this gateway's member key.
func (o Options) memberKey() string { return o.key(dirGateways, o.Gateway) }

// membersPrefix starts every member key.
func (o Options) membersPrefix() string { return o.Prefix + dirGateways + "/" }

// luKey returns the key of a logical unit's item (pr, held, caw).
func (o Options) luKey(naa, item string) string { return o.Prefix + dirLUs + "/" + naa + "/" + item }

// wantKey returns the key by which gateway gw asks for a logical unit's
// atomic token.
func (o Options) wantKey(naa, gw string) string { return o.luKey(naa, "caw-want/"+gw) }

// splitKey cuts a key under the prefix into its parts: dir and name, or
// for a logical unit "lus", its NAA, its item and the gateway of a want
// key. ok is false for a key that is none of these.
func (o Options) splitKey(key string) (dir, name, item, gw string, ok bool) {
	rest, found := strings.CutPrefix(key, o.Prefix)
	if !found {
		return "", "", "", "", false
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] != dirLUs && parts[1] != "":
		return parts[0], parts[1], "", "", true
	case len(parts) == 3 && parts[0] == dirLUs:
		return dirLUs, parts[1], parts[2], "", true
	case len(parts) == 4 && parts[0] == dirLUs && parts[2] == "caw-want":
		return dirLUs, parts[1], "caw-want", parts[3], true
	}
	return "", "", "", "", false
}

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
