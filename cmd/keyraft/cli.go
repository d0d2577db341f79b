package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"unicode"

	"github.com/keyraft/keyraft/api"
	"github.com/keyraft/keyraft/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong; also "sealed" for status
)

// env is what a command runs with: everything that a test replaces.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	// addr is the server address once a client exists, for hints.
	addr string

	// warned holds the server warnings printed so far, to print each once.
	warned map[string]bool

	// flagSets, when set, receives the flag set of the command run
	// instead of it being parsed: the command stops there (completion
	// scripts list the flags this way).
	flagSets func(*flag.FlagSet)
}

// command is one leaf of the command tree ("status", "keys create").
type command struct {
	name    string // as typed: "keys create"
	args    string // after the flags: "NAME", "[KEY]"
	summary string // one line for the command list
	help    string // the manual, printed by -h after the usage line
	network bool   // takes -address, -token and -format
	noFlags bool   // takes no flags at all
	run     func(e *env, cmd *command, args []string) error
}

// commands lists every command in the order of the usage text. It is
// filled in init to let the help command refer to it.
var commands []*command

func init() {
	helpCmd.run = runHelp             // here, to break the cycle helpCmd → runHelp → lookup → helpCmd
	completionCmd.run = runCompletion // likewise: the scripts list commands
	commands = []*command{
		serverCmd, statusCmd,
		operatorInitCmd, operatorUnsealCmd, operatorSealCmd, operatorRaftListPeersCmd,
		operatorRaftJoinCmd, operatorRaftRemovePeerCmd, operatorMembersCmd, operatorRekeyCmd, operatorGenerateRootCmd, operatorRotateCmd, operatorKeyStatusCmd,
		operatorRaftSnapshotSaveCmd, operatorRaftSnapshotRestoreCmd, operatorTLSCACmd, operatorTLSCertCmd,
		keysCreateCmd, keysListCmd, keysReadCmd, keysRotateCmd, keysConfigCmd, keysDeleteCmd,
		keysDisableCmd, keysEnableCmd, keysCompromiseCmd, keysDestroyCmd, keysCancelDestroyCmd, keysImportCmd, keysImportVersionCmd,
		keysBackupCmd, keysRestoreCmd,
		encryptCmd, decryptCmd, signCmd, verifyCmd,
		auditTailCmd, auditQueryCmd, auditHistoryCmd, auditExportCmd, auditVerifyCmd, auditHashCmd, auditCompactCmd, auditSinksCmd, auditReceiveCmd,
		reportHygieneCmd,
		policyWriteCmd, policyReadCmd, policyListCmd, policyDeleteCmd,
		tokenCreateCmd, tokenLookupCmd, tokenRenewCmd, tokenRevokeCmd,
		grantRequestCmd, grantApproveCmd, grantListCmd, grantRevokeCmd,
		pluginRegisterCmd, pluginListCmd, pluginInfoCmd, pluginReloadCmd, pluginDeregisterCmd, pluginTestCmd, pluginServeBuiltinCmd,
		pathHelpCmd, completionCmd, versionCmd, helpCmd,
	}
	groups = commandGroups(commands)
}

// groups are the words that only hold subcommands ("keys", "operator
// raft"), each with the one-line list of its subcommands that a usage
// mistake shows. They are derived from commands, so a new command is in
// its group's list, the help and the completion scripts at once.
var groups map[string]string

// commandGroups returns the groups of cmds: every name's leading words,
// with the next words in the order of cmds.
func commandGroups(cmds []*command) map[string]string {
	subs := map[string][]string{}
	var order []string
	for _, c := range cmds {
		words := strings.Fields(c.name)
		for i := 1; i < len(words); i++ {
			g := strings.Join(words[:i], " ")
			if _, ok := subs[g]; !ok {
				order = append(order, g)
			}
			if !slices.Contains(subs[g], words[i]) {
				subs[g] = append(subs[g], words[i])
			}
		}
	}
	out := make(map[string]string, len(order))
	for _, g := range order {
		out[g] = g + " commands: " + strings.Join(subs[g], ", ")
	}
	return out
}

// run is the whole program: it runs the command args name and returns the
// exit code. Everything is reachable from tests through it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	return e.report(e.dispatch(args))
}

