package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/estela-go/estela-go/core/internal/store"
)

func (s *Server) listProxyProviders(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	if _, err := currentUser(r); err != nil {
		return nil, err
	}

	providers, count, err := s.store.ListProxyProviders(r.Context(), page.store())
	if err != nil {
		return nil, err
	}
	out := make([]proxyProviderDTO, len(providers))
	for i := range providers {
		out[i] = proxyProviderToDTO(&providers[i])
	}
	return envelope(r, page, count, out)
}

func (s *Server) getProxyProvider(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "proxyid")
	if err != nil {
		return nil, err
	}
	if _, err := currentUser(r); err != nil {
		return nil, err
	}

	p, err := s.store.ProxyProvider(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return proxyProviderToDTO(p), nil
}

// proxyManager returns the caller if it is a superuser, the only users who manage providers.
func proxyManager(r *http.Request) (*store.User, error) {
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	if !user.IsSuperuser {
		return nil, errDetail(http.StatusForbidden, "Only superusers may create, edit or delete proxy providers.")
	}
	return user, nil
}

func (s *Server) createProxyProvider(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := proxyManager(r); err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	var req proxyProviderCreateRequest
	numbersAsStrings(f, "port")
	bind(f, &req)
	p := &store.ProxyProvider{Name: req.Name}
	setProxyFields(f, p, proxyProviderFields{req.Description, req.Username, req.Password, req.Host, req.Port})
	if err := f.err(); err != nil {
		return nil, err
	}

	if err := s.store.CreateProxyProvider(r.Context(), p); err != nil {
		return nil, err
	}
	return created(proxyProviderToDTO(p)), nil
}

// updateProxyProvider serves PUT and PATCH. With level, which is all these methods do in
// estela, it applies the provider to a project or spider. Without level, a superuser edits the
// provider, and only the fields sent change.
func (s *Server) updateProxyProvider(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "proxyid")
	if err != nil {
		return nil, err
	}
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}
	f, err := decodeBody(w, r)
	if err != nil {
		return nil, err
	}

	var req proxyProviderUpdateRequest
	numbersAsStrings(f, "project_or_spider_id", "port")
	bind(f, &req)
	if err := f.err(); err != nil {
		return nil, err
	}
	p, err := s.store.ProxyProvider(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if req.Level != nil || req.ProjectOrSpiderID != nil || !user.IsSuperuser {
		return s.applyProxyProvider(r, user, p, &req)
	}
	return s.editProxyProvider(r, f, p, &req)
}

func (s *Server) editProxyProvider(r *http.Request, f *fields, p *store.ProxyProvider, req *proxyProviderUpdateRequest) (any, error) {
	if req.Name != nil {
		if strings.TrimSpace(*req.Name) == "" {
			f.fail("name", "This field may not be blank.")
		}
		p.Name = *req.Name
	}
	setProxyFields(f, p, proxyProviderFields{req.Description, req.Username, req.Password, req.Host, req.Port})
	if err := f.err(); err != nil {
		return nil, err
	}

	if err := s.store.UpdateProxyProvider(r.Context(), p); err != nil {
		return nil, err
	}
	return proxyProviderToDTO(p), nil
}

// applyProxyProvider writes the provider's ESTELA_PROXY_* variables on a project or a spider.
// The caller needs the DEVELOPER role or above on the project concerned.
func (s *Server) applyProxyProvider(r *http.Request, user *store.User, p *store.ProxyProvider, req *proxyProviderUpdateRequest) (any, error) {
	if req.Level == nil {
		return nil, errField("level", "This field is required: project or spider.")
	}
	if req.ProjectOrSpiderID == nil || strings.TrimSpace(*req.ProjectOrSpiderID) == "" {
		return nil, errField("project_or_spider_id", "This field is required: the project's pid or the spider's sid.")
	}
	target, pid, err := s.proxyTarget(r.Context(), *req.Level, strings.TrimSpace(*req.ProjectOrSpiderID))
	if err != nil {
		return nil, err
	}
	if err := s.authorizeProject(r.Context(), user, pid, actRun); err != nil {
		return nil, err
	}

	vars, err := s.store.ApplyProxyProvider(r.Context(), target, p)
	if err != nil {
		return nil, err
	}
	return proxyAppliedDTO{Success: true, EnvVars: envVarsDTO(vars)}, nil
}

