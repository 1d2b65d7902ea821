package api

// Route groups that other files fill in.

func (s *Server) statsRoutes() []route { return nil }

func (s *Server) socialRoutes() []route { return nil }
