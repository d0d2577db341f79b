// Command amnesia is a storage plugin that breaks the contract on
// purpose: it is bolt, but it deletes its file when it starts, so a
// restart loses everything acknowledged. The conformance tests show that
// RunBinary catches it.
package main

import (
	"flag"
	"os"

	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/sdk"
)

func main() {
	path := flag.String("path", "", "bbolt file")
	flag.Parse()
	os.Remove(*path)
	s, err := bolt.Open(*path)
	if err != nil {
		sdk.Logger().Error("open", "error", err)
		os.Exit(1)
	}
	sdk.ServeStorage(s)
}
