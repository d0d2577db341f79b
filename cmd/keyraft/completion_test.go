package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// completionScript returns 'keyraft completion SHELL' written to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	out, errOut, code := keyraft(t, nil, "", "completion", shell)
	if code != 0 || errOut != "" || out == "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errOut)
	}
	path := filepath.Join(t.TempDir(), "keyraft."+shell)
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBashCompletion: the bash script parses (bash -n), names exactly the
// commands of the command tree, and completes as a user would see it.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	path := completionScript(t, "bash")
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}

	// The command list in the script: each group's words, followed down
	// to the words that are not groups.
	src, _ := os.ReadFile(path)
	arm := regexp.MustCompile(`(?m)^\s+"([^"]*)"\) list="([^"]*)" ;;$`)
	words := map[string][]string{}
	for _, m := range arm.FindAllStringSubmatch(string(src), -1) {
		words[m[1]] = strings.Fields(m[2])
	}
	var inScript []string
	var walk func(path string)
	walk = func(path string) {
		for _, w := range words[path] {
			name := strings.TrimSpace(path + " " + w)
			if _, group := groups[name]; group {
				walk(name)
			} else {
				inScript = append(inScript, name)
			}
		}
	}
	walk("")
	var want []string
	for _, c := range commands {
		want = append(want, c.name)
	}
	slices.Sort(inScript)
	slices.Sort(want)
	if !slices.Equal(inScript, want) {
		t.Errorf("commands in the bash script:\n%q\nwant:\n%q", inScript, want)
	}

	for line, want := range map[string]string{
		"keyraft k":                        "keys",
		"keyraft keys cr":                  "create",
		"keyraft operator raft snapshot s": "save",
		"keyraft keys create -ty":          "-type",
		"keyraft encrypt -a":               "-aad -address",
		"keyraft keys create dk":           "", // an argument: file names, bash's default
		"keyraft nosuch x":                 "",
	} {
		script := `source "$1"; read -r -a COMP_WORDS <<< "$2"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _keyraft; echo "${COMPREPLY[*]}"`
		out, err := exec.Command("bash", "-c", script, "bash", path, line).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("completing %q: %q (%v), want %q", line, out, err, want)
		}
	}
}

// TestOtherShellCompletions: the zsh and fish scripts parse, where those
// shells are installed, and list every command's last word.
func TestOtherShellCompletions(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		path := completionScript(t, shell)
		src, _ := os.ReadFile(path)
		for _, c := range commands {
			words := strings.Fields(c.name)
			if !strings.Contains(string(src), words[len(words)-1]) {
				t.Errorf("%s script lacks %q", shell, c.name)
			}
		}
		if _, err := exec.LookPath(shell); err != nil {
			t.Logf("%s is not installed: its script is not parsed", shell)
			continue
		}
		if out, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
	}
	if _, err := exec.LookPath("fish"); err == nil {
		path := completionScript(t, "fish")
		out, err := exec.Command("fish", "-c", `source $argv[1]; complete -C"keyraft keys cr"`, path).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "create\tcreate a key") {
			t.Errorf("fish completes 'keyraft keys cr' with %q (%v)", out, err)
		}
	}
	_, errOut, code := keyraft(t, nil, "", "completion", "tcsh")
	if code != 2 || errOut != "error: unknown shell \"tcsh\"\nhint: use bash, zsh or fish\n" {
		t.Errorf("completion tcsh: exit %d, %q", code, errOut)
	}
}
