package store

import (
	"context"
	"fmt"

	"github.com/go-pg/pg/v10"
)

// MaskedPlaceholder is the value clients send for a masked variable whose value they do not
// know; it means "keep the stored value".
const MaskedPlaceholder = "__MASKED__"

// EnvVarOwner names the project or spider whose variables are synced.
type EnvVarOwner struct {
	ProjectID string
	SpiderID  int64
}

func (o EnvVarOwner) column() (string, any) {
	if o.SpiderID != 0 {
		return "spider_id", o.SpiderID
	}
	return "project_id", o.ProjectID
}

// SyncEnvVars makes the owner's variables equal to want, matched by name: a variable sent with
// the masked placeholder keeps its stored value, names not sent are deleted, new names are
// created. It runs in tx so it commits with the rest of an update.
func SyncEnvVars(ctx context.Context, tx *pg.Tx, owner EnvVarOwner, want []EnvVar) error {
	column, id := owner.column()
	var have []EnvVar
	if err := tx.ModelContext(ctx, &have).Where("? = ?", pg.Ident(column), id).Select(); err != nil {
		return mapError("load env vars", err)
	}
	byName := make(map[string]EnvVar, len(have))
	for _, v := range have {
		byName[v.Name] = v
	}
	keep := map[int64]bool{}
	for _, w := range want {
		old, exists := byName[w.Name]
		if w.Value == MaskedPlaceholder {
			if !exists {
				return fmt.Errorf("env var %q: %w: the masked placeholder needs an existing variable", w.Name, ErrNotFound)
			}
			w.Value = old.Value
		}
		if exists {
			keep[old.EVID] = true
			if _, err := tx.ExecContext(ctx, "UPDATE env_vars SET value = ?, masked = ? WHERE evid = ?", w.Value, w.Masked, old.EVID); err != nil {
				return mapError("update env var", err)
			}
			continue
		}
		row := &EnvVar{Name: w.Name, Value: w.Value, Masked: w.Masked}
		if owner.SpiderID != 0 {
			row.SpiderID = &owner.SpiderID
		} else {
			row.ProjectID = &owner.ProjectID
		}
		if _, err := tx.ModelContext(ctx, row).Insert(); err != nil {
			return mapError("create env var", err)
		}
		byName[w.Name] = *row
	}
	for _, v := range have {
		if !keep[v.EVID] {
			if _, err := tx.ExecContext(ctx, "DELETE FROM env_vars WHERE evid = ?", v.EVID); err != nil {
				return mapError("delete env var", err)
			}
		}
	}
	return nil
}
