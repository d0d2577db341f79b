package host

import (
	"github.com/hashicorp/go-hclog"
)

type rec struct {
	hclog.Logger
	lines *[]string
}

func recorder(lines *[]string) hclog.Logger { return rec{hclog.NewNullLogger(), lines} }

func (r rec) Info(msg string, args ...any) { *r.lines = append(*r.lines, msg) }
