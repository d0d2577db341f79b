package transport

import "github.com/keyraft/keyraft/transit"

// flagCompromised marks the request's audit event when its answer is
// about a compromised key (the engine flags the answer; operations that
// use the key also flag the event themselves).
func flagCompromised(req *request, resp *transit.Response) *transit.Response {
	if resp != nil && resp.Data["key_compromised"] == true {
		if req.ev.Details == nil {
			req.ev.Details = map[string]string{}
		}
		req.ev.Details["key_compromised"] = "true"
	}
	return resp
}