func (e *env) dispatch(args []string) error {
	if len(args) == 0 {
		e.usage(e.stderr)
		return exitCode(exitUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		e.usage(e.stdout)
		return nil
	case "-v", "-version", "--version":
		return versionCmd.run(e, versionCmd, nil)
	}
	cmd, rest, err := lookup(args)
	if err != nil {
		return err
	}
	return cmd.run(e, cmd, rest)
}

// lookup finds the command named by the first words of args. An unknown
// name's hint is the nearest command when one is close ("keys craete":
// did you mean "keys create"?), else the commands that could follow.
func lookup(args []string) (*command, []string, error) {
	all := args
	name := args[0]
	if strings.HasPrefix(name, "-") {
		return nil, nil, &usageError{msg: fmt.Sprintf("flag %s comes before the command", name),
			hint: "flags go after the command: keyraft <command> [flags] [args]; run 'keyraft help' for the commands"}
	}
	for list, ok := groups[name]; ok; list, ok = groups[name] { // groups nest: operator raft …
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			if len(args) >= 2 && isHelpFlag(args[1]) {
				return helpCmd, []string{name}, nil
			}
			return nil, nil, &usageError{msg: "missing " + name + " command", hint: list}
		}
		name += " " + args[1]
		args = args[1:]
	}
	for _, c := range commands {
		if c.name == name {
			return c, args[1:], nil
		}
	}
	hint := "commands: " + strings.Join(topNames(), ", ") + "; run 'keyraft help' for more"
	if i := strings.LastIndex(name, " "); i > 0 {
		hint = groups[name[:i]]
	}
	if s := suggest(all); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	return nil, nil, &usageError{msg: fmt.Sprintf("unknown command %q", name), hint: hint}
}

// suggest returns the command or group nearest to the first words of
// args, or "" when none is near: within one edit (a letter added, dropped,
// changed, or two swapped) for a name of up to 4 letters, two for a
// longer one; or the only name the words are a prefix of. The match of
// the most words wins ("key craete" is "keys create", not "keys").
func suggest(args []string) string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	n := 0
	for n < len(args) && n < 4 && !strings.HasPrefix(args[n], "-") {
		n++
	}
	for ; n > 0; n-- {
		typed := strings.Join(args[:n], " ")
		best, bestDist, prefixOf := "", 3, []string{}
		limit := 2
		if len(typed) <= 4 {
			limit = 1
		}
		for _, name := range names {
			if strings.Count(name, " ") != n-1 {
				continue
			}
			if d := editDistance(typed, name); d <= limit && d < bestDist {
				best, bestDist = name, d
			}
			if strings.HasPrefix(name, typed) && len(args[n-1]) >= 2 {
				prefixOf = append(prefixOf, name)
			}
		}
		if best == "" && len(prefixOf) == 1 {
			best = prefixOf[0]
		}
		if best != "" && best != typed {
			return best
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and swaps of two neighbours that
// turn one into the other.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// topNames lists the first words of the commands.
func topNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, c := range commands {
		w, _, _ := strings.Cut(c.name, " ")
		if !seen[w] {
			seen[w] = true
			names = append(names, w)
		}
	}
	return names
}

const usageHead = `Usage: keyraft <command> [flags] [args]

keyraft is a key-management server and its client. The server keeps keys
replicated with Raft and never lets them out; the client commands below
talk to it over the Vault transit API.
`

const usageTail = `
Environment:
    KEYRAFT_ADDR         server URL (default http://127.0.0.1:8200)
    KEYRAFT_TOKEN        token sent with each request
    KEYRAFT_CACERT       PEM file of the CA to trust for https
    KEYRAFT_SKIP_VERIFY  true: do not verify the server's certificate
    The VAULT_ names of these are read when the KEYRAFT_ ones are unset.

Client commands take -address, -token, -namespace and -format=table|json.
Flags come before the arguments. Run 'keyraft <command> -h' for a command's
manual.

-format=json prints one JSON object on stdout: the data of the server's
answer, as the API names its fields (the "data" of Vault's envelope, the
"auth" of token create and renew, the whole answer of the sys calls that
have no envelope, such as status). A change whose answer has no data
prints nothing. audit tail, query and history print one object per line,
one per event. Server warnings go to stderr, "warning: ...", in either
format.

Exit codes: 0 success, 1 failure, 2 usage mistake ('status': 2 = sealed).
`

// usage prints the command list under its section headings, each once.
func (e *env) usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	width := nameWidth(commands)
	for i := 0; i < len(commands); {
		s := sectionOf(commands[i])
		j := i + 1
		for j < len(commands) && sectionOf(commands[j]) == s {
			j++
		}
		fmt.Fprintf(w, "\n%s:\n", s)
		printCommandList(w, commands[i:j], width)
		i = j
	}
	fmt.Fprint(w, usageTail)
}

