package config

import (
	"fmt"
	"strings"
	"time"
)

// Accounts holds self-registration and account e-mail settings.
type Accounts struct {
	// Register enables POST /api/auth/register.
	Register bool `hcl:"register,optional"`
	// FrontendURL is the web UI's base URL, the target of activation redirects and
	// password-reset links. It is required with an smtp block.
	FrontendURL string `hcl:"frontend_url,optional"`
	// APIURL is the API's public base URL, used in activation links; api_host when empty.
	APIURL string `hcl:"api_url,optional"`
	// ActivationTTLText and ResetTTLText are Go durations such as "24h" and "1h".
	ActivationTTLText string `hcl:"activation_ttl,optional"`
	ResetTTLText      string `hcl:"reset_ttl,optional"`
	// SMTP is the mail server; without it, account e-mails are only logged.
	SMTP *SMTP `hcl:"smtp,block"`

	// ActivationTTL and ResetTTL are the parsed link lifetimes.
	ActivationTTL time.Duration
	ResetTTL      time.Duration
}

// SMTP is how to reach the mail server.
type SMTP struct {
	Host string `hcl:"host"`
	// Port is 587 when absent; 465 means TLS from the start, other ports use STARTTLS.
	Port     int    `hcl:"port,optional"`
	Username string `hcl:"username,optional"`
	Password string `hcl:"password,optional"`
	// From is the sender address, for example "estela <noreply@example.com>".
	From string `hcl:"from"`
}

// Default lifetimes of account links. estela's 180 seconds (Django's PASSWORD_RESET_TIMEOUT
// as estela sets it) is too short to find the mail.
const (
	defaultActivationTTL = 24 * time.Hour
	defaultResetTTL      = time.Hour
)

// defaultFrontendURL is the address of estela-web's development server.
const defaultFrontendURL = "http://localhost:3000"

// resolveAccounts fills the accounts defaults and parses its durations.
func (c *Config) resolveAccounts() error {
	if c.Accounts == nil {
		c.Accounts = &Accounts{}
	}
	a := c.Accounts
	if a.APIURL == "" {
		a.APIURL = c.APIHost
	}
	if a.FrontendURL == "" {
		if a.SMTP != nil {
			return fmt.Errorf("config: accounts: frontend_url is missing; mailed links need the web UI's address")
		}
		a.FrontendURL = defaultFrontendURL
	}
	a.APIURL = strings.TrimRight(a.APIURL, "/")
	a.FrontendURL = strings.TrimRight(a.FrontendURL, "/")
	var err error
	if a.ActivationTTL, err = parseTTL("activation_ttl", a.ActivationTTLText, defaultActivationTTL); err != nil {
		return err
	}
	a.ResetTTL, err = parseTTL("reset_ttl", a.ResetTTLText, defaultResetTTL)
	return err
}

func parseTTL(name, text string, fallback time.Duration) (time.Duration, error) {
	if text == "" {
		return fallback, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("config: accounts: %s = %q is not a positive duration such as \"1h\" or \"30m\"", name, text)
	}
	return d, nil
}
