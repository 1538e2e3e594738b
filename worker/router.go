package worker

import (
	"sort"
	"strings"
)

// DRUM's routes and Werkzeug 2.2's way of matching them (routing/matcher.py): a state
// machine over path segments, strict trailing slashes that redirect (308) only for an
// allowed method, non-strict /ping/, merged duplicate slashes, and 405 with the methods
// of every rule that matched the path. Routing quirks are part of DRUM's wire behaviour
// (spec §4.3), so the algorithm is ported rather than approximated.

type endpoint int

const (
	epPing endpoint = iota + 1
	epHealth
	epInfo
	epCapabilities
	epStats
	epPredict
	epTransform
	epPredictUnstructured
	epChat
	epModels
	epDirectAccess
	epStatic // Flask's built-in /static/<path:filename>; DRUM ships no static files
)

type rule struct {
	path     string
	methods  map[string]bool // what the rule accepts, including HEAD and OPTIONS as Flask adds them
	strict   bool            // strict_slashes
	endpoint endpoint
}

// routeTable lists DRUM's rules (server.py, prediction_server.py) in registration order.
var routeTable = []struct {
	path     string
	methods  []string
	strict   bool
	endpoint endpoint
}{
	{"/", []string{"GET"}, true, epPing},
	{"/ping/", []string{"GET"}, false, epPing},
	{"/capabilities/", []string{"GET"}, true, epCapabilities},
	{"/info/", []string{"GET"}, true, epInfo},
	{"/health/", []string{"GET"}, true, epHealth},
	{"/predictions/", []string{"POST"}, true, epPredict},
	{"/predict/", []string{"POST"}, true, epPredict},
	{"/invocations", []string{"POST"}, true, epPredict},
	{"/transform/", []string{"POST"}, true, epTransform},
	{"/predictionsUnstructured/", []string{"POST"}, true, epPredictUnstructured},
	{"/predictUnstructured/", []string{"POST"}, true, epPredictUnstructured},
	{"/chat/completions", []string{"POST"}, true, epChat},
	{"/v1/chat/completions", []string{"POST"}, true, epChat},
	{"/models", []string{"GET"}, true, epModels},
	{"/v1/models", []string{"GET"}, true, epModels},
	{"/directAccess/<path>", []string{"GET", "POST", "PUT"}, true, epDirectAccess},
	{"/nim/<path>", []string{"GET", "POST", "PUT"}, true, epDirectAccess},
	{"/stats/", []string{"GET"}, true, epStats},
}

// state is one node of Werkzeug's StateMachineMatcher. The only dynamic transition DRUM
// uses is the path converter, which consumes all remaining segments.
type state struct {
	static map[string]*state
	path   *state // the <path:...> transition, if any
	rules  []*rule
}

func newState() *state { return &state{static: map[string]*state{}} }

type router struct {
	root *state
}

// newRouter builds the rules under prefix (URL_PREFIX; "" for none), joined as Flask
// joins a blueprint's url_prefix. Flask's app-level static route is never prefixed.
func newRouter(prefix string) *router {
	rt := &router{root: newState()}
	for _, r := range append(routeTable[:len(routeTable):len(routeTable)], operabilityRoutes...) { // metrics.go
		path := r.path
		if prefix != "" {
			path = strings.TrimRight(prefix, "/") + "/" + strings.TrimLeft(path, "/")
		}
		rt.add(path, r.methods, r.strict, r.endpoint)
	}
	rt.add("/static/<path>", []string{"GET"}, true, epStatic)
	return rt
}

func (rt *router) add(path string, methods []string, strict bool, ep endpoint) {
	r := &rule{path: path, methods: map[string]bool{"OPTIONS": true}, strict: strict, endpoint: ep}
	for _, m := range methods {
		r.methods[m] = true
		if m == "GET" {
			r.methods["HEAD"] = true
		}
	}
	// Werkzeug merges duplicate slashes in the rule itself, then splits it after an
	// empty domain part.
	path = strings.ReplaceAll(path, "//", "/")
	st := rt.root
	for _, seg := range append([]string{""}, strings.Split(path, "/")...) {
		if strings.HasPrefix(seg, "<") {
			if st.path == nil {
				st.path = newState()
			}
			st = st.path
			continue
		}
		next, ok := st.static[seg]
		if !ok {
			next = newState()
			st.static[seg] = next
		}
		st = next
	}
	st.rules = append(st.rules, r)
}

