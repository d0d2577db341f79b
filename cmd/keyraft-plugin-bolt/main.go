// Command keyraft-plugin-bolt is the built-in storage plugin: the bbolt
// store of plugins/bolt served over the plugin SDK. The node starts it
// with the path of the store:
//
//	keyraft-plugin-bolt -path /var/lib/keyraft/state.db
//
// Run by hand, without the node's handshake cookie, it says that it is a
// plugin and exits.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/keyraft/keyraft/plugins/bolt"
	"github.com/keyraft/keyraft/plugins/sdk"
)

func main() {
	path := flag.String("path", "", "path of the bbolt store file (created if missing)")
	flag.Parse()
	if !sdk.LaunchedByNode() {
		fmt.Fprintln(os.Stderr, "keyraft-plugin-bolt is a keyraft storage plugin: a keyraft node starts it")
		os.Exit(1)
	}
	log := sdk.Logger()
	if *path == "" {
		log.Error("missing -path")
		os.Exit(2)
	}
	store, err := bolt.Open(*path)
	if err != nil {
		log.Error("opening the store", "path", *path, "error", err)
		os.Exit(1)
	}
	log.Info("serving bolt storage", "path", *path)
	sdk.ServeStorage(store)
}
