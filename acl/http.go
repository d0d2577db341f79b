package acl

import (
	"net/url"
	"strconv"
	"strings"
)

// CapabilityFor returns the capability an HTTP request needs, as Vault
// decides it:
//
//   - GET and HEAD need read; with ?list=true (or another true value of
//     strconv.ParseBool), list.
//   - LIST needs list.
//   - POST and PUT need update, except on a path that can create what it
//     names (transit/encrypt/:name, which creates a missing key: the
//     upsert), where they need create when exists is false.
//   - PATCH needs patch.
//   - DELETE needs delete.
//   - Any other method needs "", which Evaluate refuses.
//
// path is the request's path, with or without "/v1/" in front and with or
// without the query; exists says whether the object the path names (for
// transit/encrypt/:name, the key) exists, and matters for POST and PUT
// only. Sudo never comes from a method: a caller that serves a
// root-protected path evaluates sudo as a second Request.
func CapabilityFor(method, path string, exists bool) string {
	path, query, _ := strings.Cut(path, "?")
	switch strings.ToUpper(method) {
	case "GET", "HEAD":
		if listQuery(query) {
			return List
		}
		return Read
	case "LIST":
		return List
	case "POST", "PUT":
		if !exists && createsOnWrite(path) {
			return Create
		}
		return Update
	case "PATCH":
		return Patch
	case "DELETE":
		return Delete
	}
	return ""
}

// listQuery reports whether a query string asks for a list, as Vault's
// GET ?list=true does: the first value of "list" is true.
func listQuery(query string) bool {
	if query == "" {
		return false
	}
	q, _ := url.ParseQuery(query) // as net/http's URL.Query, which drops malformed pairs
	if v := q["list"]; len(v) > 0 {
		b, err := strconv.ParseBool(v[0])
		return err == nil && b
	}
	return false
}

// createsOnWrite reports whether a write to path may create the object it
// names, so that Vault's existence check applies: in keyraft only
// transit/encrypt/:name. Creating a key at transit/keys/:name needs update
// in Vault, as do the sys/ paths, and so here.
func createsOnWrite(path string) bool {
	if p, ok := strings.CutPrefix(path, "/v1/"); ok {
		path = p
	} else {
		path = strings.TrimPrefix(path, "/")
	}
	name, ok := strings.CutPrefix(strings.TrimSuffix(path, "/"), "transit/encrypt/")
	return ok && name != "" && !strings.Contains(name, "/")
}
