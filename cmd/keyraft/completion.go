package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

var completionCmd = &command{
	name:    "completion",
	args:    "SHELL",
	summary: "print a shell completion script (bash, zsh or fish)",
	help: `
Print the completion script for SHELL (bash, zsh or fish): it completes the
commands, their subcommands and their flags; arguments complete as file
names. Load it in the shell's startup file:

  bash:  source <(keyraft completion bash)
  zsh:   source <(keyraft completion zsh)     (after compinit)
  fish:  keyraft completion fish | source

or save it where the shell looks for completions
(/etc/bash_completion.d/keyraft, _keyraft in a directory of $fpath,
~/.config/fish/completions/keyraft.fish).`,
}

func runCompletion(e *env, cmd *command, args []string) error {
	fs, _ := e.flags(cmd)
	pos, err := e.positional(cmd, fs, args, 1, 1)
	if err != nil {
		return err
	}
	t := e.completionTree()
	switch pos[0] {
	case "bash":
		writeBashCompletion(e.stdout, t)
	case "zsh":
		writeZshCompletion(e.stdout, t)
	case "fish":
		writeFishCompletion(e.stdout, t)
	default:
		return &usageError{cmd: cmd, msg: fmt.Sprintf("unknown shell %q", pos[0]), hint: "use bash, zsh or fish"}
	}
	return nil
}

// compWord is one completion: a word and what it does.
type compWord struct{ word, desc string }

// compNode is where the words typed so far lead: a group ("" is the top,
// "keys", "operator raft") completes the words that may follow, a
// command its flags.
type compNode struct {
	path  string
	group bool
	words []compWord
}

// completionTree lists every group with the words that may follow it,
// then every command with its flags, from commands.
func (e *env) completionTree() []compNode {
	var nodes []compNode
	index := map[string]int{}
	node := func(path string) *compNode {
		i, ok := index[path]
		if !ok {
			i = len(nodes)
			index[path] = i
			nodes = append(nodes, compNode{path: path, group: true})
		}
		return &nodes[i]
	}
	node("")
	for _, c := range commands {
		words := strings.Fields(c.name)
		for i := range words {
			parent := node(strings.Join(words[:i], " "))
			desc := c.summary
			if i < len(words)-1 {
				desc = strings.Join(words[:i+1], " ") + " commands"
			}
			if !containsWord(parent.words, words[i]) {
				parent.words = append(parent.words, compWord{words[i], desc})
			}
		}
	}
	for _, c := range commands {
		nodes = append(nodes, compNode{path: c.name, words: e.commandFlags(c)})
	}
	return nodes
}

func containsWord(ws []compWord, w string) bool {
	for _, x := range ws {
		if x.word == w {
			return true
		}
	}
	return false
}

// commandFlags returns the flags of c, as its -h lists them: c runs with
// flagSets set, which stops it at its flag set.
func (e *env) commandFlags(c *command) []compWord {
	if c.noFlags || c == serverCmd { // the server parses its own flags
		return nil
	}
	var out []compWord
	sub := &env{ctx: e.ctx, stdout: io.Discard, stderr: io.Discard, getenv: e.getenv, flagSets: func(fs *flag.FlagSet) {
		fs.VisitAll(func(f *flag.Flag) {
			_, usage := flag.UnquoteUsage(f)
			out = append(out, compWord{"-" + f.Name, usage})
		})
	}}
	c.run(sub, c, nil)
	return out
}

func (n compNode) wordList() string {
	ws := make([]string, len(n.words))
	for i, w := range n.words {
		ws[i] = w.word
	}
	return strings.Join(ws, " ")
}

// shScript writes the completion script of bash or zsh: the two differ
// only in how the words typed so far are read and how the candidates are
// offered, given in the format verbs of head (the header, and the
// "local" line and loop of _keyraft) and tail (after the candidates).
func shScript(w io.Writer, nodes []compNode, head, tail string) {
	var pats []string
	for _, n := range nodes {
		if n.group {
			pats = append(pats, `"`+n.path+`"`)
		}
	}
	fmt.Fprintf(w, head, strings.Join(pats, "|"))
	fmt.Fprint(w, `        _keyraft_group "$cmdpath" || break
        [[ $w == -* ]] && break
        cmdpath=${cmdpath:+$cmdpath }$w
    done
    local list=""
    case "$cmdpath" in
`)
	for _, n := range nodes {
		if len(n.words) > 0 {
			fmt.Fprintf(w, "        %q) list=\"%s\" ;;\n", n.path, n.wordList())
		}
	}
	fmt.Fprint(w, "    esac\n"+tail)
}

// shGroup is the shell function that tells the group paths (%s: their
// case pattern), for bash and zsh.
const shGroup = `_keyraft_group() {
    case "$1" in
        %s) return 0 ;;
    esac
    return 1
}
`

func writeBashCompletion(w io.Writer, nodes []compNode) {
	shScript(w, nodes, `# bash completion for keyraft, from 'keyraft completion bash'. Load it with
#   source <(keyraft completion bash)
# or save it as /etc/bash_completion.d/keyraft.

`+shGroup+`
_keyraft() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmdpath="" w i
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
`, `    if _keyraft_group "$cmdpath" || [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$list" -- "$cur"))
    fi
}

complete -o default -F _keyraft keyraft
`)
}

func writeZshCompletion(w io.Writer, nodes []compNode) {
	shScript(w, nodes, `#compdef keyraft
# zsh completion for keyraft, from 'keyraft completion zsh'. Load it with
#   source <(keyraft completion zsh)
# after compinit, or save it as _keyraft in a directory of $fpath.

`+shGroup+`
_keyraft() {
    local cmdpath="" w i
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
`, `    if _keyraft_group "$cmdpath" || [[ $PREFIX == -* ]]; then
        compadd -- ${=list}
    else
        _files
    fi
}

if [[ $funcstack[1] == _keyraft ]]; then
    _keyraft "$@"
else
    compdef _keyraft keyraft
fi
`)
}

func writeFishCompletion(w io.Writer, nodes []compNode) {
	var pats []string
	for _, n := range nodes {
		if n.group {
			pats = append(pats, fishQuote(n.path))
		}
	}
	fmt.Fprintf(w, `# fish completion for keyraft, from 'keyraft completion fish'. Load it with
#   keyraft completion fish | source
# or save it as ~/.config/fish/completions/keyraft.fish.

function __keyraft_group
    switch "$argv[1]"
        case %s
            return 0
    end
    return 1
end

# __keyraft_path prints the command words typed so far ("keys create").
function __keyraft_path
    set -l path ""
    for w in (commandline -opc)[2..-1]
        __keyraft_group "$path"; or break
        string match -q -- '-*' $w; and break
        if test -n "$path"
            set path "$path $w"
        else
            set path $w
        end
    end
    echo $path
end

function __keyraft_at
    set -l p (__keyraft_path)
    test "$p" = "$argv[1]"
end

`, strings.Join(pats, " "))
	for _, n := range nodes {
		cond := fishQuote("__keyraft_at " + fishQuote(n.path))
		for _, word := range n.words {
			if n.group {
				fmt.Fprintf(w, "complete -c keyraft -f -n %s -a %s -d %s\n", cond, fishQuote(word.word), fishQuote(word.desc))
			} else {
				fmt.Fprintf(w, "complete -c keyraft -n %s -o %s -d %s\n", cond, fishQuote(strings.TrimPrefix(word.word, "-")), fishQuote(word.desc))
			}
		}
	}
}

// fishQuote quotes s for fish: in single quotes, where only \ and ' are
// special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
