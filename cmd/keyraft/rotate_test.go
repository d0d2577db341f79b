package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// operator rotate and operator key-status against a real server: the term
// moves on, -wait follows the re-encryption to its end, data from before
// still decrypts, and a token that is not root is refused with a hint.
func TestIntegrationOperatorRotate(t *testing.T) {
	t.Parallel()
	s := startDevServer(t)
	s.ok(t, nil, "keys", "create", "app")
	ct := strings.TrimSpace(string(s.ok(t, []byte("kept"), "encrypt", "app")))

	out := string(s.ok(t, nil, "operator", "key-status"))
	if !regexp.MustCompile(`(?m)^Key Term\s+1$`).MatchString(out) || !strings.Contains(out, "Install Time") ||
		!strings.Contains(out, "nothing to do") {
		t.Fatalf("key-status before rotation:\n%s", out)
	}

	out = string(s.ok(t, nil, "operator", "rotate", "-wait"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "Success! Rotated the barrier keyring: new values use term 2." || len(lines) < 2 ||
		!regexp.MustCompile(`^Re-encryption \(term 2\): done, (\d+)/(\d+) values$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("rotate -wait:\n%s", out)
	}
	if got := s.ok(t, []byte(ct), "decrypt", "app"); string(got) != "kept" {
		t.Fatalf("decrypt after the rotation: %q", got)
	}

	var status struct {
		Term        int    `json:"term"`
		InstallTime string `json:"install_time"`
		Progress    struct {
			Term    int  `json:"term"`
			Total   int  `json:"total"`
			Done    int  `json:"done"`
			Running bool `json:"running"`
		} `json:"progress"`
	}
	if err := json.Unmarshal(s.ok(t, nil, "operator", "key-status", "-format=json"), &status); err != nil {
		t.Fatal(err)
	}
	if status.Term != 2 || status.InstallTime == "" || status.Progress.Term != 2 || status.Progress.Running ||
		status.Progress.Done != status.Progress.Total || status.Progress.Total == 0 {
		t.Fatalf("key-status -format=json: %+v", status)
	}
	out = string(s.ok(t, nil, "operator", "key-status"))
	if !regexp.MustCompile(`(?m)^Key Term\s+2$`).MatchString(out) || !regexp.MustCompile(`(?m)^Re-encryption\s+done, \d+/\d+ values$`).MatchString(out) {
		t.Fatalf("key-status after rotation:\n%s", out)
	}

	var rotated struct {
		Term int `json:"term"`
	}
	if err := json.Unmarshal(s.ok(t, nil, "operator", "rotate", "-format=json"), &rotated); err != nil || rotated.Term != 3 {
		t.Fatalf("rotate -format=json: %+v %v", rotated, err)
	}

	_, errOut, code := s.kr(t, map[string]string{"KEYRAFT_TOKEN": "kr.wrong"}, nil, "operator", "rotate")
	checkErrorLines(t, "rotate with a bad token", errOut, "permission denied: invalid token", "set KEYRAFT_TOKEN to a valid token")
	if code != 1 {
		t.Fatalf("rotate with a bad token: exit %d", code)
	}
	if _, errOut, code := s.kr(t, nil, nil, "operator", "rotate", "extra"); code != 2 || !strings.Contains(errOut, `unexpected argument "extra"`) {
		t.Fatalf("rotate with an argument: exit %d %q", code, errOut)
	}
}
