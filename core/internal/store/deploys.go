package store

import (
	"context"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

const deployColumns = `d.*, u.username, u.email,
	(SELECT count(*) FROM deploy_spiders ds WHERE ds.deploy_id = d.did) AS spiders_count`

// CreateDeploy inserts a deploy in status BUILDING.
func (s *Store) CreateDeploy(ctx context.Context, d *Deploy) error {
	d.Status = DeployBuilding
	_, err := s.db.ModelContext(ctx, d).ExcludeColumn("username", "email", "spiders_count").Returning("*").Insert()
	return mapError("create deploy", err)
}

// Deploy loads a deploy of a project.
func (s *Store) Deploy(ctx context.Context, pid string, did int64) (*Deploy, error) {
	d := &Deploy{}
	_, err := s.db.QueryOneContext(ctx, d, "SELECT "+deployColumns+` FROM deploys d
		LEFT JOIN users u ON u.id = d.user_id WHERE d.did = ? AND d.project_id = ?`, did, pid)
	return d, mapError("load deploy", err)
}

// DeployByID loads a deploy whatever its project, for the worker.
func (s *Store) DeployByID(ctx context.Context, did int64) (*Deploy, error) {
	d := &Deploy{}
	_, err := s.db.QueryOneContext(ctx, d, "SELECT "+deployColumns+` FROM deploys d
		LEFT JOIN users u ON u.id = d.user_id WHERE d.did = ?`, did)
	return d, mapError("load deploy", err)
}

// ListDeploys returns one page of a project's deploys, newest first, and the total count.
func (s *Store) ListDeploys(ctx context.Context, pid string, page Page) ([]Deploy, int, error) {
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM deploys WHERE project_id = ?", pid); err != nil {
		return nil, 0, mapError("count deploys", err)
	}
	var deploys []Deploy
	_, err := s.db.QueryContext(ctx, &deploys, "SELECT "+deployColumns+` FROM deploys d
		LEFT JOIN users u ON u.id = d.user_id WHERE d.project_id = ? ORDER BY d.did DESC OFFSET ? LIMIT ?`,
		pid, page.Offset, page.Limit)
	return deploys, count, mapError("list deploys", err)
}

// CountDeployAttempt adds one to a deploy's build attempts and returns the new count.
func (s *Store) CountDeployAttempt(ctx context.Context, did int64) (int, error) {
	var n int
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&n), "UPDATE deploys SET attempts = attempts + 1 WHERE did = ? RETURNING attempts", did)
	return n, mapError("count deploy attempt", err)
}

// FailDeploy moves a BUILDING deploy to FAILURE with a reason. A deploy that already finished
// is left as it is and ErrConflict is returned.
func (s *Store) FailDeploy(ctx context.Context, did int64, reason string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE deploys SET status = ?, error_reason = ?, finished = now()
		WHERE did = ? AND status = ?`, DeployFailure, reason, did, DeployBuilding)
	if err != nil {
		return mapError("fail deploy", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("fail deploy %d: not building: %w", did, ErrConflict)
	}
	return nil
}

// SucceedDeploy moves a BUILDING deploy to SUCCESS and reconciles the project's spiders with
// the names found: listed spiders are created or revived and linked to the deploy, spiders not
// listed are soft-deleted. All of it happens in one transaction.
func (s *Store) SucceedDeploy(ctx context.Context, did int64, artifactRef string, spiderNames []string) error {
	return s.inTx(ctx, func(tx *pg.Tx) error {
		var pid string
		_, err := tx.QueryOneContext(ctx, pg.Scan(&pid), `UPDATE deploys SET status = ?, artifact_ref = ?, finished = now(),
			error_reason = '' WHERE did = ? AND status = ? RETURNING project_id`, DeploySuccess, artifactRef, did, DeployBuilding)
		if err == pg.ErrNoRows {
			return fmt.Errorf("finish deploy %d: not building: %w", did, ErrConflict)
		}
		if err != nil {
			return mapError("finish deploy", err)
		}
		return syncSpiders(ctx, tx, pid, did, spiderNames)
	})
}

func syncSpiders(ctx context.Context, tx *pg.Tx, pid string, did int64, names []string) error {
	if names == nil {
		names = []string{}
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO spiders (project_id, name, data_status, data_expiry_days)
		SELECT p.pid, n, p.data_status, p.data_expiry_days FROM projects p, unnest(?::text[]) AS n
		WHERE p.pid = ?
		ON CONFLICT (project_id, name) DO UPDATE SET deleted = false`, pg.Array(names), pid); err != nil {
		return mapError("create spiders", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE spiders SET deleted = true
		WHERE project_id = ? AND NOT deleted AND NOT (name = ANY(?::text[]))`, pid, pg.Array(names)); err != nil {
		return mapError("retire spiders", err)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO deploy_spiders (deploy_id, spider_id)
		SELECT ?, sid FROM spiders WHERE project_id = ? AND name = ANY(?::text[]) ON CONFLICT DO NOTHING`,
		did, pid, pg.Array(names))
	return mapError("link deploy spiders", err)
}

