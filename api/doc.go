// Package api is a small Go client for keyraft, and for any server that
// speaks the HashiCorp Vault sys and transit API.
//
// A Client is made from a Config, usually the one the environment
// describes:
//
//	c, err := api.New(api.DefaultConfig(os.Getenv)) // KEYRAFT_ADDR, KEYRAFT_TOKEN, …
//	if err != nil { … }
//	ct, err := c.Encrypt(ctx, "orders", api.EncryptRequest{Plaintext: data})
//	…
//	pt, err := c.Decrypt(ctx, "orders", api.DecryptRequest{Ciphertext: ct.Ciphertext})
//
// Every call takes a context, sends one HTTP request under /v1/, and
// returns either the decoded answer or an error:
//
//   - a *ResponseError when the server answered with a status other than
//     2xx. It holds the status and the server's messages, and prints as
//     one line: "permission denied (status 403)", and the method and path
//     it answered. 503 means the server is sealed; 403 a missing or
//     invalid token, or one whose policies do not allow the request.
//   - the error of net/http when the server could not be reached (test
//     with errors.Is(err, syscall.ECONNREFUSED) and the like).
//   - a plain error for a malformed answer or bad arguments (an empty key
//     name).
//
// The typed helpers are thin: one method per endpoint, request fields
// named after the API's, bytes base64-encoded for the wire and decoded
// back. They return the "data" of Vault's response envelope; its
// "warnings" (a key that already existed, a compromised key) go to the
// handler SetWarningHandler sets, for every call. Do reaches any endpoint, and any
// part of the answer, directly.
//
// Lists use the LIST method, as in Vault's API documentation. A 404 with no
// message from a list means an empty list.
package api
