package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// TestNoSecretsAtRest checks promise 1: after real use, including a Raft
// snapshot, no file in the data dir and no line the process logged holds
// a key, a plaintext, the root token or an unseal share, in the clear or
// in hex or base64. The node is stopped with SIGTERM in one variant and
// SIGKILL in the other, scanned, restarted, checked and scanned again.
func TestNoSecretsAtRest(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"sigterm", "sigkill"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			testNoSecretsAtRest(t, stop == "sigkill")
		})
	}
}

func testNoSecretsAtRest(t *testing.T, kill bool) {
	// A small snapshot threshold and interval make Raft snapshot within
	// seconds; trace logging makes the log scan as strict as it can be.
	n := newConfigNodeWith(t, `  snapshot_threshold = 8
  snapshot_interval  = "1s"`, "-log-level=trace")
	n.start()
	sharesB64, _, root := n.initNode(5, 3)
	n.unseal(sharesB64[0], sharesB64[1], sharesB64[2])
	c := n.client(root)

	var secrets secretSet
	secrets.addString("root token", root)
	for i, s := range sharesB64 {
		secrets.add(fmt.Sprintf("unseal share %d", i+1), mustDecodeB64(t, s))
	}

	// Exportable keys of every kind of material, each with two versions.
	keyTypes := map[string]string{
		"x-aes": "aes256-gcm96", "x-chacha": "chacha20-poly1305", "x-ed": "ed25519",
		"x-ec": "ecdsa-p256", "x-hmac": "hmac", "x-rsa": "rsa-2048",
	}
	names := make([]string, 0, len(keyTypes))
	for name := range keyTypes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		write(t, c, "transit/keys/"+name, map[string]any{"type": keyTypes[name], "exportable": true})
		write(t, c, "transit/keys/"+name+"/rotate", nil)
	}
	exported := 0
	for _, name := range names {
		for _, kind := range []string{"encryption-key", "signing-key", "hmac-key"} {
			s, err := c.Logical().Read("transit/export/" + kind + "/" + name)
			if err != nil || s == nil {
				continue // not a kind this key type has
			}
			keysByVersion, _ := s.Data["keys"].(map[string]any)
			for v, material := range keysByVersion {
				m, _ := material.(string)
				label := fmt.Sprintf("%s %s v%s", name, kind, v)
				if err := secrets.addKeyMaterial(label, m); err != nil {
					t.Fatalf("%s: %v", label, err)
				}
				exported++
			}
		}
	}
	// 6 keys × 2 versions: aes and chacha give encryption and hmac keys,
	// ed and ec signing and hmac keys, rsa encryption and signing keys
	// (and maybe hmac), hmac an hmac key.
	if exported < 24 {
		t.Fatalf("exported %d key versions, want at least 24", exported)
	}

	// Plaintexts, single and batched, and a data key.
	var kept []sealed
	for _, key := range []string{"x-aes", "x-chacha", "x-rsa"} {
		m := randomMarker("PLAINTEXT")
		secrets.addString("plaintext encrypted with "+key, m)
		kept = append(kept, sealed{key, encrypt(t, c, key, []byte(m)), []byte(m), "marker"})
	}
	var batch []map[string]any
	var batchPT []string
	for i := 0; i < 3; i++ {
		m := randomMarker("BATCH")
		secrets.addString(fmt.Sprintf("batch plaintext %d", i), m)
		batch = append(batch, map[string]any{"plaintext": b64([]byte(m))})
		batchPT = append(batchPT, m)
	}
	res, _ := write(t, c, "transit/encrypt/x-aes", map[string]any{"batch_input": batch})["batch_results"].([]any)
	if len(res) != len(batch) {
		t.Fatalf("batch encrypt: %d results", len(res))
	}
	for i, r := range res {
		m, _ := r.(map[string]any)
		kept = append(kept, sealed{"x-aes", str(t, m, "ciphertext"), []byte(batchPT[i]), "batch marker"})
	}
	dk := write(t, c, "transit/datakey/plaintext/x-aes", nil)
	secrets.add("datakey plaintext", mustDecodeB64(t, str(t, dk, "plaintext")))
	kept = append(kept, sealed{"x-aes", str(t, dk, "ciphertext"), mustDecodeB64(t, str(t, dk, "plaintext")), "datakey"})

	// Enough Raft entries for a snapshot, then wait for one; then more
	// entries, so the log holds some after the snapshot too.
	write(t, c, "transit/keys/filler", map[string]any{"type": "aes256-gcm96"})
	for i := 0; i < 10; i++ {
		write(t, c, "transit/keys/filler/rotate", nil)
	}
	snapDir := filepath.Join(n.dataDir, "snapshots")
	testwait.Within(t, 60*time.Second, "a Raft snapshot in "+snapDir, func() bool { return hasSnapshot(snapDir) })
	for i := 0; i < 3; i++ {
		write(t, c, "transit/keys/filler/rotate", nil)
	}
	checkDecrypts(t, c, kept)

	if kill {
		n.kill()
	} else if code := n.stop(); code != 0 {
		t.Errorf("SIGTERM: exit code %d, want 0", code)
	}
	scanned := scanForSecrets(t, n, &secrets)
	if scanned["snapshot"] == 0 || scanned["raft.db"] == 0 || scanned["state.db"] == 0 {
		t.Errorf("scanned %v: want raft.db, state.db and a snapshot", scanned)
	}

	// The node comes back from that data dir (with the snapshot in it),
	// sealed; its data is intact; after a second stop nothing leaked
	// either.
	n.start()
	n.unseal(sharesB64[4], sharesB64[3], sharesB64[2])
	checkDecrypts(t, n.client(root), kept)
	if code := n.stop(); code != 0 {
		t.Errorf("SIGTERM after restart: exit code %d, want 0", code)
	}
	scanForSecrets(t, n, &secrets)
}