// LatestArtifact returns the newest successful deploy of a project that contains the spider.
func (s *Store) LatestArtifact(ctx context.Context, sid int64) (*Deploy, error) {
	d := &Deploy{}
	_, err := s.db.QueryOneContext(ctx, d, `SELECT d.* FROM deploys d JOIN deploy_spiders ds ON ds.deploy_id = d.did
		WHERE ds.spider_id = ? AND d.status = ? ORDER BY d.did DESC LIMIT 1`, sid, DeploySuccess)
	return d, mapError("find artifact", err)
}

// DeleteDeploy removes a deploy row.
func (s *Store) DeleteDeploy(ctx context.Context, did int64) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM deploys WHERE did = ?", did)
	return mapError("delete deploy", err)
}

// ReportDeploy records the result a build reports: from BUILDING to SUCCESS with its spiders,
// or to FAILURE or CANCELED with a reason. Reporting the status the deploy already has changes
// nothing; any other change of a finished deploy gives ErrConflict.
func (s *Store) ReportDeploy(ctx context.Context, did int64, status string, spiders []string, reason string) error {
	d, err := s.DeployByID(ctx, did)
	if err != nil {
		return err
	}
	switch {
	case d.Status == status:
		return nil
	case d.Status != DeployBuilding:
		return fmt.Errorf("report deploy %d: it already ended with %s: %w", did, d.Status, ErrConflict)
	case status == DeploySuccess:
		return s.SucceedDeploy(ctx, did, d.ArtifactRef, spiders)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE deploys SET status = ?, error_reason = ?, finished = now()
		WHERE did = ? AND status = ?`, status, reason, did, DeployBuilding)
	if err != nil {
		return mapError("report deploy", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("report deploy %d: %w", did, ErrConflict)
	}
	return nil
}

// StartImageBuild records that the engine builds the deploy's image under artifactRef. It
// returns ErrConflict when a build already started or the deploy is no longer BUILDING.
func (s *Store) StartImageBuild(ctx context.Context, did int64, artifactRef string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE deploys SET artifact_ref = ?, build_started = now()
		WHERE did = ? AND status = ? AND build_started IS NULL`, artifactRef, did, DeployBuilding)
	if err != nil {
		return mapError("start image build", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("start image build of deploy %d: %w", did, ErrConflict)
	}
	return nil
}

// StaleImageBuilds returns the ids of deploys whose image build started before the given time
// and never reported.
func (s *Store) StaleImageBuilds(ctx context.Context, before time.Time) ([]int64, error) {
	var ids []int64
	_, err := s.db.QueryContext(ctx, pg.Scan(pg.Array(&ids)), `SELECT coalesce(array_agg(did ORDER BY did), '{}')
		FROM deploys WHERE status = ? AND build_started < ?`, DeployBuilding, before)
	return ids, mapError("list stale builds", err)
}

// ResetImageBuild clears the start time of a deploy's image build, so that the build starts again.
func (s *Store) ResetImageBuild(ctx context.Context, did int64) error {
	_, err := s.db.ExecContext(ctx, "UPDATE deploys SET build_started = NULL WHERE did = ? AND status = ?", did, DeployBuilding)
	return mapError("reset image build", err)
}
