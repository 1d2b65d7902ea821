package api

import (
	"net/http"
	"regexp"
)

// Path patterns of the ids: project UUIDs, and numeric ids for the rest.
const (
	projectPath = "/api/projects/{pid:[0-9a-zA-Z-]+}"
	spiderPath  = projectPath + "/spiders/{sid:[0-9]+}"
	jobPath     = spiderPath + "/jobs/{jid:[0-9]+}"
)

// access says who may call a route before the handler's own checks.
type access int

const (
	// public routes need no token.
	public access = iota
	// token routes need a valid user or job token.
	token
	// tokenInHandler routes need one too, and their handler reads its user in its own
	// statement (see authedInHandler).
	tokenInHandler
)

// route is one line of the route table. The router and the OpenAPI document are both made
// from the table, so the document cannot miss a route.
type route struct {
	method  string
	path    string
	access  access
	handler handlerFunc
	doc     doc
}

// doc describes a route for the OpenAPI document.
type doc struct {
	summary string
	tag     string
	// request is a value of the body's type, nil for routes without a body.
	request any
	// encodings lists the request body media types; JSON, form and multipart when empty.
	encodings []string
	// response is a value of the success body's type, nil for no body.
	response any
	// status is the success status; 200 when zero.
	status int
	query  []param
	// produces is the media type of a body that is not JSON.
	produces string
}

// param is a documented query parameter.
type param struct {
	name, description string
	schema            map[string]any
}

// table returns every route, grouped by resource.
func (s *Server) table() []route {
	var all []route
	for _, group := range [][]route{
		s.rootRoutes(), s.accountRoutes(), s.projectRoutes(), s.deployRoutes(), s.spiderRoutes(),
		s.jobRoutes(), s.jobDataRoutes(), s.cronRoutes(), s.statsRoutes(), s.socialRoutes(),
	} {
		all = append(all, group...)
	}
	return all
}

// routes builds the router from the table.
func (s *Server) routes() http.Handler {
	r := &router{
		notFound:         s.wrap(func(http.ResponseWriter, *http.Request) (any, error) { return nil, errNotFound }),
		methodNotAllowed: s.wrap(methodNotAllowed),
	}
	for _, rt := range s.table() {
		var h http.Handler
		switch rt.access {
		case token:
			h = s.authed(rt.handler)
		case tokenInHandler:
			h = s.authedInHandler(rt.handler)
		default:
			h = s.wrap(rt.handler)
		}
		if err := r.handle(rt.method, rt.path, h); err != nil {
			// A bad line of the table is a bug, and every test run hits this panic first.
			panic(err)
		}
	}
	return r
}

func methodNotAllowed(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, errDetail(http.StatusMethodNotAllowed, `Method "`+r.Method+`" not allowed.`)
}

var pathVariable = regexp.MustCompile(`\{([a-z]+):[^}]+\}`)

// openAPIPath turns a route path such as /api/projects/{pid:[0-9a-zA-Z-]+} into /api/projects/{pid}.
func openAPIPath(path string) string {
	return pathVariable.ReplaceAllString(path, "{$1}")
}

func (s *Server) rootRoutes() []route {
	return []route{
		{http.MethodGet, "/", public, health, doc{summary: "Health check: plain OK", tag: "root", produces: "text/plain"}},
		{http.MethodGet, "/api", public, s.apiRoot, doc{summary: "List the top-level list routes", tag: "root", response: map[string]string{}}},
		{http.MethodGet, "/api/", public, s.apiRoot, doc{summary: "Same as /api: DRF's router root has a trailing slash", tag: "root", response: map[string]string{}}},
		{http.MethodGet, "/api/health", public, s.healthDetail, doc{summary: "Check the database, Redis and plugins", tag: "root", response: healthDTO{}}},
		{http.MethodGet, "/api/docs", public, s.serveDocs, doc{summary: "This OpenAPI document, as JSON or, with format=yaml, YAML", tag: "root", response: map[string]any{}, query: []param{{"format", "json (default) or yaml", map[string]any{"type": "string", "enum": []string{"json", "yaml"}}}}}},
		{http.MethodGet, "/api/docs/ui", public, serveDocsPage, doc{summary: "A page that renders this document", tag: "root", produces: "text/html"}},
	}
}

func (s *Server) projectRoutes() []route {
	return []route{
		{http.MethodGet, "/api/projects", token, s.listProjects, doc{summary: "List the projects the caller is a member of", tag: "projects", response: pageOf[projectDTO]{}, query: append(pageQuery, searchQuery, orderingQuery)}},
		{http.MethodPost, "/api/projects", token, s.createProject, doc{summary: "Create a project owned by the caller", tag: "projects", request: projectCreateRequest{}, response: projectDTO{}, status: http.StatusCreated}},
		{http.MethodGet, projectPath, token, s.getProject, doc{summary: "Read a project", tag: "projects", response: projectDTO{}}},
		{http.MethodPut, projectPath, token, s.updateProject, doc{summary: "Update a project: name, framework, env vars, data persistence or one member", tag: "projects", request: projectUpdateRequest{}, response: projectUpdatedDTO{}}},
		{http.MethodPatch, projectPath, token, s.updateProject, doc{summary: "Same as PUT: only the fields sent change", tag: "projects", request: projectUpdateRequest{}, response: projectUpdatedDTO{}}},
		{http.MethodDelete, projectPath, token, s.deleteProject, doc{summary: "Delete a project (owner only)", tag: "projects"}},
		{http.MethodGet, projectPath + "/jobs", token, s.listProjectJobs, doc{summary: "List every job of a project, newest first", tag: "projects", response: countedPage[jobDTO]{}, query: shortPageQuery}},
	}
}

