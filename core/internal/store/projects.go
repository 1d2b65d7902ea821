package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/go-pg/pg/v10"
)

// Page selects a slice of a list: Limit rows after skipping Offset.
type Page struct {
	Offset int
	Limit  int
}

// NewUUID returns a random version 4 UUID string.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// CreateProject inserts a project and makes owner its OWNER, in one transaction.
func (s *Store) CreateProject(ctx context.Context, p *Project, ownerID int64) error {
	if p.PID == "" {
		p.PID = NewUUID()
	}
	return s.inTx(ctx, func(tx *pg.Tx) error {
		if _, err := tx.ModelContext(ctx, p).Returning("*").Insert(); err != nil {
			return mapError("create project", err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO permissions (user_id, project_id, role) VALUES (?, ?, ?)", ownerID, p.PID, RoleOwner)
		return mapError("add project owner", err)
	})
}

// Project loads a live (not soft-deleted) project.
func (s *Store) Project(ctx context.Context, pid string) (*Project, error) {
	p := &Project{}
	err := s.db.ModelContext(ctx, p).Where("pid = ? AND NOT deleted", pid).Select()
	return p, mapError("load project", err)
}

// ProjectFilter narrows and orders ListProjects.
type ProjectFilter struct {
	// UserID limits the list to projects where that user holds a role; 0 lists every project.
	UserID int64
	Search string
	// Ordering is one of ProjectOrderings, optionally with a leading "-" for descending.
	Ordering string
	// RoleOf is the user whose role orders the list for Ordering "role".
	RoleOf int64
}

// ProjectOrderings are the fields ListProjects can order by.
var ProjectOrderings = []string{"name", "category", "framework", "created", "last_modified", "role"}

// ListProjects returns one page of live projects ordered by name, and the total count.
func (s *Store) ListProjects(ctx context.Context, f ProjectFilter, page Page) ([]Project, int, error) {
	var projects []Project
	q := s.db.ModelContext(ctx, &projects).Where("NOT deleted")
	if f.UserID != 0 {
		q = q.Where("pid IN (SELECT project_id FROM permissions WHERE user_id = ?)", f.UserID)
	}
	if f.Search != "" {
		q = q.Where("name ILIKE ?", "%"+escapeLike(f.Search)+"%")
	}
	field, desc := strings.CutPrefix(f.Ordering, "-")
	direction := " ASC"
	if desc {
		direction = " DESC"
	}
	switch field {
	case "category", "framework", "created", "last_modified":
		q = q.OrderExpr("? "+direction+" NULLS LAST", pg.Ident(field))
	case "role":
		q = q.OrderExpr("(SELECT role FROM permissions WHERE project_id = project.pid AND user_id = ?)"+direction+" NULLS LAST", f.RoleOf)
	}
	q = q.OrderExpr("name" + direction)
	count, err := q.Order("pid").Offset(page.Offset).Limit(page.Limit).SelectAndCount()
	return projects, count, mapError("list projects", err)
}

// Members returns the users holding a role on a project.
func (s *Store) Members(ctx context.Context, pid string) ([]Member, error) {
	var members []Member
	_, err := s.db.QueryContext(ctx, &members, `
		SELECT p.user_id, u.username, u.email, p.role FROM permissions p JOIN users u ON u.id = p.user_id
		WHERE p.project_id = ? ORDER BY p.id`, pid)
	return members, mapError("list members", err)
}

// Role returns the role a user holds on a project, or "" when the user is not a member.
func (s *Store) Role(ctx context.Context, pid string, userID int64) (string, error) {
	var role string
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&role), "SELECT role FROM permissions WHERE project_id = ? AND user_id = ?", pid, userID)
	if err == pg.ErrNoRows {
		return "", nil
	}
	return role, mapError("load role", err)
}

// ProjectEnvVars returns a project's environment variables.
func (s *Store) ProjectEnvVars(ctx context.Context, pid string) ([]EnvVar, error) {
	var vars []EnvVar
	err := s.db.ModelContext(ctx, &vars).Where("project_id = ?", pid).Order("evid").Select()
	return vars, mapError("list project env vars", err)
}

func escapeLike(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '%' || r == '_' || r == '\\' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}

