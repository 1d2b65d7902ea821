package app

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/config"
	"github.com/estela-go/estela-go/core/internal/store"
)

// Run loads the configuration at configPath and runs one command of estela-server: all, api,
// worker, migrate or plugins. It returns when ctx is done or the command ends.
func Run(ctx context.Context, command, configPath string, log hclog.Logger) error {
	switch command {
	case "plugins", "migrate", "worker", "api", "all":
	default:
		return fmt.Errorf("unknown command %q; run estela-server -h for the list", command)
	}
	if command == "plugins" {
		dirs, err := config.LoadPluginDirs(configPath)
		if err != nil {
			return err
		}
		return ListPlugins(ctx, dirs, log, os.Stdout)
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	if command == "migrate" {
		return Migrate(ctx, cfg, log)
	}
	a, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	switch command {
	case "worker":
		a.RunWorker(ctx)
	case "api", "all":
		if err := a.EnsureAdmin(ctx, envOr("ESTELA_ADMIN_USERNAME", "admin"), os.Getenv("ESTELA_ADMIN_PASSWORD"), os.Stdout); err != nil {
			return fmt.Errorf("create superuser: %w", err)
		}
		if command != "all" {
			return a.RunAPI(ctx)
		}
		// The worker ends before the deferred Close, so that its last writes reach Postgres
		// and the plugins. It also ends when the API fails to start.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var worker sync.WaitGroup
		worker.Go(func() { a.RunWorker(ctx) })
		err := a.RunAPI(ctx)
		cancel()
		worker.Wait()
		return err
	}
	return nil
}

// Migrate applies the database migrations and returns. It needs neither Redis nor the plugins,
// so it can run before they are set up, as a deploy's first step.
func Migrate(ctx context.Context, cfg *config.Config, log hclog.Logger) error {
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{PoolSize: cfg.DatabasePoolSize})
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	log.Info("database migrated", "applied", applied)
	return nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