func (s *Server) deployRoutes() []route {
	return []route{
		{http.MethodGet, projectPath + "/deploys", token, s.listDeploys, doc{summary: "List a project's deploys, newest first", tag: "deploys", response: pageOf[deployDTO]{}, query: pageQuery}},
		{http.MethodPost, projectPath + "/deploys", token, s.createDeploy, doc{summary: "Upload a project archive and prepare it", tag: "deploys", request: deployUploadRequest{}, encodings: []string{"multipart/form-data"}, response: deployCreatedDTO{}, status: http.StatusCreated}},
		{http.MethodGet, projectPath + "/deploys/{did:[0-9]+}", token, s.getDeploy, doc{summary: "Read a deploy", tag: "deploys", response: deployDTO{}}},
		{http.MethodPut, projectPath + "/deploys/{did:[0-9]+}", token, s.reportDeploy, doc{summary: "Report a build's result (the deploy's token or a superuser)", tag: "deploys", request: deployReportRequest{}, response: deployReportedDTO{}}},
		{http.MethodPatch, projectPath + "/deploys/{did:[0-9]+}", token, s.reportDeploy, doc{summary: "Same as PUT", tag: "deploys", request: deployReportRequest{}, response: deployReportedDTO{}}},
		{http.MethodDelete, projectPath + "/deploys/{did:[0-9]+}", token, s.deleteDeploy, doc{summary: "Delete a deploy and its archive (ADMIN)", tag: "deploys"}},
		{http.MethodPost, projectPath + "/deploys/{did:[0-9]+}/cancel", token, s.cancelDeploy, doc{summary: "Cancel a deploy that is still building", tag: "deploys", response: deployDTO{}}},
		{http.MethodGet, projectPath + "/deploys/{did:[0-9]+}/logs", token, s.deployLogs, doc{summary: "Why a deploy failed", tag: "deploys", response: deployLogsDTO{}}},
		{http.MethodGet, projectPath + "/deploys/{did:[0-9]+}/archive", token, s.deployArchive, doc{summary: "Download a deploy's project archive (its build, or DEVELOPER)", tag: "deploys", produces: "application/zip"}},
	}
}

func (s *Server) spiderRoutes() []route {
	return []route{
		{http.MethodGet, projectPath + "/spiders", token, s.listSpiders, doc{summary: "List a project's spiders", tag: "spiders", response: pageOf[spiderDTO]{}, query: append(pageQuery, searchQuery)}},
		{http.MethodGet, spiderPath, token, s.getSpider, doc{summary: "Read a spider", tag: "spiders", response: spiderDTO{}}},
		{http.MethodPut, spiderPath, token, s.updateSpider, doc{summary: "Set a spider's env vars and data persistence", tag: "spiders", request: spiderUpdateRequest{}, response: spiderUpdatedDTO{}}},
		{http.MethodPatch, spiderPath, token, s.updateSpider, doc{summary: "Same as PUT: only the fields sent change", tag: "spiders", request: spiderUpdateRequest{}, response: spiderUpdatedDTO{}}},
	}
}

func (s *Server) jobRoutes() []route {
	return []route{
		{http.MethodGet, spiderPath + "/jobs", tokenInHandler, s.listJobs, doc{summary: "List a spider's jobs, newest first", tag: "jobs", response: pageOf[jobDTO]{}, query: append(pageQuery, jobFilterQuery...)}},
		{http.MethodPost, spiderPath + "/jobs", token, s.createJob, doc{summary: "Queue a run of the spider", tag: "jobs", request: jobCreateRequest{}, response: jobCreatedDTO{}, status: http.StatusCreated, query: []param{{"sync", "true launches the job before answering", map[string]any{"type": "boolean"}}}}},
		{http.MethodGet, jobPath, token, s.getJob, doc{summary: "Read a job", tag: "jobs", response: jobDTO{}}},
		{http.MethodPatch, jobPath, token, s.updateJob, doc{summary: "Report a job's status and counters, stop it, or change its data persistence", tag: "jobs", request: jobUpdateRequest{}, response: jobUpdatedDTO{}}},
		{http.MethodPut, jobPath, token, s.updateJob, doc{summary: "Same as PATCH", tag: "jobs", request: jobUpdateRequest{}, response: jobUpdatedDTO{}}},
		{http.MethodPut, jobPath + "/stop", token, s.stopJob, doc{summary: "Stop a job (estela-cli)", tag: "jobs", response: jobUpdatedDTO{}}},
		{http.MethodPost, jobPath + "/stop", token, s.stopJob, doc{summary: "Stop a job", tag: "jobs", response: jobUpdatedDTO{}}},
	}
}

func (s *Server) jobDataRoutes() []route {
	return []route{
		{http.MethodGet, jobPath + "/data", token, s.jobData, doc{summary: "List a job's items, requests, logs or stats", tag: "job data", response: pageOf[record]{}, query: jobDataQuery}},
		{http.MethodPost, jobPath + "/data/delete", token, s.deleteJobData, doc{summary: "Delete all of a job's records of one type", tag: "job data", response: dataDeletedDTO{}, query: downloadQuery[:1]}},
		{http.MethodGet, jobPath + "/error_logs", token, s.jobErrorLogs, doc{summary: "Why a job ended in ERROR", tag: "jobs", response: errorLogsDTO{}}},
		{http.MethodGet, jobPath + "/data/download", token, s.downloadJobData, doc{summary: "Download all of a job's records of one type", tag: "job data", response: downloadDTO{}, query: downloadQuery}},
		{http.MethodPost, jobPath + "/ingest", token, s.ingest, doc{summary: "Store a batch of a job's data (job token only)", tag: "job data", request: ingestBody{}, encodings: []string{"application/json"}, response: ingestedDTO{}, status: http.StatusCreated}},
	}
}
