package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Path patterns of the ids: project UUIDs, and numeric ids for the rest.
const (
	projectPath = "/api/projects/{pid:[0-9a-zA-Z-]+}"
	spiderPath  = projectPath + "/spiders/{sid:[0-9]+}"
	jobPath     = spiderPath + "/jobs/{jid:[0-9]+}"
)

// routes is the route table: one line per route.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = s.wrap(func(http.ResponseWriter, *http.Request) (any, error) { return nil, errNotFound })
	r.MethodNotAllowedHandler = s.wrap(methodNotAllowed)

	r.HandleFunc("/", health).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/api", s.wrap(s.apiRoot)).Methods(http.MethodGet)
	r.Handle("/api/health", s.wrap(s.healthDetail)).Methods(http.MethodGet)
	r.Handle("/api/auth/login", s.wrap(s.login)).Methods(http.MethodPost)

	r.Handle("/api/projects", s.authed(s.listProjects)).Methods(http.MethodGet)
	r.Handle("/api/projects", s.authed(s.createProject)).Methods(http.MethodPost)
	r.Handle(projectPath, s.authed(s.getProject)).Methods(http.MethodGet)

	r.Handle(projectPath+"/deploys", s.authed(s.listDeploys)).Methods(http.MethodGet)
	r.Handle(projectPath+"/deploys", s.authed(s.createDeploy)).Methods(http.MethodPost)
	r.Handle(projectPath+"/deploys/{did:[0-9]+}", s.authed(s.getDeploy)).Methods(http.MethodGet)

	r.Handle(projectPath+"/spiders", s.authed(s.listSpiders)).Methods(http.MethodGet)
	r.Handle(spiderPath, s.authed(s.getSpider)).Methods(http.MethodGet)

	r.Handle(spiderPath+"/jobs", s.authed(s.listJobs)).Methods(http.MethodGet)
	r.Handle(spiderPath+"/jobs", s.authed(s.createJob)).Methods(http.MethodPost)
	r.Handle(jobPath, s.authed(s.getJob)).Methods(http.MethodGet)
	r.Handle(jobPath, s.authed(s.updateJob)).Methods(http.MethodPatch, http.MethodPut)
	r.Handle(jobPath+"/stop", s.authed(s.stopJob)).Methods(http.MethodPut, http.MethodPost)
	r.Handle(jobPath+"/data", s.authed(s.jobData)).Methods(http.MethodGet)
	r.Handle(jobPath+"/data/download", s.authed(s.downloadJobData)).Methods(http.MethodGet)
	r.Handle(jobPath+"/ingest", s.authed(s.ingest)).Methods(http.MethodPost)
	return r
}

func methodNotAllowed(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, errDetail(http.StatusMethodNotAllowed, `Method "`+r.Method+`" not allowed.`)
}