// AddMember gives a user a role on a project, replacing the role the user had.
func (s *Store) AddMember(ctx context.Context, pid string, userID int64, role string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO permissions (user_id, project_id, role) VALUES (?, ?, ?)
		ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role`, userID, pid, role)
	return mapError("add member", err)
}

// CreateEnvVar inserts an environment variable.
func (s *Store) CreateEnvVar(ctx context.Context, ev *EnvVar) error {
	_, err := s.db.ModelContext(ctx, ev).Returning("*").Insert()
	return mapError("create env var", err)
}

// ProjectUpdate is a set of optional changes to a project, applied in one transaction.
type ProjectUpdate struct {
	Name      *string
	Framework *string
	EnvVars   *[]EnvVar
	// DataStatus and DataExpiryDays change the default persistence of new spiders and, with
	// ApplyToSpiders, of every existing spider too.
	DataStatus     *string
	DataExpiryDays int
	ApplyToSpiders bool
	Member         *MemberChange
}

// MemberChange adds, removes or changes one member, found by e-mail.
type MemberChange struct {
	Email  string
	Action string // add, remove or update
	Role   string
}

// ErrNoSuchUser is returned when a member change names an unknown e-mail.
var ErrNoSuchUser = fmt.Errorf("user does not exist: %w", ErrNotFound)

// ErrOwnerRole is returned when a change would remove or demote the owner other than by
// transferring ownership.
var ErrOwnerRole = fmt.Errorf("the owner's role cannot be changed: %w", ErrConflict)

// UpdateProject applies an update in one transaction: either all of it is stored or none.
func (s *Store) UpdateProject(ctx context.Context, pid string, u ProjectUpdate) error {
	return s.inTx(ctx, func(tx *pg.Tx) error {
		q := tx.ModelContext(ctx, (*Project)(nil)).Where("pid = ?", pid).Set("last_modified = now()")
		if u.Name != nil {
			q = q.Set("name = ?", *u.Name)
		}
		if u.Framework != nil {
			q = q.Set("framework = ?", *u.Framework)
		}
		if u.DataStatus != nil {
			q = q.Set("data_status = ?, data_expiry_days = ?", *u.DataStatus, u.DataExpiryDays)
		}
		if _, err := q.Update(); err != nil {
			return mapError("update project", err)
		}
		if u.DataStatus != nil && u.ApplyToSpiders {
			if _, err := tx.ExecContext(ctx, "UPDATE spiders SET data_status = ?, data_expiry_days = ? WHERE project_id = ?",
				*u.DataStatus, u.DataExpiryDays, pid); err != nil {
				return mapError("update spiders persistence", err)
			}
		}
		if u.EnvVars != nil {
			if err := SyncEnvVars(ctx, tx, EnvVarOwner{ProjectID: pid}, *u.EnvVars); err != nil {
				return err
			}
		}
		if u.Member != nil {
			return changeMember(ctx, tx, pid, *u.Member)
		}
		return nil
	})
}

func changeMember(ctx context.Context, tx *pg.Tx, pid string, c MemberChange) error {
	var userID int64
	if _, err := tx.QueryOneContext(ctx, pg.Scan(&userID), "SELECT id FROM users WHERE lower(email) = lower(?) ORDER BY id LIMIT 1", c.Email); err != nil {
		if err == pg.ErrNoRows {
			return ErrNoSuchUser
		}
		return mapError("find member", err)
	}
	var current string
	_, err := tx.QueryOneContext(ctx, pg.Scan(&current), "SELECT role FROM permissions WHERE project_id = ? AND user_id = ? FOR UPDATE", pid, userID)
	if err != nil && err != pg.ErrNoRows {
		return mapError("load member", err)
	}
	if current == RoleOwner {
		return ErrOwnerRole
	}
	switch c.Action {
	case "add":
		if current != "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO permissions (user_id, project_id, role) VALUES (?, ?, ?)", userID, pid, c.Role)
	case "remove":
		_, err = tx.ExecContext(ctx, "DELETE FROM permissions WHERE project_id = ? AND user_id = ?", pid, userID)
	case "update":
		if current == "" {
			return fmt.Errorf("%s is not a member: %w", c.Email, ErrNotFound)
		}
		if c.Role == RoleOwner {
			// Ownership moves: the old owner stays on as ADMIN.
			if _, err := tx.ExecContext(ctx, "UPDATE permissions SET role = ? WHERE project_id = ? AND role = ?", RoleAdmin, pid, RoleOwner); err != nil {
				return mapError("demote owner", err)
			}
		}
		_, err = tx.ExecContext(ctx, "UPDATE permissions SET role = ? WHERE project_id = ? AND user_id = ?", c.Role, pid, userID)
	default:
		return fmt.Errorf("unknown member action %q: %w", c.Action, ErrConflict)
	}
	return mapError("change member", err)
}

// DeleteProject soft-deletes a project. Its cron jobs stop firing because the scheduler skips
// deleted projects.
func (s *Store) DeleteProject(ctx context.Context, pid string) error {
	_, err := s.db.ExecContext(ctx, "UPDATE projects SET deleted = true, last_modified = now() WHERE pid = ?", pid)
	return mapError("delete project", err)
}

// ListProjectJobs returns one page of every job of a project, newest first, and the count.
func (s *Store) ListProjectJobs(ctx context.Context, pid string, page Page) ([]Job, int, error) {
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM jobs WHERE project_id = ?", pid); err != nil {
		return nil, 0, mapError("count jobs", err)
	}
	var jobs []Job
	_, err := s.db.QueryContext(ctx, &jobs, "SELECT "+jobColumns+` FROM jobs j JOIN spiders s ON s.sid = j.spider_id
		WHERE j.project_id = ? ORDER BY j.jid DESC OFFSET ? LIMIT ?`, pid, page.Offset, page.Limit)
	return jobs, count, mapError("list project jobs", err)
}

var projectAndRoleQuery = newPreparedQuery("estela_project_and_role", `SELECT p.*, m.role AS member_role
	FROM projects p LEFT JOIN permissions m ON m.project_id = p.pid AND m.user_id = ?
	WHERE p.pid = ? AND NOT p.deleted`)

// ProjectAndRole loads a live project and the role a user holds on it ("" when none), in one
// query: every project route asks for both.
func (s *Store) ProjectAndRole(ctx context.Context, pid string, userID int64) (*Project, string, error) {
	var row struct {
		Role *string `pg:"member_role"`
		Project
	}
	_, err := s.queryPrepared(ctx, &row, true, projectAndRoleQuery, userID, pid)
	if err != nil {
		return nil, "", mapError("load project", err)
	}
	p := row.Project
	return &p, orEmpty(row.Role), nil
}

var projectRoleAndSpiderQuery = newPreparedQuery("estela_project_role_and_spider", `SELECT p.*,
	m.role AS member_role, sp.sid AS spider_sid, sp.name AS spider_name, sp.data_status AS spider_data_status,
	sp.data_expiry_days AS spider_data_expiry_days, sp.created AS spider_created
	FROM projects p LEFT JOIN permissions m ON m.project_id = p.pid AND m.user_id = ?
	LEFT JOIN spiders sp ON sp.project_id = p.pid AND sp.sid = ? AND NOT sp.deleted
	WHERE p.pid = ? AND NOT p.deleted`)

// ProjectRoleAndSpider loads what ProjectAndRole does and a live spider of the project, in one
// query for the routes of one spider. The spider is nil when the project has no such live
// spider.
func (s *Store) ProjectRoleAndSpider(ctx context.Context, pid string, userID, sid int64) (*Project, string, *Spider, error) {
	var row struct {
		Role           *string    `pg:"member_role"`
		SID            *int64     `pg:"spider_sid"`
		Name           string     `pg:"spider_name"`
		DataStatus     string     `pg:"spider_data_status"`
		DataExpiryDays int        `pg:"spider_data_expiry_days"`
		Created        *time.Time `pg:"spider_created"`
		Project
	}
	_, err := s.queryPrepared(ctx, &row, true, projectRoleAndSpiderQuery, userID, sid, pid)
	if err != nil {
		return nil, "", nil, mapError("load project", err)
	}
	p := row.Project
	if row.SID == nil {
		return &p, orEmpty(row.Role), nil, nil
	}
	sp := &Spider{SID: *row.SID, ProjectID: p.PID, Name: row.Name, DataStatus: row.DataStatus,
		DataExpiryDays: row.DataExpiryDays, Created: *row.Created}
	return &p, orEmpty(row.Role), sp, nil
}

func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
