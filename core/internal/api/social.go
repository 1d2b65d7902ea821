package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/estela-go/estela-go/core/internal/store"
)

const (
	notificationPath  = "/api/notifications/{nid:[0-9]+}"
	proxyProviderPath = "/api/proxy_provider/{proxyid:[0-9]+}"
)

// invalidPageSizeMessage is estela's message for a bad page or page_size of project-level lists.
const invalidPageSizeMessage = "Invalid page size parameter."

var activityPageQuery = []param{
	{"page", "page number, from 1", map[string]any{"type": "integer", "minimum": 1}},
	{"page_size", "results per page, 1 to 100, default 10", map[string]any{"type": "integer", "minimum": 1, "maximum": 100}},
}

func (s *Server) socialRoutes() []route {
	return []route{
		{http.MethodGet, projectPath + "/activities", token, s.listActivities, doc{summary: "List a project's activity feed, newest first", tag: "projects", response: activityListDTO{}, query: activityPageQuery}},

		{http.MethodGet, "/api/notifications", token, s.listNotifications, doc{summary: "List the caller's notifications, newest first", tag: "notifications", response: pageOf[notificationDTO]{}, query: pageQuery}},
		{http.MethodPost, "/api/notifications", token, s.createNotification, doc{summary: "Not supported (405): notifications come from project activity. estela lists this route but cannot serve it", tag: "notifications", status: http.StatusMethodNotAllowed}},
		{http.MethodGet, notificationPath, token, s.getNotification, doc{summary: "Read one of the caller's notifications", tag: "notifications", response: notificationDTO{}}},
		{http.MethodPut, notificationPath, token, s.updateNotification, doc{summary: "Mark one of the caller's notifications as seen or unseen", tag: "notifications", request: notificationUpdateRequest{}, response: notificationSeenDTO{}}},
		{http.MethodPatch, notificationPath, token, s.updateNotification, doc{summary: "Same as PUT", tag: "notifications", request: notificationUpdateRequest{}, response: notificationSeenDTO{}}},
		{http.MethodDelete, notificationPath, token, s.deleteNotification, doc{summary: "Delete one of the caller's notifications", tag: "notifications", status: http.StatusNoContent}},

		{http.MethodGet, "/api/proxy_provider", token, s.listProxyProviders, doc{summary: "List the proxy providers, without their credentials", tag: "proxy providers", response: pageOf[proxyProviderDTO]{}, query: pageQuery}},
		{http.MethodPost, "/api/proxy_provider", token, s.createProxyProvider, doc{summary: "Create a proxy provider with its credentials (superuser only)", tag: "proxy providers", request: proxyProviderCreateRequest{}, response: proxyProviderDTO{}, status: http.StatusCreated}},
		{http.MethodGet, proxyProviderPath, token, s.getProxyProvider, doc{summary: "Read a proxy provider, without its credentials", tag: "proxy providers", response: proxyProviderDTO{}}},
		{http.MethodPut, proxyProviderPath, token, s.updateProxyProvider, doc{summary: "With level: write the provider's credentials as masked ESTELA_PROXY_* variables of a project or spider where the caller is DEVELOPER or above. Without level: edit the provider (superuser only)", tag: "proxy providers", request: proxyProviderUpdateRequest{}, response: proxyAppliedDTO{}}},
		{http.MethodPatch, proxyProviderPath, token, s.updateProxyProvider, doc{summary: "Same as PUT", tag: "proxy providers", request: proxyProviderUpdateRequest{}, response: proxyAppliedDTO{}}},
		{http.MethodDelete, proxyProviderPath, token, s.deleteProxyProvider, doc{summary: "Delete a proxy provider (superuser only); variables applied from it stay", tag: "proxy providers", status: http.StatusNoContent}},

		{http.MethodPost, "/api/v1/metering/report", token, s.reportMeteredUsage, doc{summary: "Append a metered usage fact to the ledger. The answer is 201 when the fact is new, and 200 when its idempotency key was already reported for the project", tag: "metering", request: meteringReportRequest{}, encodings: []string{"application/json"}, response: meteringReportDTO{}, status: http.StatusCreated}},
	}
}

// recordActivity adds an action to the project's activity feed and notifies the project's
// other members. A failure is logged and swallowed, so the request that acted still succeeds.
// Unlike estela, an empty description records nothing.
func (s *Server) recordActivity(ctx context.Context, userID int64, pid string, description string) {
	if strings.TrimSpace(description) == "" {
		return
	}
	// The action has happened, so the activity is recorded even when the client hung up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.store.RecordActivity(ctx, userID, pid, description); err != nil {
		s.log.Error("record activity", "pid", pid, "user_id", userID, "description", description, "error", err)
	}
}

