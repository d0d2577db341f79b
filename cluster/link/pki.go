package link

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/keyraft/keyraft/internal/certgen"
)

// ClusterServerName is the DNS name every node certificate carries and
// every node verifies: nodes are found by address, but trusted by the
// cluster CA, so the name is the cluster's, not the host's.
const ClusterServerName = "cluster.keyraft.internal"

// ClusterCA is the certificate authority of one cluster, created at init
// and kept barrier-encrypted in the state machine. It signs node
// certificates for the cluster port.
type ClusterCA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertPEM is the CA certificate (public).
	CertPEM []byte
}

// NewClusterCA creates a self-signed ECDSA P-256 CA valid for ten years.
func NewClusterCA(clusterID string, now time.Time) (*ClusterCA, error) {
	ca, err := certgen.NewCA("keyraft cluster CA "+clusterID, now, now.AddDate(10, 0, 0).Sub(now))
	if err != nil {
		return nil, err
	}
	return &ClusterCA{Cert: ca.Cert, Key: ca.Key, CertPEM: ca.CertPEM}, nil
}

// ParseClusterCA loads a CA from its PEM certificate and PKCS#8 key.
func ParseClusterCA(certPEM, keyDER []byte) (*ClusterCA, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("link: cluster CA certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("link: cluster CA key does not match its certificate")
	}
	return &ClusterCA{Cert: cert, Key: key, CertPEM: certPEM}, nil
}

// KeyDER returns the CA key as PKCS#8 DER, for barrier-encrypted storage.
func (ca *ClusterCA) KeyDER() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(ca.Key) }

// IssueNode signs a certificate for a node, valid for both serving and
// dialing on the cluster port, with ClusterServerName and the node ID as
// names, for the given lifetime.
func (ca *ClusterCA) IssueNode(nodeID string, now time.Time, lifetime time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := ca.sign(nodeID, &key.PublicKey, now, lifetime)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func (ca *ClusterCA) sign(nodeID string, pub any, now time.Time, lifetime time.Duration) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: certgen.Serial(),
		Subject:      pkix.Name{CommonName: nodeID},
		DNSNames:     []string{ClusterServerName},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("link: signing node certificate: %w", err)
	}
	return der, nil
}

// Pool returns a pool holding only the CA, for verifying peers.
func (ca *ClusterCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Identity is a node's cluster credentials in PEM form: its certificate,
// its private key and the CA it trusts. A node keeps it in its data
// directory (mode 0600) so that it can replicate the Raft log while
// sealed; it grants cluster traffic (ciphertext only), never a key.
type Identity struct {
	CertPEM []byte `json:"cert"`
	KeyPEM  []byte `json:"key"`
	CAPEM   []byte `json:"ca"`
}

// TLS parses the identity into a certificate and a pool of its CA.
func (id Identity) TLS() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("link: node certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(id.CAPEM) {
		return tls.Certificate{}, nil, errors.New("link: cluster CA is not a PEM certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("link: node certificate does not chain to the cluster CA: %w", err)
	}
	cert.Leaf = leaf
	return cert, pool, nil
}

// NewNodeKey makes a node's private key and a certificate request for it,
// naming nodeID. The key stays with the node; the request goes to the
// leader, which signs it once the node has proved it holds the unseal
// material.
func NewNodeKey(nodeID string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeID},
	}, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// SignCSR checks a node's certificate request (PEM, self-signed, naming
// nodeID) and signs a node certificate for its key. Only the public key
// of the request is used: names and usages are the CA's choice.
func (ca *ClusterCA) SignCSR(csrPEM []byte, nodeID string, now time.Time, lifetime time.Duration) ([]byte, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("link: certificate request is not PEM")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("link: certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("link: certificate request signature: %w", err)
	}
	if csr.Subject.CommonName != nodeID {
		return nil, fmt.Errorf("link: certificate request names %q, not %q", csr.Subject.CommonName, nodeID)
	}
	der, err := ca.sign(nodeID, csr.PublicKey, now, lifetime)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// IssueIdentity makes a key and a signed certificate for nodeID in one
// step (the node that creates the CA at init uses it for itself).
func (ca *ClusterCA) IssueIdentity(nodeID string, now time.Time, lifetime time.Duration) (Identity, error) {
	keyPEM, csrPEM, err := NewNodeKey(nodeID)
	if err != nil {
		return Identity{}, err
	}
	certPEM, err := ca.SignCSR(csrPEM, nodeID, now, lifetime)
	if err != nil {
		return Identity{}, err
	}
	return Identity{CertPEM: certPEM, KeyPEM: keyPEM, CAPEM: ca.CertPEM}, nil
}