func sectionOf(c *command) string {
	first, _, _ := strings.Cut(c.name, " ")
	switch first {
	case "server":
		return "Server"
	case "status", "operator":
		return "Operator"
	case "keys":
		return "Keys"
	case "encrypt", "decrypt", "sign", "verify":
		return "Data"
	case "audit", "report":
		return "Audit and reports"
	case "policy", "token", "grant":
		return "Access"
	case "plugin":
		return "Plugins"
	}
	return "Other"
}

// nameWidth is the length of the longest name of cmds.
func nameWidth(cmds []*command) int {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	return width
}

// printCommandList prints the name and summary of cmds in two columns,
// the first width wide (nameWidth of the list, or more) and two spaces
// after it, so that no name runs into its summary.
func printCommandList(w io.Writer, cmds []*command, width int) {
	for _, c := range cmds {
		fmt.Fprintf(w, "    %-*s  %s\n", width, c.name, c.summary)
	}
}

// globals are the flags every client command takes.
type globals struct {
	address, token, format string
	namespace              string
}

// flags returns the flag set of cmd, with the global flags when cmd talks
// to a server. Parse errors are reported by positional, not printed.
func (e *env) flags(cmd *command) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet("keyraft "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g := &globals{format: "table"}
	if cmd.network {
		fs.StringVar(&g.address, "address", "", "server `URL` (default $KEYRAFT_ADDR, $VAULT_ADDR or http://127.0.0.1:8200)")
		fs.StringVar(&g.token, "token", "", "`token` to send (default $KEYRAFT_TOKEN or $VAULT_TOKEN)")
		fs.StringVar(&g.format, "format", "table", "output `format`: table or json")
		fs.StringVar(&g.namespace, "namespace", "", "`namespace` of the keys, policies and tokens (default $KEYRAFT_NAMESPACE or $VAULT_NAMESPACE)")
	}
	return fs, g
}

// positional parses args with fs and returns the arguments after the
// flags, of which there must be between min and max. -h prints the
// manual of cmd.
func (e *env) positional(cmd *command, fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if e.flagSets != nil {
		e.flagSets(fs)
		return nil, errHelpShown
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		e.manual(cmd, fs)
		return nil, errHelpShown
	}
	if err != nil {
		return nil, &usageError{cmd: cmd, msg: err.Error()}
	}
	if f := fs.Lookup("format"); f != nil && f.Value.String() != "table" && f.Value.String() != "json" {
		return nil, &usageError{cmd: cmd, msg: fmt.Sprintf("invalid -format %q: use table or json", f.Value.String())}
	}
	rest := fs.Args()
	switch {
	case len(rest) < min:
		return nil, &usageError{cmd: cmd, msg: "missing " + strings.Fields(strings.Trim(cmd.args, "[]"))[len(rest)]}
	case len(rest) > max && strings.HasPrefix(rest[max], "-") && len(rest[max]) > 1:
		return nil, &usageError{cmd: cmd, msg: fmt.Sprintf("flag %s comes after %s; flags go first", rest[max], rest[max-1])}
	case len(rest) > max:
		return nil, &usageError{cmd: cmd, msg: fmt.Sprintf("unexpected argument %q", rest[max])}
	}
	return rest, nil
}

