// Command keyraft-plugin-pkcs11 is the built-in PKCS#11 crypto plugin
// (plugins/pkcs11): keys are generated and used inside an HSM and never
// leave it; the node stores only their handles. A node starts it with
//
//	keyraft-plugin-pkcs11 -lib /usr/lib/softhsm/libsofthsm2.so -token-label keyraft
//
// and the user PIN in KEYRAFT_HSM_PIN (or -pin-file). Every node of a
// cluster must reach the same token (a network HSM; in tests, one SoftHSM
// token directory): a key made on one node is used on all.
//
// Run by hand, without the node's handshake cookie, it says that it is a
// plugin and exits.
package main

import (
	"fmt"
	"os"

	"github.com/keyraft/keyraft/plugins/pkcs11"
	"github.com/keyraft/keyraft/plugins/sdk"
)

func main() {
	if !sdk.LaunchedByNode() {
		fmt.Fprintln(os.Stderr, "keyraft-plugin-pkcs11 is a keyraft crypto plugin: a keyraft node starts it")
		os.Exit(1)
	}
	if err := pkcs11.Serve(os.Args[1:], os.Getenv); err != nil {
		os.Exit(1)
	}
}
