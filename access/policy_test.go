package access_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/fsm"
)

const appPolicy = `path "transit/encrypt/app" {
  capabilities = ["update"]
}
`

// allows reports whether policies grant capability on path.
func allows(ps []*acl.Policy, path, capability string) bool {
	return acl.Evaluate(ps, acl.Request{Path: path, Capability: capability}).Allowed
}

// TestPolicyCRUD: a policy written reads back as written, is listed
// beside the built-in ones, and is gone once deleted; deleting one that
// does not exist succeeds.
func TestPolicyCRUD(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	if err := svc.PutPolicy(bg, "app", appPolicy); err != nil {
		t.Fatal(err)
	}
	src, rev, err := svc.ReadPolicy("app")
	if err != nil || src != appPolicy || rev == 0 {
		t.Fatalf("read: %q %d %v", src, rev, err)
	}
	if r, err := svc.PolicyRevision("app"); err != nil || r != rev {
		t.Fatalf("revision %d %v, want %d", r, err, rev)
	}
	if err := svc.PutPolicy(bg, "ops", appPolicy); err != nil {
		t.Fatal(err)
	}
	list, err := svc.ListPolicies()
	if err != nil || !slices.Equal(list, []string{"app", "default", "ops", "root"}) {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := svc.DeletePolicy(bg, "app"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ReadPolicy("app"); !errors.Is(err, access.ErrPolicyNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	if r, _ := svc.PolicyRevision("app"); r != 0 {
		t.Fatalf("revision after delete: %d", r)
	}
	if err := svc.DeletePolicy(bg, "app"); err != nil {
		t.Fatalf("delete of an absent policy: %v", err)
	}
	if list, _ := svc.ListPolicies(); !slices.Equal(list, []string{"default", "ops", "root"}) {
		t.Fatalf("list after delete: %v", list)
	}
}

// TestPolicyBuiltins: root cannot be written, read gives nothing;
// default reads as the built-in until replaced, and cannot be deleted.
func TestPolicyBuiltins(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	for _, name := range []string{"root", "Root", "ROOT"} {
		if err := svc.PutPolicy(bg, name, appPolicy); !errors.Is(err, access.ErrPolicyBuiltin) {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	for _, name := range []string{"root", "default"} {
		if err := svc.DeletePolicy(bg, name); !errors.Is(err, access.ErrPolicyBuiltin) {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	if m.Index() != 0 {
		t.Fatal("refused changes committed")
	}
	if src, rev, err := svc.ReadPolicy("root"); err != nil || src != "" || rev != 0 {
		t.Fatalf("read root: %q %d %v", src, rev, err)
	}
	if src, rev, err := svc.ReadPolicy("default"); err != nil || src != access.DefaultPolicySource || rev != 0 {
		t.Fatalf("read default: %q %d %v", src, rev, err)
	}
	if list, _ := svc.ListPolicies(); !slices.Equal(list, []string{"default", "root"}) {
		t.Fatalf("list of an empty store: %v", list)
	}
	if err := svc.PutPolicy(bg, "default", appPolicy); err != nil {
		t.Fatal(err)
	}
	if src, rev, err := svc.ReadPolicy("default"); err != nil || src != appPolicy || rev == 0 {
		t.Fatalf("read replaced default: %q %d %v", src, rev, err)
	}
	if list, _ := svc.ListPolicies(); !slices.Equal(list, []string{"default", "root"}) {
		t.Fatalf("list with a replaced default: %v", list)
	}
}

// TestPutPolicyRefusesBadInput: a source that does not parse is refused
// with its position; a name that cannot be a record is refused; nothing
// is stored.
func TestPutPolicyRefusesBadInput(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	for _, src := range []string{
		"path \"transit/*\" {\n  capabilities = [\"raed\"]\n}\n",
		"path \"transit/*\" {\n",
		"nonsense = 1\n",
	} {
		err := svc.PutPolicy(bg, "bad", src)
		var pe *acl.ParseError
		if !errors.As(err, &pe) || pe.Line == 0 {
			t.Errorf("source %q: %v, want an *acl.ParseError with a line", src, err)
		}
	}
	for _, name := range []string{"", "a/b", "sp ace", "t\x7fab", string(make([]byte, 129))} {
		if err := svc.PutPolicy(bg, name, appPolicy); !errors.Is(err, access.ErrInvalidRequest) {
			t.Errorf("name %q: %v", name, err)
		}
		if _, _, err := svc.ReadPolicy(name); !errors.Is(err, access.ErrPolicyNotFound) {
			t.Errorf("read %q: %v", name, err)
		}
	}
	if m.Index() != 0 {
		t.Fatalf("refused policies committed %d entries", m.Index())
	}
	if _, _, err := svc.ReadPolicy("bad"); !errors.Is(err, access.ErrPolicyNotFound) {
		t.Fatalf("read of a refused policy: %v", err)
	}
}

// TestPoliciesParsed: Policies answers the parsed policies a token
// names, following every change: a rewrite, a deletion, a replaced
// default; root is acl.Root; a name without a policy grants nothing.
func TestPoliciesParsed(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	get := func(names ...string) []*acl.Policy {
		t.Helper()
		ps, err := svc.Policies("", names)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	if ps := get("app"); len(ps) != 0 {
		t.Fatalf("absent policy: %v", ps)
	}
	if err := svc.PutPolicy(bg, "app", appPolicy); err != nil {
		t.Fatal(err)
	}
	ps := get("app")
	if len(ps) != 1 || ps[0].Name != "app" || !allows(ps, "transit/encrypt/app", "update") || allows(ps, "transit/decrypt/app", "update") {
		t.Fatalf("app: %v", ps)
	}
	if err := svc.PutPolicy(bg, "app", `path "transit/decrypt/app" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if ps := get("app"); allows(ps, "transit/encrypt/app", "update") || !allows(ps, "transit/decrypt/app", "update") {
		t.Fatal("the rewritten policy is not what Policies answers")
	}
	if err := svc.DeletePolicy(bg, "app"); err != nil {
		t.Fatal(err)
	}
	if ps := get("app"); len(ps) != 0 {
		t.Fatalf("deleted policy still answered: %v", ps)
	}

	if ps := get("default"); len(ps) != 1 || ps[0] != access.BuiltinDefault() || !allows(ps, "auth/token/lookup-self", "read") {
		t.Fatalf("built-in default: %v", ps)
	}
	if err := svc.PutPolicy(bg, "default", appPolicy); err != nil {
		t.Fatal(err)
	}
	if ps := get("default"); allows(ps, "auth/token/lookup-self", "read") || !allows(ps, "transit/encrypt/app", "update") {
		t.Fatal("replaced default not answered")
	}
	if ps := get("root", "nope"); len(ps) != 1 || ps[0] != acl.Root {
		t.Fatalf("root: %v", ps)
	}
}

// TestPoliciesCorruptRecord: a stored policy that no longer parses
// grants nothing, rather than failing every request or granting more.
func TestPoliciesCorruptRecord(t *testing.T) {
	t.Parallel()
	svc, m := newService(t)
	m.Put(fsm.RecordPolicy+"old", mustJSON(t, access.PolicyRecord{Name: "old", Policy: `path "x" { capabilities = ["fly"] }`}))
	if err := svc.PutPolicy(bg, "good", appPolicy); err != nil {
		t.Fatal(err)
	}
	ps, err := svc.Policies("", []string{"old", "good"})
	if err != nil || len(ps) != 1 || ps[0].Name != "good" {
		t.Fatalf("policies with a corrupt one: %v %v", ps, err)
	}
	m.Put(fsm.RecordPolicy+"junk", []byte("{not json"))
	if _, _, err := svc.ReadPolicy("junk"); err == nil {
		t.Fatal("read of an undecodable record succeeded")
	}
}

// TestPoliciesInNamespace: a namespace's policies are its own: the
// same name in the root namespace and in another is another policy.
func TestPoliciesInNamespace(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t)
	if err := svc.CreateNamespace(bg, "dev"); err != nil {
		t.Fatal(err)
	}
	if err := svc.PutPolicyIn(bg, "dev", "app", appPolicy); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ReadPolicy("app"); !errors.Is(err, access.ErrPolicyNotFound) {
		t.Fatalf("dev's policy read in the root namespace: %v", err)
	}
	if src, _, err := svc.ReadPolicyIn("dev", "app"); err != nil || src != appPolicy {
		t.Fatalf("read in dev: %q %v", src, err)
	}
	if l, _ := svc.ListPoliciesIn("dev"); !slices.Equal(l, []string{"app", "default", "root"}) {
		t.Fatalf("list in dev: %v", l)
	}
	if l, _ := svc.ListPolicies(); !slices.Equal(l, []string{"default", "root"}) {
		t.Fatalf("list in root: %v", l)
	}
	if ps, _ := svc.Policies("", []string{"app"}); len(ps) != 0 {
		t.Fatalf("root namespace answers dev's policy: %v", ps)
	}
	if ps, _ := svc.Policies("dev", []string{"app"}); len(ps) != 1 || !allows(ps, "transit/encrypt/app", "update") {
		t.Fatalf("dev's policy: %v", ps)
	}
	if err := svc.DeletePolicyIn(bg, "dev", "app"); err != nil {
		t.Fatal(err)
	}
	if ps, _ := svc.Policies("dev", []string{"app"}); len(ps) != 0 {
		t.Fatalf("deleted namespace policy answered: %v", ps)
	}
}
