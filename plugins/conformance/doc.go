// Package conformance holds the contract checks a backend must pass, for
// the authors of plugins and for keyraft's own: the storage contract
// (plugins.Storage) and the crypto contract (sdk.CryptoBackend), each
// rule of plugins/storage.go and plugins/sdk/crypto.go checked — answers
// in order, one per item, per-item errors, handle binding, wrong keys,
// tampered ciphertexts, associated data, unsupported operations, empty
// and large batches, concurrency, views, atomic batches.
//
// There are two ways to run them. Under go test, TestStorage and
// TestCrypto take a *testing.T and a function that opens the backend —
// in process, or the real plugin process started through plugins/host:
//
//	func TestConformance(t *testing.T) {
//		conformance.TestStorage(t, func(t *testing.T) plugins.Storage {
//			s, err := mystore.Open(filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Without go test, RunBinary runs every check against a plugin binary,
// started as a node starts it, and prints a PASS/FAIL line per check;
// `keyraft plugin test -type=crypto ./my-plugin` calls it. The checks
// are written against the small T interface, which *testing.T and
// RunBinary's runner both provide.
package conformance
