package app

import (
	"github.com/estela-go/estela-go/core/internal/api"
	"github.com/estela-go/estela-go/core/internal/config"
	"github.com/estela-go/estela-go/core/internal/mail"
)

// accountMailer returns the SMTP sender of the accounts block, or nil when the block has no
// smtp server, in which case the API only logs account e-mails.
func accountMailer(c *config.Accounts) (mail.Sender, error) {
	if c.SMTP == nil {
		return nil, nil
	}
	return mail.NewSMTPSender(mail.SMTPConfig{
		Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username, Password: c.SMTP.Password, From: c.SMTP.From,
	})
}

func accountOptions(c *config.Accounts) api.AccountOptions {
	return api.AccountOptions{
		Register: c.Register, APIURL: c.APIURL, FrontendURL: c.FrontendURL,
		ActivationTTL: c.ActivationTTL, ResetTTL: c.ResetTTL,
	}
}
