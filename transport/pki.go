package transport

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
	"math/big"
	"net"
	"time"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "keyraft cluster CA " + clusterID},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ClusterCA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// ParseClusterCA loads a CA from its PEM certificate and PKCS#8 key.
func ParseClusterCA(certPEM, keyDER []byte) (*ClusterCA, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("transport: cluster CA certificate is not PEM")
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
		return nil, errors.New("transport: cluster CA key does not match its certificate")
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
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: nodeID},
		DNSNames:     []string{ClusterServerName},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("transport: signing node certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Pool returns a pool holding only the CA, for verifying peers.
func (ca *ClusterCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}
