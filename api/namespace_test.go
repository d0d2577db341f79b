package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSetNamespace(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("X-Vault-Namespace"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c, err := New(Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"", "prod", "/dev/", "root"} {
		if err := c.SetNamespace(ns); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(context.Background(), "GET", "sys/health", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"", "prod", "dev", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("namespace headers %q, want %q", got, want)
		}
	}
	if err := c.SetNamespace("a\nb"); err == nil {
		t.Fatal("line break accepted")
	}
}