// routeKind says what matching decided.
type routeKind int

const (
	routeNotFound routeKind = iota
	routeMatched
	routeRedirect         // 308 to redirectPath
	routeMethodNotAllowed // 405 with allowed
)

type route struct {
	kind         routeKind
	rule         *rule
	redirectPath string   // the new path (unquoted), for routeRedirect
	allowed      []string // for routeMethodNotAllowed
}

// match is MapAdapter.match for a decoded request path and an upper-case method.
func (rt *router) match(pathInfo, method string) route {
	pathPart := ""
	if pathInfo != "" {
		pathPart = "/" + strings.TrimLeft(pathInfo, "/")
	}
	have := map[string]bool{}
	r, slash := rt.try(rt.root, splitParts(pathPart), method, have)
	if slash {
		return route{kind: routeRedirect, redirectPath: pathPart + "/"}
	}
	if r != nil {
		return route{kind: routeMatched, rule: r}
	}
	// Werkzeug's merge_slashes retry: re.sub("/{2,}?", "/") replaces each "//" once.
	merged := strings.ReplaceAll(pathPart, "//", "/")
	r, slash = rt.try(rt.root, splitParts(merged), method, have)
	switch {
	case slash:
		return route{kind: routeRedirect, redirectPath: merged + "/"}
	case r != nil:
		return route{kind: routeRedirect, redirectPath: merged}
	case len(have) > 0:
		return route{kind: routeMethodNotAllowed, allowed: methodList(have)}
	}
	return route{kind: routeNotFound}
}

// allowedMethods is MapAdapter.allowed_methods, which Flask uses for OPTIONS answers.
func (rt *router) allowedMethods(pathInfo string) []string {
	if m := rt.match(pathInfo, "--"); m.kind == routeMethodNotAllowed {
		return m.allowed
	}
	return nil
}

func splitParts(pathPart string) []string {
	return append([]string{""}, strings.Split(pathPart, "/")...)
}

// try is StateMachineMatcher.match's inner _match. slash reports Werkzeug's
// SlashRequired, which aborts the whole search.
func (rt *router) try(st *state, parts []string, method string, have map[string]bool) (r *rule, slash bool) {
	if len(parts) == 0 {
		for _, r := range st.rules {
			if !r.methods[method] {
				addMethods(have, r)
				continue
			}
			return r, false
		}
		if next, ok := st.static[""]; ok {
			for _, r := range next.rules {
				if r.methods[method] {
					if r.strict {
						return nil, true
					}
					return r, false
				}
			}
		}
		return nil, false
	}
	if next, ok := st.static[parts[0]]; ok {
		if r, slash := rt.try(next, parts[1:], method, have); r != nil || slash {
			return r, slash
		}
	}
	if st.path != nil {
		// The path converter's regex ([^/].*?)\Z on the rest of the path: not empty, not
		// starting with a slash, no newline after the first character.
		target := strings.Join(parts, "/")
		if target != "" && target[0] != '/' && !strings.Contains(target[1:], "\n") {
			if r, slash := rt.try(st.path, nil, method, have); r != nil || slash {
				return r, slash
			}
		}
	}
	if len(parts) == 1 && parts[0] == "" {
		for _, r := range st.rules {
			if r.strict {
				continue
			}
			if !r.methods[method] {
				addMethods(have, r)
				continue
			}
			return r, false
		}
	}
	return nil, false
}

func addMethods(have map[string]bool, r *rule) {
	for m := range r.methods {
		have[m] = true
	}
}

// methodList orders methods for the Allow header. Werkzeug's order comes from a set and
// varies between runs; this one is stable.
func methodList(set map[string]bool) []string {
	rank := map[string]int{"HEAD": 0, "OPTIONS": 1, "PUT": 2, "POST": 3, "GET": 4}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return rank[out[i]] < rank[out[j]] })
	return out
}