// proxyTarget resolves the target of an application and the project it belongs to. Deleted
// projects and spiders are not found.
func (s *Server) proxyTarget(ctx context.Context, level, id string) (store.ProxyTarget, string, error) {
	notFound := &apiError{http.StatusNotFound, map[string][]string{"project_or_spider_id": {"No " + level + " has this id."}}}
	if level == "project" {
		pid := strings.ToLower(id)
		if !validUUID(pid) {
			return store.ProxyTarget{}, "", errField("project_or_spider_id", "A project id (UUID) is required for level project.")
		}
		if _, err := s.store.Project(ctx, pid); err != nil {
			return store.ProxyTarget{}, "", orFieldNotFound(err, notFound)
		}
		return store.ProxyTarget{ProjectID: pid}, pid, nil
	}
	sid, err := strconv.ParseInt(id, 10, 64)
	if err != nil || sid < 1 {
		return store.ProxyTarget{}, "", errField("project_or_spider_id", "A spider id (positive integer) is required for level spider.")
	}
	pid, err := s.store.ProjectOfSpider(ctx, sid)
	if err != nil {
		return store.ProxyTarget{}, "", orFieldNotFound(err, notFound)
	}
	return store.ProxyTarget{SpiderID: sid}, pid, nil
}

func orFieldNotFound(err, notFound error) error {
	if isNotFound(err) {
		return notFound
	}
	return err
}

// authorizeProject checks that the user may do act on a project named outside the path, with
// the same rules as projectFor.
func (s *Server) authorizeProject(ctx context.Context, user *store.User, pid string, act action) error {
	if user.IsSuperuser || (user.IsStaff && act == actRead) {
		return nil
	}
	role, err := s.store.Role(ctx, pid, user.ID)
	if err != nil {
		return err
	}
	if best, member := roleAllows[role]; !member || best < act {
		return errForbidden
	}
	return nil
}

func (s *Server) deleteProxyProvider(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "proxyid")
	if err != nil {
		return nil, err
	}
	if _, err := proxyManager(r); err != nil {
		return nil, err
	}

	if err := s.store.DeleteProxyProvider(r.Context(), id); err != nil {
		return nil, err
	}
	return noContent, nil
}

// proxyProviderFields are the optional fields that create and edit share.
type proxyProviderFields struct {
	description, username, password, host, port *string
}

// setProxyFields copies the fields that were sent into p and checks the port.
func setProxyFields(f *fields, p *store.ProxyProvider, in proxyProviderFields) {
	for _, set := range []struct {
		value *string
		dst   *string
	}{{in.description, &p.Description}, {in.username, &p.Username}, {in.password, &p.Password}, {in.host, &p.Host}, {in.port, &p.Port}} {
		if set.value != nil {
			*set.dst = strings.TrimSpace(*set.value)
		}
	}
	if in.port != nil && p.Port != "" {
		if n, err := strconv.Atoi(p.Port); err != nil || n < 1 || n > 65535 {
			f.fail("port", "A port must be an integer between 1 and 65535.")
		}
	}
}

// numbersAsStrings turns the JSON numbers of the named fields into their decimal text, for
// string fields that clients send either way.
func numbersAsStrings(f *fields, names ...string) {
	for _, name := range names {
		if n, ok := f.values[name].(json.Number); ok {
			f.values[name] = n.String()
		}
	}
}

// Request and response bodies of the proxy provider routes.

type proxyProviderCreateRequest struct {
	Name        string  `json:"name" validate:"required" maxlen:"255"`
	Description *string `json:"description" maxlen:"1000"`
	Username    *string `json:"username" maxlen:"255"`
	Password    *string `json:"password" maxlen:"255"`
	Host        *string `json:"host" maxlen:"255"`
	Port        *string `json:"port" maxlen:"5" doc:"1 to 65535, as a string or a number"`
}

type proxyProviderUpdateRequest struct {
	Level             *string `json:"level" enum:"project,spider" doc:"apply the provider to a project or to a spider"`
	ProjectOrSpiderID *string `json:"project_or_spider_id" maxlen:"100" doc:"with level: the project's pid, or the spider's sid"`
	Name              *string `json:"name" maxlen:"255" doc:"without level, superuser only"`
	Description       *string `json:"description" maxlen:"1000" doc:"without level, superuser only"`
	Username          *string `json:"username" maxlen:"255" doc:"without level, superuser only"`
	Password          *string `json:"password" maxlen:"255" doc:"without level, superuser only"`
	Host              *string `json:"host" maxlen:"255" doc:"without level, superuser only"`
	Port              *string `json:"port" maxlen:"5" doc:"without level, superuser only; 1 to 65535"`
}

type proxyProviderDTO struct {
	ProxyID     int64  `json:"proxyid"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type proxyAppliedDTO struct {
	Success bool        `json:"success"`
	EnvVars []envVarDTO `json:"env_vars" doc:"every variable of the project or spider; masked values are null"`
}

func proxyProviderToDTO(p *store.ProxyProvider) proxyProviderDTO {
	return proxyProviderDTO{ProxyID: p.ProxyID, Name: p.Name, Description: p.Description}
}
