package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// 'report hygiene' against a real dev server: findings name the key and
// the fix; -fail-on decides the exit code.
func TestReportHygieneCLI(t *testing.T) {
	s := startDevServer(t)
	out, errOut, code := s.kr(t, nil, nil, "report", "hygiene")
	if code != 0 || !strings.Contains(string(out), "No findings.") {
		t.Fatalf("clean cluster: exit %d, %q %q", code, out, errOut)
	}
	s.ok(t, nil, "keys", "create", "open")
	s.ok(t, nil, "keys", "config", "-deletion-allowed=true", "open")
	out, _, code = s.kr(t, nil, nil, "report", "hygiene")
	if code != exitFindings || !strings.Contains(string(out), "key:open") || !strings.Contains(string(out), "fix: keyraft keys config -deletion-allowed=false open") {
		t.Fatalf("with a finding: exit %d\n%s", code, out)
	}
	if _, _, code = s.kr(t, nil, nil, "report", "hygiene", "-fail-on=critical"); code != 0 {
		t.Fatalf("-fail-on=critical with a warning: exit %d", code)
	}
	out, _, code = s.kr(t, nil, nil, "report", "hygiene", "-format=json", "-fail-on=none")
	var r struct {
		Findings []struct{ Object, Check, Severity string }
	}
	if err := json.Unmarshal(out, &r); code != 0 || err != nil {
		t.Fatalf("json: exit %d %v %s", code, err, out)
	}
	// The server wires in the access checks: the root token the CLI used
	// is a finding beside the key's.
	checks := map[string]string{}
	for _, f := range r.Findings {
		checks[f.Check] = f.Object
	}
	if len(r.Findings) != 2 || checks["key-deletion-allowed"] != "key:open" || !strings.HasPrefix(checks["root-token-used"], "token:") {
		t.Fatalf("json findings: %s", out)
	}
	_, errOut, code = s.kr(t, nil, nil, "report", "hygiene", "-fail-on=loud")
	if code != 2 || !strings.Contains(errOut, "hint: use info, warning, critical or none") {
		t.Fatalf("bad -fail-on: %d %q", code, errOut)
	}
}
