// Package audit is keyraft's audit log: what an event holds, how events
// are chained and checked, and how they leave the cluster.
//
// Every request becomes one Event. Sensitive values (plaintext,
// ciphertext, context, tokens, backups) appear only as HMAC-SHA256 under
// the cluster's audit key (HMAC). A request waits on a Recorder before it
// answers; the node's Recorder commits the event through Raft (package
// cluster), where the state machine gives it the next seq and chains it:
//
//	hash = SHA-256(prev_hash ‖ Canonical(event))    prev_hash of seq 1 = GenesisHash
//
// Canonical is the event's JSON with hash empty; Event.Encode shrinks an
// event that would not fit MaxEventSize instead of dropping it.
//
// Checkpoint is an Ed25519 signature by the cluster over (seq, hash, time).
// An export (ExportWriter) is a header, the events, and checkpoints after
// the events they cover, ending on one; VerifyExport checks one offline
// and names the first bad seq (Problem) for edits, deletions, reordering,
// truncation and bad signatures. Verifier checks a chain event by event.
//
// Sinks (FileSink, SyslogSink, NewSocketSink) receive committed events
// through a Follower, a batch (Batch: the stored lines) at a time, so a
// slow or broken sink never delays a request and costs one batch of
// memory. The follower's position is what the sink confirms: a
// Positioner says where it stands (a file's last whole line, a
// collector's answer in the acknowledged framing, which Receiver
// speaks), an Acker what the far end stored; other sinks keep a
// CursorStore. It starts over only when the chain shows the log was
// replaced (Restarter). Devices keeps the running followers equal to the
// configured devices; a cluster-wide device delivers only on the leader.
package audit
