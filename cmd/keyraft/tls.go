package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyraft/keyraft/internal/certgen"
)

// Default lifetimes of what 'operator tls' makes.
const (
	tlsCADays   = 3650
	tlsCertDays = 825
)

var operatorTLSCACmd = &command{
	name:    "operator tls ca",
	summary: "make a private CA for the API listeners' certificates",
	help: `
Make a certificate authority (ECDSA P-256) for the nodes' API certificates:
DIR/ca.pem, the certificate to give to clients (KEYRAFT_CACERT) and to
joining nodes (retry_join's leader_ca_cert_file), and DIR/ca-key.pem, its
key (mode 0600), which signs the certificates 'operator tls cert' makes.
Existing files are never overwritten. Nothing talks to a server.`,
	run: func(e *env, cmd *command, args []string) error {
		flags, _ := e.flags(cmd)
		dir := flags.String("dir", ".", "the `directory` to write ca.pem and ca-key.pem in")
		name := flags.String("name", "keyraft CA", "the CA's common `name`")
		days := flags.Int("days", tlsCADays, "how many `days` the CA is valid")
		if _, err := e.positional(cmd, flags, args, 0, 0); err != nil {
			return err
		}
		if *days < 1 {
			return &usageError{cmd: cmd, msg: "-days must be at least 1"}
		}
		ca, err := certgen.NewCA(*name, time.Now(), time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		certPath, keyPath := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
		if err := writePair(certPath, ca.CertPEM, keyPath, ca.KeyPEM); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Wrote %s: the CA certificate, for clients (KEYRAFT_CACERT) and joining nodes (leader_ca_cert_file).\n", certPath)
		fmt.Fprintf(e.stdout, "Wrote %s: its key (mode 0600); keep it off the nodes once their certificates are made.\n", keyPath)
		fmt.Fprintf(e.stdout, "Next, for each node: keyraft operator tls cert -ca %s -host ADDRESS[,NAME…]\n", certPath)
		return nil
	},
}

var operatorTLSCertCmd = &command{
	name:    "operator tls cert",
	summary: "make a node's API certificate, signed by the CA of 'operator tls ca'",
	help: `
Make a certificate (ECDSA P-256) for a node's API listener, signed by the
CA in -ca (its key from -ca-key, by default the file beside it that
'operator tls ca' wrote). -host lists the IP addresses and DNS names
clients and other nodes reach the node by; the certificate serves and can
also be presented as a joining node's leader_client_cert_file. Writes
DIR/NAME.pem and DIR/NAME-key.pem (mode 0600), for the listener's
tls_cert_file and tls_key_file. Existing files are never overwritten.`,
	run: func(e *env, cmd *command, args []string) error {
		flags, _ := e.flags(cmd)
		caPath := flags.String("ca", "ca.pem", "the CA certificate `file`")
		caKeyPath := flags.String("ca-key", "", "the CA key `file` (default: the -ca file's name with -key, e.g. ca-key.pem)")
		hosts := flags.String("host", "", "comma-separated IP `addresses and names` of the node (required)")
		dir := flags.String("dir", ".", "the `directory` to write the certificate and key in")
		name := flags.String("name", "api", "the files' `name`: NAME.pem and NAME-key.pem")
		days := flags.Int("days", tlsCertDays, "how many `days` the certificate is valid (at most as long as the CA)")
		if _, err := e.positional(cmd, flags, args, 0, 0); err != nil {
			return err
		}
		var list []string
		for _, h := range strings.Split(*hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				list = append(list, h)
			}
		}
		switch {
		case len(list) == 0:
			return &usageError{cmd: cmd, msg: "-host is required: the node's IP addresses and DNS names, e.g. -host 10.0.0.1,node-1.example"}
		case *days < 1:
			return &usageError{cmd: cmd, msg: "-days must be at least 1"}
		case *name == "" || strings.ContainsAny(*name, `/\`):
			return &usageError{cmd: cmd, msg: "-name must be a file name without a directory; use -dir for that"}
		}
		if *caKeyPath == "" {
			*caKeyPath = strings.TrimSuffix(*caPath, ".pem") + "-key.pem"
		}
		caPEM, err := os.ReadFile(*caPath)
		if err != nil {
			return &hintError{err: err, hint: "make a CA with 'keyraft operator tls ca', or name yours with -ca"}
		}
		caKey, err := os.ReadFile(*caKeyPath)
		if err != nil {
			return &hintError{err: err, hint: "name the CA's key with -ca-key"}
		}
		ca, err := certgen.LoadCA(caPEM, caKey)
		if err != nil {
			return fmt.Errorf("%s and %s: %v", *caPath, *caKeyPath, err)
		}
		certPEM, keyPEM, err := ca.Issue(list, time.Now(), time.Duration(*days)*24*time.Hour)
		if err != nil {
			return &usageError{cmd: cmd, msg: "-host: " + err.Error()}
		}
		certPath, keyPath := filepath.Join(*dir, *name+".pem"), filepath.Join(*dir, *name+"-key.pem")
		if err := writePair(certPath, certPEM, keyPath, keyPEM); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Wrote %s: the certificate for %s, signed by %s.\n", certPath, strings.Join(list, ", "), *caPath)
		fmt.Fprintf(e.stdout, "Wrote %s: its key (mode 0600).\n", keyPath)
		absCert, _ := filepath.Abs(certPath)
		absKey, _ := filepath.Abs(keyPath)
		fmt.Fprintf(e.stdout, "In the node's listener \"tcp\" block:\n    tls_cert_file = %q\n    tls_key_file  = %q\n", absCert, absKey)
		return nil
	},
}

// writePair writes a certificate (mode 0644) and its key (0600), neither
// over an existing file, creating their directory (0700) if need be;
// when the second cannot be written, the first is removed again.
func writePair(certPath string, certPEM []byte, keyPath string, keyPEM []byte) error {
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return err
	}
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return &hintError{err: fmt.Errorf("%s exists", p), hint: "remove it first, or write the files elsewhere with -dir"}
		}
	}
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

// writeNew creates path with mode (never over an existing file) and
// writes b to it.
func writeNew(path string, b []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
