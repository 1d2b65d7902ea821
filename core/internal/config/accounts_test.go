package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadAccountsDefaults(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	t.Setenv("ESTELA_LISTEN", "")
	t.Setenv("ESTELA_API_HOST", "")
	c, err := Load(writeConfig(t, minimal))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	a := c.Accounts
	if a.Register {
		t.Error("registration is enabled by default")
	}
	if a.APIURL != "http://127.0.0.1:8000" || a.FrontendURL != defaultFrontendURL {
		t.Errorf("api_url %q, frontend_url %q", a.APIURL, a.FrontendURL)
	}
	if a.ActivationTTL != 24*time.Hour || a.ResetTTL != time.Hour || a.SMTP != nil {
		t.Errorf("activation_ttl %v, reset_ttl %v, smtp %v", a.ActivationTTL, a.ResetTTL, a.SMTP)
	}
}

func TestLoadAccountsBlock(t *testing.T) {
	t.Setenv("ESTELA_API_HOST", "")
	c, err := Load(writeConfig(t, minimal+`
accounts {
  register       = true
  frontend_url   = "https://web.example/"
  api_url        = "https://api.example"
  activation_ttl = "48h"
  reset_ttl      = "30m"
  smtp {
    host = "mail.example"
    port = 465
    from = "estela <noreply@example.com>"
  }
}
`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	a := c.Accounts
	if !a.Register || a.FrontendURL != "https://web.example" || a.APIURL != "https://api.example" {
		t.Errorf("register %v, frontend_url %q, api_url %q", a.Register, a.FrontendURL, a.APIURL)
	}
	if a.ActivationTTL != 48*time.Hour || a.ResetTTL != 30*time.Minute {
		t.Errorf("activation_ttl %v, reset_ttl %v", a.ActivationTTL, a.ResetTTL)
	}
	if a.SMTP == nil || a.SMTP.Host != "mail.example" || a.SMTP.Port != 465 {
		t.Errorf("smtp %+v", a.SMTP)
	}
}

func TestLoadAccountsErrors(t *testing.T) {
	cases := map[string]struct{ block, want string }{
		"bad duration":          {`accounts { reset_ttl = "soon" }`, "reset_ttl"},
		"negative duration":     {`accounts { activation_ttl = "-1h" }`, "activation_ttl"},
		"smtp without frontend": {"accounts {\n  smtp {\n    host = \"m\"\n    from = \"a@b.c\"\n  }\n}\n", "frontend_url"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeConfig(t, minimal+tc.block))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
