package store

import (
	"context"
	"fmt"

	"github.com/go-pg/pg/v10"
)

// Spider loads a live spider of a project.
func (s *Store) Spider(ctx context.Context, pid string, sid int64) (*Spider, error) {
	sp := &Spider{}
	err := s.db.ModelContext(ctx, sp).Where("sid = ? AND project_id = ? AND NOT deleted", sid, pid).Select()
	return sp, mapError("load spider", err)
}

// ListSpiders returns one page of a project's live spiders ordered by id, and the total count.
func (s *Store) ListSpiders(ctx context.Context, pid, search string, page Page) ([]Spider, int, error) {
	var spiders []Spider
	q := s.db.ModelContext(ctx, &spiders).Where("project_id = ? AND NOT deleted", pid)
	if search != "" {
		q = q.Where("name ILIKE ?", "%"+escapeLike(search)+"%")
	}
	count, err := q.Order("sid").Offset(page.Offset).Limit(page.Limit).SelectAndCount()
	return spiders, count, mapError("list spiders", err)
}

// SpiderEnvVars returns a spider's environment variables.
func (s *Store) SpiderEnvVars(ctx context.Context, sid int64) ([]EnvVar, error) {
	var vars []EnvVar
	err := s.db.ModelContext(ctx, &vars).Where("spider_id = ?", sid).Order("evid").Select()
	return vars, mapError("list spider env vars", err)
}

// SpiderUpdate is a set of optional changes to a spider, applied in one transaction.
type SpiderUpdate struct {
	EnvVars        *[]EnvVar
	DataStatus     *string
	DataExpiryDays int
}

// UpdateSpider applies an update to a live spider of a project.
func (s *Store) UpdateSpider(ctx context.Context, pid string, sid int64, u SpiderUpdate) error {
	return s.inTx(ctx, func(tx *pg.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE spiders SET data_status = coalesce(?, data_status), data_expiry_days = CASE WHEN ? THEN ? ELSE data_expiry_days END WHERE sid = ? AND project_id = ? AND NOT deleted",
			u.DataStatus, u.DataStatus != nil, u.DataExpiryDays, sid, pid)
		if err != nil {
			return mapError("update spider", err)
		}
		if res.RowsAffected() == 0 {
			return fmt.Errorf("update spider %d: %w", sid, ErrNotFound)
		}
		if u.EnvVars != nil {
			return SyncEnvVars(ctx, tx, EnvVarOwner{SpiderID: sid}, *u.EnvVars)
		}
		return nil
	})
}
