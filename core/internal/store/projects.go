package store

import (
	"context"
	"crypto/rand"
	"fmt"

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

// ProjectFilter narrows ListProjects.
type ProjectFilter struct {
	// UserID limits the list to projects where that user holds a role; 0 lists every project.
	UserID int64
	Search string
}

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
	count, err := q.Order("name", "pid").Offset(page.Offset).Limit(page.Limit).SelectAndCount()
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