// manual prints the usage line, the manual and the flags of cmd.
func (e *env) manual(cmd *command, fs *flag.FlagSet) {
	w := e.stdout
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", usageLine(cmd), strings.TrimSpace(cmd.help))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

func usageLine(cmd *command) string {
	s := "keyraft " + cmd.name
	if !cmd.noFlags {
		s += " [flags]"
	}
	if cmd.args != "" {
		s += " " + cmd.args
	}
	return s
}

// client returns a client for the server the flags and the environment
// name.
// connect is the common start of a network command: the positional
// arguments (see positional), then a client for the server.
func (e *env) connect(cmd *command, fs *flag.FlagSet, g *globals, args []string, min, max int) ([]string, *api.Client, error) {
	pos, err := e.positional(cmd, fs, args, min, max)
	if err != nil {
		return nil, nil, err
	}
	c, err := e.client(g)
	return pos, c, err
}

func (e *env) client(g *globals) (*api.Client, error) {
	cfg := api.DefaultConfig(e.getenv)
	if g.address != "" {
		cfg.Address = g.address
	}
	if g.token != "" {
		cfg.Token = g.token
	}
	c, err := api.New(cfg)
	if err != nil {
		if strings.HasPrefix(err.Error(), "invalid address") {
			return nil, &hintError{err: err, hint: "set -address or KEYRAFT_ADDR to the server's URL"}
		}
		return nil, err
	}
	e.addr = c.Address()
	c.SetWarningHandler(e.printWarnings)
	ns := g.namespace
	for _, v := range []string{"KEYRAFT_NAMESPACE", "VAULT_NAMESPACE"} {
		if ns == "" {
			ns = e.getenv(v)
		}
	}
	if err := c.SetNamespace(ns); err != nil {
		return nil, &hintError{err: err, hint: "set -namespace or KEYRAFT_NAMESPACE to a namespace name"}
	}
	return c, nil
}

// Errors that carry their exit code or hint to report.
type (
	// usageError is a mistake in the command line: exit 2, with the usage
	// of cmd (or hint) as the hint.
	usageError struct {
		cmd  *command
		msg  string
		hint string
	}
	// hintError adds a hint to an error: exit 1.
	hintError struct {
		err  error
		hint string
	}
	// exitCode ends the program with a code and nothing more to say.
	exitCode int
)

func (u *usageError) Error() string { return u.msg }
func (h *hintError) Error() string  { return h.err.Error() }
func (h *hintError) Unwrap() error  { return h.err }
func (c exitCode) Error() string    { return fmt.Sprintf("exit %d", int(c)) }

// errHelpShown ends a command whose -h printed its manual.
var errHelpShown = errors.New("help shown")

// report prints err as one "error:" line and maybe one "hint:" line, and
// returns the exit code.
func (e *env) report(err error) int {
	var (
		code  exitCode
		usage *usageError
	)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		hint := usage.hint
		if hint == "" && usage.cmd != nil {
			hint = fmt.Sprintf("usage: %s (see 'keyraft %s -h')", usageLine(usage.cmd), usage.cmd.name)
		}
		e.printError(usage.msg, hint)
		return exitUsage
	}
	msg, hint := e.explain(err)
	e.printError(msg, hint)
	return exitError
}

func (e *env) printError(msg, hint string) {
	fmt.Fprintf(e.stderr, "error: %s\n", oneLine(msg))
	if hint != "" {
		fmt.Fprintf(e.stderr, "hint: %s\n", oneLine(hint))
	}
}

// backendNameRe finds the backend a 503 names: crypto backend "soft".
var backendNameRe = regexp.MustCompile(`crypto backend "([^"]+)"`)

// unavailableHint says what to do about a 503, by its reason.
func unavailableHint(msg string) string {
	switch {
	case strings.Contains(msg, "sealed"):
		return "unseal it with 'keyraft operator unseal'"
	case strings.Contains(msg, "crypto backend"):
		name := "NAME"
		if m := backendNameRe.FindStringSubmatch(msg); m != nil {
			name = m[1]
		}
		if strings.Contains(msg, "failed to start") || strings.Contains(msg, "checksum mismatch") {
			return fmt.Sprintf("the crypto backend %s does not start, for the reason the error gives: fix that, then 'keyraft plugin reload %s'", name, name)
		}
		return fmt.Sprintf("the key's crypto backend %s is restarting or failing: retry, and see 'keyraft plugin info %s'", name, name)
	case strings.Contains(msg, "leader"), strings.Contains(msg, "catching up"):
		return "the cluster is electing a leader or catching up: retry in a moment"
	}
	return "the server cannot serve this now: retry, and check 'keyraft status'"
}

