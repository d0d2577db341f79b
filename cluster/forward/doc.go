// Package forward carries requests from followers to the leader: a small
// multiplexed request/response protocol over one connection per peer.
//
// A follower that receives a write (or a batch of audit events) encodes
// the state-machine command and sends it with Client.Call to the leader,
// whose Server hands it to a Handler; the Handler applies it through Raft
// and returns an opaque result, which Call returns. Many calls share one
// connection: they are pipelined and answered in any order.
//
// This package does no TLS and no addressing. The caller supplies
// connections that are already mutually authenticated — for keyraft, the
// cluster port's ALPN channel "keyraft-forward/1" (package cluster/link):
// Client takes a dial func, Server.Serve an accept func.
//
// # Using it
//
// On every node:
//
//	srv := forward.NewServer(handler, forward.ServerConfig{Logger: log})
//	go srv.Serve(acceptForward)   // returns when accept fails
//	defer srv.Close()             // closes connections, waits for handlers
//
//	cl := forward.NewClient(dialForward, forward.ClientConfig{Logger: log})
//	defer cl.Close()
//	resp, err := cl.Call(ctx, leaderAddr, cmd)
//
// # What an error means
//
// The question after a failed Call is whether the leader may have applied
// the command:
//
//   - ErrUnavailable, ErrFrameTooLarge, ErrClosed alone: nothing was sent.
//     Retrying is safe.
//   - *RemoteError (errors.Is ErrRemote): the handler answered with an
//     error; Msg is its text. What it means is up to the handler. One
//     text comes from the Server itself: a result over its MaxFrame is
//     replaced by an error naming ErrFrameTooLarge — the handler did run.
//   - ErrConnLost: the connection died after the request was written.
//     The outcome is unknown — exactly like a Raft apply timeout, the
//     command may or may not be committed. Never report it as "not
//     applied"; retry only if the command is idempotent.
//   - ctx.Err() (returned as-is): the caller stopped waiting. If the
//     request had been written, the outcome is unknown, as above.
//
// Call returns as soon as its ctx ends, whatever the peer does; a late
// answer is dropped, and the server is sent a cancel so the handler's ctx
// ends too. A stuck peer delays only the calls to its address.
//
// A failed connection fails its pending calls and is forgotten; the next
// Call to that address dials again. Calls to one address wait for the
// same dial. Call never resends a request and never backs off: the caller
// knows whether a retry is safe. (It only skips a connection it finds
// already dead before sending anything.)
//
// # Limits
//
// A payload is at most MaxFrame bytes (default 64 MiB, both sides; keep
// them equal). Call refuses a larger request before sending it. A Server
// refuses to send a larger response and answers with a RemoteError
// instead. A larger frame from a peer is a protocol violation. A Server
// runs at most MaxInFlightPerConn (default 256) handlers per connection
// and stops reading that connection while at the bound. Error texts are
// cut to 1 KiB.
//
// # Wire format
//
// Both directions are a sequence of frames, each a 13-byte header and a
// payload:
//
//	offset  size  field
//	0       1     kind: version<<4 | type   (version is 1)
//	1       8     id: request id, big-endian, never 0
//	9       4     length: payload length, big-endian
//	13      n     payload
//
// Types (kind byte for version 1 in brackets):
//
//	1 request  [0x11]  client → server  payload: the request
//	2 response [0x12]  server → client  payload: the handler's result
//	3 error    [0x13]  server → client  payload: the handler's error text (UTF-8)
//	4 cancel   [0x14]  client → server  length 0: the caller gave up on id
//
// Rules:
//
//   - The client numbers its requests on a connection strictly
//     increasing from 1 (gaps are allowed); the server rejects a request
//     id not above the last one.
//   - The server answers every request exactly once, with a response or
//     an error frame, in any order. It also answers cancelled requests;
//     the client drops those answers.
//   - A cancel names a request already sent. The server cancels that
//     handler's ctx if it is still running, and ignores the cancel
//     otherwise (the answer may be in flight).
//   - The client rejects an answer for an id that is not awaiting one
//     (never sent, or already answered). It keeps the ids of requests
//     whose callers gave up until their answers arrive, and drops those.
//   - A frame of another version or type, id 0, a cancel with a payload,
//     a payload over the receiver's MaxFrame, or a truncated frame is a
//     protocol violation.
//   - Any protocol violation closes that connection, nothing else: the
//     client fails that connection's pending calls with ErrConnLost, the
//     server cancels its handlers. The process and other connections go
//     on.
//
// The version nibble lets a later protocol be refused cleanly; the ALPN
// name on the cluster port versions the protocol as a whole.
//
// Each connection has one writer goroutine; writes are batched and
// flushed when the queue runs dry. The reader allocates a payload only
// after checking its length against MaxFrame, and then only as fast as
// its bytes arrive.
package forward
