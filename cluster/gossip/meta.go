package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// MaxMetaSize is the most bytes an encoded Meta may take: memberlist
// carries node metadata in every alive message and refuses more than
// memberlist.MetaMaxSize.
const MaxMetaSize = memberlist.MetaMaxSize

// Meta is what every node advertises about itself. It travels JSON-encoded
// as memberlist node metadata, so every key holder in the cluster can read
// it; it must not carry secrets.
type Meta struct {
	NodeID      string `json:"node_id"`      // equals the gossip node name
	APIAddr     string `json:"api_addr"`     // client API address (URL or host:port)
	ClusterAddr string `json:"cluster_addr"` // cluster (Raft / forwarding) address
	Sealed      bool   `json:"sealed"`       // whether the node is sealed
	Version     string `json:"version"`      // keyraft version string
}

// Encode returns the canonical encoding of m. It fails if NodeID is empty,
// if a field is not valid UTF-8 or holds control characters, or if the
// result would exceed MaxMetaSize.
func (m Meta) Encode() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<", ">", "&" one byte each
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("gossip: encode meta: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("gossip: meta is %d bytes encoded, the limit is %d", len(b), MaxMetaSize)
	}
	return b, nil
}

func (m Meta) check() error {
	if m.NodeID == "" {
		return errors.New("gossip: meta has no node_id")
	}
	for _, f := range [...]struct{ name, v string }{
		{"node_id", m.NodeID}, {"api_addr", m.APIAddr},
		{"cluster_addr", m.ClusterAddr}, {"version", m.Version},
	} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("gossip: meta %s is not valid UTF-8", f.name)
		}
		for _, r := range f.v {
			if unicode.IsControl(r) {
				return fmt.Errorf("gossip: meta %s has control characters", f.name)
			}
		}
	}
	return nil
}

// DecodeMeta parses metadata received from a peer. It is strict: more than
// MaxMetaSize bytes, invalid UTF-8, anything but one JSON object, unknown
// fields, or a Meta that Encode would refuse are all errors. A Meta it
// returns therefore always re-encodes, and decodes back to itself.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > MaxMetaSize {
		return m, fmt.Errorf("gossip: meta is %d bytes, the limit is %d", len(b), MaxMetaSize)
	}
	if !utf8.Valid(b) {
		return m, errors.New("gossip: meta is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("gossip: decode meta: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Meta{}, errors.New("gossip: decode meta: trailing data after the object")
	}
	if _, err := m.Encode(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// State is a member's state as this node last saw it.
type State int

const (
	// Alive: the member answers probes (or has just joined).
	Alive State = iota
	// Suspect is memberlist's intermediate state between a failed probe and
	// Dead. Memberlist v0.7.0 reports no event for it and does not fill in
	// Node.State, so this package does not report it: members go from
	// Alive straight to Dead once the suspicion timeout has run out. The
	// value is kept so that the set of states matches the protocol.
	Suspect
	// Dead: the member stopped answering and its suspicion timed out
	// (String reports "failed").
	Dead
	// Left: the member announced a graceful Leave.
	Left
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "failed"
	case Left:
		return "left"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Member is one entry of the local membership table.
type Member struct {
	Meta       Meta
	GossipAddr string    // host:port of the member's gossip endpoint
	State      State     // as seen by this node
	Since      time.Time // when this node saw it enter State
}