// readActivityPage reads page and page_size as estela's project-level lists do: page_size
// 1..100 with default 10, and the same 400 for a bad page or page size.
func readActivityPage(r *http.Request) (pageParams, error) {
	p := pageParams{page: 1, size: 10}
	q := r.URL.Query()
	for _, name := range []string{"page", "page_size"} {
		raw := strings.TrimSpace(q.Get(name))
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || (name == "page_size" && n > 100) || n > maxPageNumber {
			return p, errQuery(name, invalidPageSizeMessage)
		}
		if name == "page" {
			p.page = n
		} else {
			p.size = n
		}
	}
	return p, nil
}

// listActivities lists the project's activities, newest first. A page past the end is empty.
func (s *Server) listActivities(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readActivityPage(r)
	if err != nil {
		return nil, err
	}
	p, _, err := s.projectFor(r, actRead)
	if err != nil {
		return nil, err
	}

	activities, count, err := s.store.ListActivities(r.Context(), p.PID, page.store())
	if err != nil {
		return nil, err
	}
	out := make([]activityDTO, len(activities))
	for i := range activities {
		out[i] = activityToDTO(&activities[i])
	}
	return activityListDTO{Results: out, Count: count}, nil
}

func (s *Server) listNotifications(_ http.ResponseWriter, r *http.Request) (any, error) {
	page, err := readPage(r, 100, 100)
	if err != nil {
		return nil, err
	}
	user, err := currentUser(r)
	if err != nil {
		return nil, err
	}

	notifications, count, err := s.store.ListNotifications(r.Context(), user.ID, page.store())
	if err != nil {
		return nil, err
	}
	out := make([]notificationDTO, len(notifications))
	for i := range notifications {
		out[i] = notificationToDTO(&notifications[i])
	}
	return envelope(r, page, count, out)
}

// createNotification rejects every request: notifications are made from activities only.
func (s *Server) createNotification(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := currentUser(r); err != nil {
		return nil, err
	}
	w.Header().Set("Allow", "GET, HEAD")
	return nil, errDetail(http.StatusMethodNotAllowed, `Method "POST" not allowed. Notifications are created by project activity.`)
}

// notificationFor reads the nid of the path and the caller. Another user's notification is
// not found.
func notificationFor(r *http.Request) (int64, *store.User, error) {
	nid, err := pathID(r, "nid")
	if err != nil {
		return 0, nil, err
	}
	user, err := currentUser(r)
	return nid, user, err
}

func (s *Server) getNotification(_ http.ResponseWriter, r *http.Request) (any, error) {
	nid, user, err := notificationFor(r)
	if err != nil {
		return nil, err
	}

	n, err := s.store.Notification(r.Context(), user.ID, nid)
	if err != nil {
		return nil, err
	}
	return notificationToDTO(n), nil
}

func (s *Server) updateNotification(w http.ResponseWriter, r *http.Request) (any, error) {
	nid, user, err := notificationFor(r)
	if err != nil {
		return nil, err
	}
	var req notificationUpdateRequest
	if err := decodeInto(w, r, &req); err != nil {
		return nil, err
	}

	n, err := s.store.Notification(r.Context(), user.ID, nid)
	if err != nil {
		return nil, err
	}
	if req.Seen != nil {
		if err := s.store.SetNotificationSeen(r.Context(), user.ID, nid, *req.Seen); err != nil {
			return nil, err
		}
		n.Seen = *req.Seen
	}
	return notificationSeenDTO{NID: n.NID, Seen: n.Seen}, nil
}

func (s *Server) deleteNotification(_ http.ResponseWriter, r *http.Request) (any, error) {
	nid, user, err := notificationFor(r)
	if err != nil {
		return nil, err
	}

	if err := s.store.DeleteNotification(r.Context(), user.ID, nid); err != nil {
		return nil, err
	}
	return noContent, nil
}

// Request and response bodies of the activity and notification routes.

type notificationUpdateRequest struct {
	Seen *bool `json:"seen"`
}

type activityProjectDTO struct {
	PID  string `json:"pid"`
	Name string `json:"name"`
}

type activityDTO struct {
	User        userDTO            `json:"user" doc:"the actor; the username ends in \" (admin)\" when a staff user or superuser acted without being a member"`
	Project     activityProjectDTO `json:"project"`
	Description string             `json:"description"`
	Created     string             `json:"created"`
}

type activityListDTO struct {
	Results []activityDTO `json:"results"`
	Count   int           `json:"count"`
}

type notificationDTO struct {
	NID      int64       `json:"nid"`
	Activity activityDTO `json:"activity"`
	Seen     bool        `json:"seen"`
}

type notificationSeenDTO struct {
	NID  int64 `json:"nid"`
	Seen bool  `json:"seen"`
}

func activityToDTO(a *store.Activity) activityDTO {
	name := a.Username
	if a.ByAdmin {
		name += " (admin)"
	}
	return activityDTO{
		User: userDTO{Username: name, Email: a.Email}, Project: activityProjectDTO{a.ProjectID, a.ProjectName},
		Description: a.Description, Created: formatJobTime(a.Created),
	}
}

func notificationToDTO(n *store.Notification) notificationDTO {
	return notificationDTO{NID: n.NID, Activity: activityToDTO(&n.Activity), Seen: n.Seen}
}
