package api

import (
	"fmt"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
)

// router finds a request's route by walking its path one segment at a time. gorilla/mux, which
// it replaced, tried each route's regular expression in turn: 12 µs to reach the job list's
// route (docs/architecture.md).
//
// Patterns are the route table's paths. A segment is either literal text or a variable,
// {name:expression}, that must match the whole segment. Literal segments win over
// variables, unless only a variable leads to a route for the request's method. Variables are
// tried in the order their routes were added.
type router struct {
	root node
	// notFound serves paths that no route has. methodNotAllowed serves paths whose routes
	// take other methods, after the router sets the Allow header.
	notFound, methodNotAllowed http.Handler
}

// node is one segment of the path, counted from the root.
type node struct {
	literals map[string]*node
	vars     []*varEdge
	// methods has a handler for each method of the route that ends here; nil when none does.
	methods map[string]http.Handler
}

// varEdge leads to the next segment through a variable.
type varEdge struct {
	name, expr string
	match      func(string) bool
	next       *node
}

// pathVar is a variable's value in one request's path.
type pathVar struct{ name, value string }

// handle adds the route method pattern. A GET route also serves HEAD, for which net/http
// writes no body.
func (rt *router) handle(method, pattern string, h http.Handler) error {
	if !strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("route %s %s: the path must start with /", method, pattern)
	}
	n := &rt.root
	for _, seg := range patternSegments(pattern[1:]) {
		next, err := n.child(seg)
		if err != nil {
			return fmt.Errorf("route %s %s: %w", method, pattern, err)
		}
		n = next
	}
	methods := []string{method}
	if method == http.MethodGet {
		methods = append(methods, http.MethodHead)
	}
	if n.methods == nil {
		n.methods = make(map[string]http.Handler)
	}
	for _, m := range methods {
		if _, dup := n.methods[m]; dup {
			return fmt.Errorf("route %s %s is defined twice", m, pattern)
		}
		n.methods[m] = h
	}
	return nil
}

// patternSegments splits a pattern without its leading slash at the slashes outside braces,
// since a variable's expression may contain one, as in [^/]+.
func patternSegments(pattern string) []string {
	var segs []string
	depth, start := 0, 0
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth == 0 {
				segs = append(segs, pattern[start:i])
				start = i + 1
			}
		}
	}
	return append(segs, pattern[start:])
}

// child returns the node that segment seg of a pattern leads to, adding it when needed.
func (n *node) child(seg string) (*node, error) {
	inner, isVar := strings.CutPrefix(seg, "{")
	if !isVar {
		if n.literals == nil {
			n.literals = make(map[string]*node)
		}
		if n.literals[seg] == nil {
			n.literals[seg] = &node{}
		}
		return n.literals[seg], nil
	}
	inner, closed := strings.CutSuffix(inner, "}")
	name, expr, _ := strings.Cut(inner, ":")
	if !closed || name == "" || expr == "" {
		return nil, fmt.Errorf("segment %q is not of the form {name:expression}", seg)
	}
	for _, e := range n.vars {
		if e.name == name && e.expr == expr {
			return e.next, nil
		}
	}
	match, err := segmentMatcher(expr)
	if err != nil {
		return nil, fmt.Errorf("segment %q: %w", seg, err)
	}
	e := &varEdge{name: name, expr: expr, match: match, next: &node{}}
	n.vars = append(n.vars, e)
	return e.next, nil
}

// segmentMatcher returns a test of a whole segment against expr. The table's expressions
// are tested without the regexp package.
func segmentMatcher(expr string) (func(string) bool, error) {
	switch expr {
	case "[0-9]+":
		return func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }, nil
	case "[0-9a-zA-Z-]+":
		return func(s string) bool {
			for i := 0; i < len(s); i++ {
				c := s[i]
				if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
					return false
				}
			}
			return s != ""
		}, nil
	case "[^/]+":
		// A segment contains no slash.
		return func(s string) bool { return s != "" }, nil
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, err
	}
	return re.MatchString, nil
}

// find returns the node at the end of rest, a path without its leading slash, that has a
// route for method, and vars with the path's variables appended. Where a literal segment
// leads to no such route, the variables at the same place are tried.
func (n *node) find(rest, method string, vars []pathVar) (*node, []pathVar) {
	seg, after, more := strings.Cut(rest, "/")
	if next := n.literals[seg]; next != nil {
		if found, v := next.findFrom(after, more, method, vars); found != nil {
			return found, v
		}
	}
	for _, e := range n.vars {
		if !e.match(seg) {
			continue
		}
		if found, v := e.next.findFrom(after, more, method, append(vars, pathVar{e.name, seg})); found != nil {
			return found, v
		}
	}
	return nil, vars
}

// findFrom goes on from n with the rest of the path, when there is one.
func (n *node) findFrom(rest string, more bool, method string, vars []pathVar) (*node, []pathVar) {
	if more {
		return n.find(rest, method, vars)
	}
	if n.methods[method] == nil {
		return nil, vars
	}
	return n, vars
}

// allowed adds to methods the methods of every route whose pattern matches rest.
func (n *node) allowed(rest string, methods map[string]bool) {
	seg, after, more := strings.Cut(rest, "/")
	var next []*node
	if lit := n.literals[seg]; lit != nil {
		next = append(next, lit)
	}
	for _, e := range n.vars {
		if e.match(seg) {
			next = append(next, e.next)
		}
	}
	for _, child := range next {
		if more {
			child.allowed(after, methods)
			continue
		}
		for m := range child.methods {
			methods[m] = true
		}
	}
}

// ServeHTTP redirects a path that is not clean to its clean form, as gorilla/mux did, and
// otherwise runs the route's handler, with its variables readable by r.PathValue. The
// redirect of a method other than GET and HEAD is a 308, so that clients send the same
// request again, where after a 301 most of them send a GET.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if clean := cleanPath(r.URL.Path); clean != r.URL.Path {
		u := *r.URL
		u.Path = clean
		w.Header().Set("Location", u.String())
		status := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			status = http.StatusMovedPermanently
		}
		w.WriteHeader(status)
		return
	}
	path := r.URL.Path[1:]
	var buf [4]pathVar
	n, vars := rt.root.find(path, r.Method, buf[:0])
	if n == nil {
		methods := make(map[string]bool)
		rt.root.allowed(path, methods)
		if len(methods) == 0 {
			rt.notFound.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(slices.Sorted(maps.Keys(methods)), ", "))
		rt.methodNotAllowed.ServeHTTP(w, r)
		return
	}
	for _, v := range vars {
		r.SetPathValue(v.name, v.value)
	}
	n.methods[r.Method].ServeHTTP(w, r)
}

// cleanPath returns p with a leading slash, without empty, . and .. segments, and with its
// trailing slash kept.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}