func hasSnapshot(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "state.bin" {
			found = true
		}
		return nil
	})
	return found
}

// secretSet is what must never be found: each secret with the byte
// strings it may show up as.
type secretSet struct {
	names   []string
	needles [][]byte
}

// add adds secret in the clear, in hex (both cases) and in base64
// (standard and URL alphabets, at every alignment inside a longer base64
// text).
func (s *secretSet) add(name string, secret []byte) {
	if len(secret) < 8 {
		panic("secret too short to search for: " + name)
	}
	s.push(name+" (raw)", secret)
	s.push(name+" (hex)", []byte(hex.EncodeToString(secret)))
	s.push(name+" (HEX)", []byte(strings.ToUpper(hex.EncodeToString(secret))))
	for encName, enc := range map[string]*base64.Encoding{"base64": base64.RawStdEncoding, "base64url": base64.RawURLEncoding} {
		for shift := 0; shift < 3; shift++ {
			s.push(fmt.Sprintf("%s (%s, shift %d)", name, encName, shift), base64Core(enc, secret, shift))
		}
	}
}

func (s *secretSet) addString(name, secret string) { s.add(name, []byte(secret)) }

func (s *secretSet) push(name string, needle []byte) {
	s.names = append(s.names, name)
	s.needles = append(s.needles, needle)
}

// base64Core returns the characters of secret's base64 encoding that do
// not depend on what comes before or after it, when it starts shift bytes
// into a 3-byte group.
func base64Core(enc *base64.Encoding, secret []byte, shift int) []byte {
	buf := append(make([]byte, shift), secret...)
	full := enc.EncodeToString(buf)
	start := (8*shift + 5) / 6
	end := 8 * len(buf) / 6
	return []byte(full[start:end])
}

// addKeyMaterial adds an exported key: base64 (symmetric keys, ed25519)
// or PEM (ECDSA, RSA), with the raw secret numbers inside.
func (s *secretSet) addKeyMaterial(name, material string) error {
	if block, _ := pem.Decode([]byte(material)); block != nil {
		s.add(name+" DER", block.Bytes)
		s.addString(name+" PEM body", pemBody(material))
		switch block.Type {
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return err
			}
			s.add(name+" scalar", k.D.FillBytes(make([]byte, (k.Curve.Params().BitSize+7)/8)))
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return err
			}
			s.add(name+" D", k.D.Bytes())
			for i, p := range k.Primes {
				s.add(name+" prime "+strconv.Itoa(i), p.Bytes())
				s.addString(name+" prime "+strconv.Itoa(i)+" decimal", p.String())
			}
		default:
			return fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(material)
	if err != nil {
		return fmt.Errorf("export is neither PEM nor base64: %v", err)
	}
	s.add(name, raw)
	if len(raw) == ed25519.PrivateKeySize {
		s.add(name+" seed", raw[:ed25519.SeedSize])
	}
	return nil
}

