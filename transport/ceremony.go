package transport

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"

	"github.com/keyraft/keyraft/transit"
)

// The ceremonies (unseal, rekey, generate-root, break-glass) take shares
// the same way: one share per request, in hex or base64.

// shareField decodes the "key" field of a ceremony's update: one share,
// in hex or base64.
func shareField(f *transit.Fields) ([]byte, *reply) {
	key, err := f.String("key", "")
	if err != nil {
		r := errorFromTransit(err)
		return nil, &r
	}
	share, err := hex.DecodeString(key)
	if err != nil {
		if share, err = base64.StdEncoding.DecodeString(key); err != nil || key == "" {
			r := errReply(http.StatusBadRequest, "'key' must be a valid hex or base64 string")
			return nil, &r
		}
	}
	return share, nil
}

// shareUpdate decodes a ceremony's update (the request's body): the
// attempt's nonce and one share. The caller clears the share when done.
func shareUpdate(req *request) (nonce string, share []byte, _ *reply) {
	f, r := req.fields(nil)
	if r != nil {
		return "", nil, r
	}
	nonce, err := f.String("nonce", "")
	if err != nil {
		r := errorFromTransit(err)
		return "", nil, &r
	}
	share, r = shareField(f)
	if r != nil {
		return "", nil, r
	}
	return nonce, share, nil
}
