package api

// RouteForTest is one route of the table, for tests outside the package.
type RouteForTest struct {
	Method, Path string
	NeedsToken   bool
}

// RoutesForTest returns the route table.
func (s *Server) RoutesForTest() []RouteForTest {
	var out []RouteForTest
	for _, rt := range s.table() {
		out = append(out, RouteForTest{Method: rt.method, Path: openAPIPath(rt.path), NeedsToken: rt.access == token})
	}
	return out
}