// pemBody is the base64 of a PEM block on one line, without its header.
func pemBody(p string) string {
	var b strings.Builder
	for _, line := range strings.Split(p, "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// scanForSecrets reads every file under the node's data dir and every log
// file of the node and fails the test for each secret found. It returns
// how many bytes it read of each kind of file.
func scanForSecrets(t *testing.T, n *node, secrets *secretSet) map[string]int64 {
	t.Helper()
	scanned := map[string]int64{}
	var files []string
	err := filepath.WalkDir(n.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", n.dataDir, err)
	}
	files = append(files, n.logs...)
	for _, path := range files {
		size, found, err := scanFile(path, secrets.needles)
		if err != nil {
			t.Errorf("scanning %s: %v", path, err)
			continue
		}
		rel, _ := filepath.Rel(n.dir, path)
		kind := filepath.Base(path)
		if strings.Contains(rel, "snapshots"+string(filepath.Separator)) {
			kind = "snapshot"
		}
		scanned[kind] += size
		for _, i := range found {
			t.Errorf("%s (%d bytes) holds the %s", rel, size, secrets.names[i])
		}
	}
	t.Logf("scanned %d files for %d byte strings: %v", len(files), len(secrets.needles), scanned)
	return scanned
}

// scanFile reads path in chunks that overlap by the longest needle and
// returns its size and the indexes of the needles found in it.
func scanFile(path string, needles [][]byte) (int64, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	longest := 0
	for _, nd := range needles {
		longest = max(longest, len(nd))
	}
	const chunk = 4 << 20
	buf := make([]byte, 0, chunk+longest)
	found := map[int]bool{}
	var size int64
	for {
		keep := len(buf)
		if keep > longest-1 {
			copy(buf, buf[keep-(longest-1):])
			buf = buf[:longest-1]
		}
		m, err := io.ReadFull(f, buf[len(buf):len(buf)+chunk])
		size += int64(m)
		buf = buf[:len(buf)+m]
		for i, nd := range needles {
			if !found[i] && bytes.Contains(buf, nd) {
				found[i] = true
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return size, nil, err
		}
	}
	out := make([]int, 0, len(found))
	for i := range found {
		out = append(out, i)
	}
	sort.Ints(out)
	return size, out, nil
}

// TestScannerFindsPlantedSecrets proves the scanner of
// TestNoSecretsAtRest can fail: secrets planted in a file in each
// encoding, across a chunk boundary, are all found.
func TestScannerFindsPlantedSecrets(t *testing.T) {
	var s secretSet
	secret := []byte("0123456789abcdef-the-secret")
	s.add("secret", secret)
	for shift := 0; shift < 3; shift++ {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			var body bytes.Buffer
			body.Write(bytes.Repeat([]byte{'x'}, 4<<20-7)) // straddle the first chunk boundary
			inner := append(append(bytes.Repeat([]byte{0xfe}, shift), secret...), 0xff, 0xfe)
			body.WriteString(`{"v":"` + enc.EncodeToString(inner) + `"}`)
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, body.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			_, found, err := scanFile(path, s.needles)
			if err != nil || len(found) == 0 {
				t.Errorf("shift %d: secret in base64 not found (%v)", shift, err)
			}
		}
	}
	for _, form := range [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret)))} {
		path := filepath.Join(t.TempDir(), "f")
		os.WriteFile(path, append(bytes.Repeat([]byte{0}, 4<<20-3), form...), 0o600)
		if _, found, _ := scanFile(path, s.needles); len(found) == 0 {
			t.Errorf("%.12q… not found across a chunk boundary", form)
		}
	}
	path := filepath.Join(t.TempDir(), "clean")
	os.WriteFile(path, bytes.Repeat([]byte("nothing to see "), 1000), 0o600)
	if _, found, _ := scanFile(path, s.needles); len(found) != 0 {
		t.Errorf("found %v in a clean file", found)
	}
}
