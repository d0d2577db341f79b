// Command keyraft-plugin-soft is the built-in software crypto plugin
// (AES-256-GCM, Ed25519, HMAC-SHA256; plugins/soft) served over the
// plugin SDK. It keeps no key material: the node stores it wrapped.
package main

import (
	"fmt"
	"os"

	"github.com/keyraft/keyraft/plugins/sdk"
	"github.com/keyraft/keyraft/plugins/soft"
)

func main() {
	if !sdk.LaunchedByNode() {
		fmt.Fprintln(os.Stderr, "keyraft-plugin-soft is a keyraft crypto plugin: a keyraft node starts it")
		os.Exit(1)
	}
	sdk.Logger().Info("serving soft crypto")
	sdk.ServeCrypto(soft.New())
}
