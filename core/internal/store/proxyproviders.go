package store

import (
	"context"
	"fmt"

	"github.com/go-pg/pg/v10"
)

// ProxyProvider is an HTTP proxy with its credentials. Only superusers manage providers;
// members apply one to a project or spider, which copies the credentials into masked variables.
type ProxyProvider struct {
	tableName struct{} `pg:"proxy_providers"`

	ProxyID     int64  `pg:"proxyid,pk"`
	Name        string `pg:"name,notnull"`
	Description string `pg:"description,use_zero"`
	Username    string `pg:"username,use_zero"`
	Password    string `pg:"password,use_zero"`
	Host        string `pg:"host,use_zero"`
	Port        string `pg:"port,use_zero"`
}

// EnvVars returns the variables that applying the provider writes: the name in clear, the
// credentials and address masked. The names are estela's, so spiders written for estela find them.
func (p *ProxyProvider) EnvVars() []EnvVar {
	return []EnvVar{
		{Name: "ESTELA_PROXY_USER", Value: p.Username, Masked: true},
		{Name: "ESTELA_PROXY_PASS", Value: p.Password, Masked: true},
		{Name: "ESTELA_PROXY_URL", Value: p.Host, Masked: true},
		{Name: "ESTELA_PROXY_PORT", Value: p.Port, Masked: true},
		{Name: "ESTELA_PROXY_NAME", Value: p.Name, Masked: false},
	}
}

// ListProxyProviders returns one page of providers ordered by id, and their count.
func (s *Store) ListProxyProviders(ctx context.Context, page Page) ([]ProxyProvider, int, error) {
	var out []ProxyProvider
	count, err := s.db.ModelContext(ctx, &out).Order("proxyid").Offset(page.Offset).Limit(page.Limit).SelectAndCount()
	return out, count, mapError("list proxy providers", err)
}

// ProxyProvider loads a provider.
func (s *Store) ProxyProvider(ctx context.Context, id int64) (*ProxyProvider, error) {
	p := &ProxyProvider{}
	err := s.db.ModelContext(ctx, p).Where("proxyid = ?", id).Select()
	return p, mapError(fmt.Sprintf("load proxy provider %d", id), err)
}

// CreateProxyProvider inserts a provider.
func (s *Store) CreateProxyProvider(ctx context.Context, p *ProxyProvider) error {
	_, err := s.db.ModelContext(ctx, p).Returning("*").Insert()
	return mapError("create proxy provider", err)
}

// UpdateProxyProvider writes every field of a provider.
func (s *Store) UpdateProxyProvider(ctx context.Context, p *ProxyProvider) error {
	res, err := s.db.ModelContext(ctx, p).WherePK().Update()
	if err != nil {
		return mapError("update proxy provider", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("update proxy provider %d: %w", p.ProxyID, ErrNotFound)
	}
	return nil
}

// DeleteProxyProvider deletes a provider. Variables already applied from it stay.
func (s *Store) DeleteProxyProvider(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM proxy_providers WHERE proxyid = ?", id)
	if err != nil {
		return mapError("delete proxy provider", err)
	}
	if res.RowsAffected() == 0 {
		return fmt.Errorf("delete proxy provider %d: %w", id, ErrNotFound)
	}
	return nil
}

// ProxyTarget is the project or the spider that a provider is applied to; SpiderID wins when
// both are set.
type ProxyTarget struct {
	ProjectID string
	SpiderID  int64
}

// ApplyProxyProvider writes the provider's variables on the target, in one transaction, and
// returns the target's variables afterwards. A variable of the same name is overwritten; the
// target's other variables are kept.
func (s *Store) ApplyProxyProvider(ctx context.Context, target ProxyTarget, p *ProxyProvider) ([]EnvVar, error) {
	column, id := "project_id", any(target.ProjectID)
	lock := "SELECT 1 FROM projects WHERE pid = ? AND NOT deleted FOR UPDATE"
	if target.SpiderID != 0 {
		column, id = "spider_id", target.SpiderID
		lock = "SELECT 1 FROM spiders WHERE sid = ? AND NOT deleted FOR UPDATE"
	}
	var vars []EnvVar
	err := s.inTx(ctx, func(tx *pg.Tx) error {
		// The lock keeps two concurrent applications from both inserting the same name.
		if _, err := tx.QueryOneContext(ctx, pg.Scan(new(int)), lock, id); err != nil {
			return mapError("lock proxy target", err)
		}
		for _, v := range p.EnvVars() {
			if err := upsertEnvVar(ctx, tx, column, id, v); err != nil {
				return err
			}
		}
		return mapError("list env vars", tx.ModelContext(ctx, &vars).Where("? = ?", pg.Ident(column), id).Order("evid").Select())
	})
	return vars, err
}

// upsertEnvVar sets the value and masking of the owner's variable named v.Name, creating it when
// the owner has none of that name.
func upsertEnvVar(ctx context.Context, tx *pg.Tx, column string, owner any, v EnvVar) error {
	res, err := tx.ExecContext(ctx, "UPDATE env_vars SET value = ?, masked = ? WHERE ? = ? AND name = ?",
		v.Value, v.Masked, pg.Ident(column), owner, v.Name)
	if err != nil {
		return mapError("update env var "+v.Name, err)
	}
	if res.RowsAffected() > 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO env_vars (?, name, value, masked) VALUES (?, ?, ?, ?)",
		pg.Ident(column), owner, v.Name, v.Value, v.Masked)
	return mapError("create env var "+v.Name, err)
}

// ProjectOfSpider returns the project of a live spider.
func (s *Store) ProjectOfSpider(ctx context.Context, sid int64) (string, error) {
	var pid string
	_, err := s.db.QueryOneContext(ctx, pg.Scan(&pid), `SELECT s.project_id FROM spiders s JOIN projects p ON p.pid = s.project_id
		WHERE s.sid = ? AND NOT s.deleted AND NOT p.deleted`, sid)
	return pid, mapError(fmt.Sprintf("load spider %d", sid), err)
}

// ProxyProviderByName returns the first provider with a name, as estela's dispatch picks it.
func (s *Store) ProxyProviderByName(ctx context.Context, name string) (*ProxyProvider, error) {
	p := &ProxyProvider{}
	err := s.db.ModelContext(ctx, p).Where("name = ?", name).Order("proxyid").Limit(1).Select()
	return p, mapError("load proxy provider", err)
}
