// Package mail sends the platform's account e-mails: activation links, password-reset links
// and password-change notices. Sender is the boundary the API depends on. SMTPSender delivers
// through an SMTP server, and LogSender, the default when no server is configured, only logs
// that a message was due.
package mail

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Message is one plain-text e-mail to one recipient.
type Message struct {
	To      string
	Subject string
	// Body may contain single-use links that act as credentials, so no implementation logs it.
	Body string
}

// Sender delivers messages. Send returns once the message is handed over, or with the error
// that stopped it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// LogSender logs the recipient and subject of each message and delivers nothing.
type LogSender struct {
	log hclog.Logger
}

// NewLogSender returns a sender that only logs.
func NewLogSender(log hclog.Logger) *LogSender {
	return &LogSender{log: log.Named("mail")}
}

// Send logs the recipient and subject. The body is left out because its links are secrets.
func (s *LogSender) Send(_ context.Context, m Message) error {
	s.log.Info("mail not delivered: no smtp server is configured", "to", m.To, "subject", m.Subject)
	return nil
}

// parseAddress checks one address for use in an envelope and a header. It rejects display
// names with line breaks, which would let a value add headers.
func parseAddress(field, value string) (*mail.Address, error) {
	if strings.ContainsAny(value, "\r\n") {
		return nil, fmt.Errorf("%s address %q contains a line break", field, value)
	}
	addr, err := mail.ParseAddress(value)
	if err != nil {
		return nil, fmt.Errorf("%s address %q is invalid: %w", field, value, err)
	}
	return addr, nil
}