// explain turns an error into the message and the hint to print.
func (e *env) explain(err error) (msg, hint string) {
	msg = err.Error()
	var (
		he   *hintError
		re   *api.ResponseError
		ue   *url.Error
		dns  *net.DNSError
		cert x509.UnknownAuthorityError
	)
	if errors.As(err, &ue) {
		// "Get \"http://…/v1/sys/seal-status\": dial tcp …" reads better as
		// "GET http://…/v1/sys/seal-status: dial tcp …".
		msg = fmt.Sprintf("%s %s: %v", strings.ToUpper(ue.Op), ue.URL, ue.Err)
	}
	switch {
	case errors.As(err, &re) && re.StatusCode == 403:
		// Whether the token is the trouble or its policies, the 403
		// says so more precisely than a command's general hint.
		var decisive bool
		if hint, decisive = forbiddenHint(re); !decisive && errors.As(err, &he) {
			hint = he.hint
		}
	case errors.As(err, &he):
		hint = he.hint
	case errors.Is(err, context.Canceled):
		msg = "interrupted"
	case errors.As(err, &re):
		if re.StatusCode == 503 {
			hint = unavailableHint(msg)
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("cannot connect to %s: connection refused", e.addr)
		hint = fmt.Sprintf("is the server running? set KEYRAFT_ADDR (now %s)", e.addr)
	case errors.As(err, &dns):
		hint = fmt.Sprintf("check the host in KEYRAFT_ADDR (now %s)", e.addr)
	case errors.As(err, &cert):
		hint = "set KEYRAFT_CACERT to the PEM file of the CA that signed the server's certificate"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		hint = fmt.Sprintf("the server speaks plain HTTP: use an http:// address (now %s)", e.addr)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		hint = fmt.Sprintf("the server did not answer in time; is KEYRAFT_ADDR (now %s) right?", e.addr)
	}
	return msg, hint
}

// A policy's denial, as the server words it (acl.Decision.Reason):
// which capability on which path the token's policies do not grant.
var (
	ruleText     = `(policy "(?:[^"\\]|\\.)*" rule "(?:[^"\\]|\\.)*")`
	noGrantRe    = regexp.MustCompile(`no policy grants (\S+) on (\S+)`)
	notGrantRe   = regexp.MustCompile(`the most specific rule for (\S+), ` + ruleText + `, does not grant (\S+)`)
	conditionsRe = regexp.MustCompile(ruleText + ` grants (\S+) on (\S+) only when its conditions hold`)
	deniedByRe   = regexp.MustCompile(`denied by ` + ruleText)
	sudoRe       = regexp.MustCompile(`sudo is required on (\S+)`)
)

// forbiddenHint says what to do about a 403: fix the token when the
// server says the token is the trouble (missing, unknown, expired,
// another namespace's, used from outside its networks), or, for a valid
// token its policies do not allow, which capability on which path is
// missing. decisive is false when the message does not tell (Vault's
// bare "permission denied"), so that a command's own hint may stand.
func forbiddenHint(re *api.ResponseError) (hint string, decisive bool) {
	msg := strings.Join(re.Errors, "; ")
	capability := map[string]string{"GET": "read", "LIST": "list", "DELETE": "delete"}[re.Method]
	if capability == "" {
		capability = "update"
	}
	const valid = "the token is valid, but "
	var m []string
	switch {
	case strings.Contains(msg, "missing client token"):
		return "no token was sent: set KEYRAFT_TOKEN (or -token) to a token", true
	case strings.Contains(msg, "invalid token"):
		return "the server does not know this token (mistyped, revoked, or expired): set KEYRAFT_TOKEN to a valid token", true
	case strings.Contains(msg, "the token has expired"):
		return "the token has expired: set KEYRAFT_TOKEN to a valid token", true
	case strings.Contains(msg, "belongs to another namespace"):
		return valid + "it belongs to another namespace: set -namespace or KEYRAFT_NAMESPACE to the token's own", true
	case strings.Contains(msg, "bound_cidrs"):
		return valid + "it may not be used from this address: use it from a network its bound_cidrs allow", true
	case sudoRe.MatchString(msg):
		m = sudoRe.FindStringSubmatch(msg)
		return valid + "this needs sudo on " + m[1] + ", which its policies do not grant ('keyraft token lookup' lists them)", true
	case noGrantRe.MatchString(msg):
		m = noGrantRe.FindStringSubmatch(msg)
		return fmt.Sprintf(valid+"none of its policies grants %s on %s: add a policy that does to the token ('keyraft token lookup' lists its policies)", m[1], m[2]), true
	case notGrantRe.MatchString(msg):
		m = notGrantRe.FindStringSubmatch(msg)
		return fmt.Sprintf(valid+"%s, its most specific rule for %s, does not grant %s: add %s to that rule", m[2], m[1], m[3], m[3]), true
	case conditionsRe.MatchString(msg):
		m = conditionsRe.FindStringSubmatch(msg)
		return fmt.Sprintf(valid+"%s grants %s on %s only under conditions this request does not meet (the error says which)", m[1], m[2], m[3]), true
	case deniedByRe.MatchString(msg):
		m = deniedByRe.FindStringSubmatch(msg)
		return fmt.Sprintf(valid+"%s refuses %s on %s: only a change to that policy lifts it", m[1], capability, re.Path), true
	case strings.TrimSpace(strings.ToLower(msg)) == "permission denied" || msg == "":
		what := "this request"
		if re.Path != "" {
			what = capability + " on " + re.Path
		}
		return "the token is missing, invalid or expired, or its policies do not allow " + what + ": 'keyraft token lookup' tells which", false
	}
	return "", false
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// oneLine makes s safe to print as one line: control characters (line
// breaks, terminal escapes) become spaces.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// clean makes a value from the server safe to print in a table: control
// characters become '?', so that a key name cannot drive the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

var versionCmd = &command{
	name:    "version",
	noFlags: true,
	summary: "print the version",
	help: `
Print the version of keyraft and of the Go toolchain that built it. The
version is the one the server reports (status, sys/health); a build sets it
with -ldflags "-X github.com/keyraft/keyraft/internal/version.Version=V"
('make build' does, from 'git describe --tags').`,
	run: func(e *env, cmd *command, args []string) error {
		fs, _ := e.flags(cmd)
		if _, err := e.positional(cmd, fs, args, 0, 0); err != nil {
			return err
		}
		goVersion := ""
		if bi, ok := debug.ReadBuildInfo(); ok {
			goVersion = " " + bi.GoVersion
		}
		fmt.Fprintf(e.stdout, "keyraft %s%s\n", version.Version, goVersion)
		return nil
	},
}

var helpCmd = &command{
	name:    "help",
	args:    "[COMMAND]",
	noFlags: true,
	summary: "show the command list, or the manual of a command",
	help:    "Without an argument, list the commands. With one, print its manual, as 'keyraft COMMAND -h' does.",
}

func runHelp(e *env, cmd *command, args []string) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		fs, _ := e.flags(cmd)
		e.manual(cmd, fs)
		return nil
	}
	if len(args) == 0 {
		e.usage(e.stdout)
		return nil
	}
	if group := strings.Join(args, " "); groups[group] != "" {
		fmt.Fprintf(e.stdout, "Usage: keyraft %s <command> [flags] [args]\n\n", group)
		var list []*command
		for _, c := range commands {
			if strings.HasPrefix(c.name, group+" ") {
				list = append(list, c)
			}
		}
		printCommandList(e.stdout, list, nameWidth(list))
		return nil
	}
	target, _, err := lookup(args)
	if err != nil {
		return err
	}
	return target.run(e, target, []string{"-h"})
}

// readInput reads what a data command works on: the file -in names, or
// stdin when it is "" or "-". It refuses more than limit bytes.
func (e *env) readInput(in string, limit int64) ([]byte, error) {
	r, name := e.stdin, "stdin"
	if in != "" && in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, in
	}
	if r == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		if limit%(1<<20) == 0 {
			return nil, fmt.Errorf("%s is larger than %d MiB", name, limit>>20)
		}
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}
