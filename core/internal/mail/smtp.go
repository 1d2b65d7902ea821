package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strconv"
	"time"
)

// implicitTLSPort is the SMTP submission port that starts with TLS (RFC 8314) instead of
// upgrading with STARTTLS.
const implicitTLSPort = 465

// defaultTimeout bounds one delivery, from dialing to QUIT, when the context has no deadline.
const defaultTimeout = 30 * time.Second

// SMTPConfig is how to reach the SMTP server.
type SMTPConfig struct {
	Host string
	// Port is 587 when zero. Port 465 uses TLS from the start; other ports upgrade with
	// STARTTLS when the server offers it.
	Port     int
	Username string
	Password string
	// From is the sender address, with or without a display name.
	From string
}

// SMTPSender delivers messages through an SMTP server with net/smtp.
type SMTPSender struct {
	cfg  SMTPConfig
	from string
}

// NewSMTPSender checks the configuration and returns a sender.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is missing")
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	from, err := parseAddress("smtp: from", cfg.From)
	if err != nil {
		return nil, err
	}
	return &SMTPSender{cfg: cfg, from: from.Address}, nil
}

// Send delivers m. Credentials are only sent over TLS: net/smtp's PLAIN authentication
// refuses an unencrypted connection to any host but localhost.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	to, err := parseAddress("recipient", m.To)
	if err != nil {
		return err
	}
	msg, err := s.compose(to.String(), m)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := s.deliver(c, to.Address, msg); err != nil {
		return fmt.Errorf("smtp: send to %s: %w", to.Address, err)
	}
	return nil
}

func (s *SMTPSender) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	var conn net.Conn
	var err error
	if s.cfg.Port == implicitTLSPort {
		d := &tls.Dialer{Config: &tls.Config{ServerName: s.cfg.Host}}
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("smtp: connect to %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("smtp: set deadline: %w", err)
	}
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("smtp: greeting from %s: %w", addr, err)
	}
	return c, nil
}

func (s *SMTPSender) deliver(c *smtp.Client, to string, msg []byte) error {
	if s.cfg.Port != implicitTLSPort {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(&tls.Config{ServerName: s.cfg.Host}); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("authenticate as %s: %w", s.cfg.Username, err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose renders the message with its headers. The body is quoted-printable, so long links
// survive the 998-character line limit of RFC 5322.
func (s *SMTPSender) compose(to string, m Message) ([]byte, error) {
	from, err := parseAddress("smtp: from", s.cfg.From)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("generate message id: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), s.cfg.Host)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
