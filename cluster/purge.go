package cluster

// PurgeKey is the record whose every write asks each node to purge its
// disk of what the state no longer holds (see purge.go): its revision is
// the index after which no disk may keep older copies of the state.
const PurgeKey = "core/purge"

// PurgeWrite is the write a change adds when it removes key material (a
// key's destruction): once it is applied, every node takes a snapshot,
// compacts its Raft log past it, deletes older snapshots and rewrites its
// bbolt files without their freed pages. what names the change (not a
// secret).
func PurgeWrite(what string) Write { return Write{Key: PurgeKey, Value: []byte(what)} }
