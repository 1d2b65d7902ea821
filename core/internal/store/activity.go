package store

import (
	"context"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
)

// Activity is one action on a project, as the project's activity feed shows it.
type Activity struct {
	AID         int64     `pg:"aid"`
	UserID      *int64    `pg:"user_id"`
	Username    string    `pg:"username"`
	Email       string    `pg:"email"`
	ProjectID   string    `pg:"project_id"`
	ProjectName string    `pg:"project_name"`
	Description string    `pg:"description"`
	Created     time.Time `pg:"created"`
	// ByAdmin is true when a staff user or superuser acted on a project without being a member.
	ByAdmin bool `pg:"by_admin"`
}

// Notification is a user's copy of an activity on one of their projects.
type Notification struct {
	Activity
	NID  int64 `pg:"nid"`
	Seen bool  `pg:"seen"`
}

// activityColumns selects an Activity from activities a joined with its user u and project p.
const activityColumns = `a.aid, a.user_id, coalesce(u.username, '') AS username, coalesce(u.email, '') AS email,
	a.project_id, p.name AS project_name, a.description, a.created,
	coalesce((u.is_staff OR u.is_superuser) AND NOT EXISTS
		(SELECT 1 FROM permissions m WHERE m.project_id = a.project_id AND m.user_id = a.user_id), false) AS by_admin`

const activityJoins = `JOIN projects p ON p.pid = a.project_id LEFT JOIN users u ON u.id = a.user_id`

// RecordActivity inserts an activity and one unseen notification for every member of the
// project other than the actor, in one transaction. A userID of 0 records an action of the
// platform itself, which notifies every member.
func (s *Store) RecordActivity(ctx context.Context, userID int64, pid, description string) (int64, error) {
	var actor *int64
	if userID != 0 {
		actor = &userID
	}
	var aid int64
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		_, err := tx.QueryOneContext(ctx, pg.Scan(&aid), `INSERT INTO activities (user_id, project_id, description)
			VALUES (?, ?, ?) RETURNING aid`, actor, pid, description)
		if err != nil {
			return mapError("create activity", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO notifications (activity_id, user_id)
			SELECT ?, user_id FROM permissions WHERE project_id = ? AND user_id IS DISTINCT FROM ?
			ORDER BY id`, aid, pid, actor)
		return mapError("notify project members", err)
	})
	return aid, err
}

// ListActivities returns one page of a project's activities, newest first, and their count.
func (s *Store) ListActivities(ctx context.Context, pid string, page Page) ([]Activity, int, error) {
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM activities WHERE project_id = ?", pid); err != nil {
		return nil, 0, mapError("count activities", err)
	}
	var out []Activity
	_, err := s.db.QueryContext(ctx, &out, "SELECT "+activityColumns+" FROM activities a "+activityJoins+`
		WHERE a.project_id = ? ORDER BY a.aid DESC OFFSET ? LIMIT ?`, pid, page.Offset, page.Limit)
	return out, count, mapError("list activities", err)
}

const notificationColumns = "n.nid, n.seen, " + activityColumns

const notificationJoins = "JOIN activities a ON a.aid = n.activity_id " + activityJoins

// ListNotifications returns one page of a user's notifications, newest first, and their count.
func (s *Store) ListNotifications(ctx context.Context, userID int64, page Page) ([]Notification, int, error) {
	var count int
	if _, err := s.db.QueryOneContext(ctx, pg.Scan(&count), "SELECT count(*) FROM notifications WHERE user_id = ?", userID); err != nil {
		return nil, 0, mapError("count notifications", err)
	}
	var out []Notification
	_, err := s.db.QueryContext(ctx, &out, "SELECT "+notificationColumns+" FROM notifications n "+notificationJoins+`
		WHERE n.user_id = ? ORDER BY n.nid DESC OFFSET ? LIMIT ?`, userID, page.Offset, page.Limit)
	return out, count, mapError("list notifications", err)
}

// Notification loads one of a user's notifications; those of other users are not found.
func (s *Store) Notification(ctx context.Context, userID, nid int64) (*Notification, error) {
	n := &Notification{}
	_, err := s.db.QueryOneContext(ctx, n, "SELECT "+notificationColumns+" FROM notifications n "+notificationJoins+`
		WHERE n.nid = ? AND n.user_id = ?`, nid, userID)
	return n, mapError(fmt.Sprintf("load notification %d", nid), err)
}

// SetNotificationSeen marks one of a user's notifications as seen or unseen.
func (s *Store) SetNotificationSeen(ctx context.Context, userID, nid int64, seen bool) error {
	res, err := s.db.ExecContext(ctx, "UPDATE notifications SET seen = ? WHERE nid = ? AND user_id = ?", seen, nid, userID)
	if err != nil {
		return mapError("update notification", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("update notification %d: %w", nid, ErrNotFound)
	}
	return nil
}

// DeleteNotification deletes one of a user's notifications.
func (s *Store) DeleteNotification(ctx context.Context, userID, nid int64) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM notifications WHERE nid = ? AND user_id = ?", nid, userID)
	if err != nil {
		return mapError("delete notification", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("delete notification %d: %w", nid, ErrNotFound)
	}
	return nil
}
