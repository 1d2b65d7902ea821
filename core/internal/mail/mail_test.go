package mail

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"mime/quotedprintable"
	"net"
	"net/textproto"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestLogSenderOmitsBody(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := NewLogSender(hclog.New(&hclog.LoggerOptions{Output: &out}))

	err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Reset", Body: "secret-link-token"})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if strings.Contains(out.String(), "secret-link-token") {
		t.Errorf("log contains the body: %s", out.String())
	}
	if !strings.Contains(out.String(), "ana@example.com") || !strings.Contains(out.String(), "Reset") {
		t.Errorf("log lacks recipient or subject: %s", out.String())
	}
}

// received is what the fake SMTP server got in one session.
type received struct {
	from, to string
	data     string
}

// fakeSMTP accepts one session on loopback without TLS or authentication and reports it.
func fakeSMTP(t *testing.T) (port int, got <-chan received) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan received, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		ch <- serveSession(textproto.NewConn(conn))
	}()
	return ln.Addr().(*net.TCPAddr).Port, ch
}

func serveSession(c *textproto.Conn) received {
	var r received
	_ = c.PrintfLine("220 fake ESMTP")
	for {
		line, err := c.ReadLine()
		if err != nil {
			return r
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			_ = c.PrintfLine("250 fake")
		case "MAIL":
			r.from = line
			_ = c.PrintfLine("250 ok")
		case "RCPT":
			r.to = line
			_ = c.PrintfLine("250 ok")
		case "DATA":
			_ = c.PrintfLine("354 go on")
			data, _ := io.ReadAll(c.DotReader())
			r.data = string(data)
			_ = c.PrintfLine("250 queued")
		case "QUIT":
			_ = c.PrintfLine("221 bye")
			return r
		default:
			_ = c.PrintfLine("502 unknown")
		}
	}
}

func TestSMTPSenderDelivers(t *testing.T) {
	t.Parallel()
	port, got := fakeSMTP(t)
	s, err := NewSMTPSender(SMTPConfig{Host: "127.0.0.1", Port: port, From: "estela <noreply@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	link := "http://web.example/resetPassword?token=" + strings.Repeat("a", 120) + "&pair=MQ"

	if err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Change your estela password.", Body: "Open " + link + "\n"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	r := <-got
	if r.from != "MAIL FROM:<noreply@example.com>" && !strings.HasPrefix(r.from, "MAIL FROM:<noreply@example.com> ") {
		t.Errorf("envelope sender %q", r.from)
	}
	if r.to != "RCPT TO:<ana@example.com>" {
		t.Errorf("envelope recipient %q", r.to)
	}
	// DotReader turns CRLF line ends into LF.
	header, body, _ := strings.Cut(r.data, "\n\n")
	for _, want := range []string{"To: <ana@example.com>", "Subject: Change your estela password.", `From: "estela" <noreply@example.com>`, "Content-Transfer-Encoding: quoted-printable"} {
		if !strings.Contains(header, want) {
			t.Errorf("header lacks %q:\n%s", want, header)
		}
	}
	decoded, err := io.ReadAll(quotedprintable.NewReader(bufio.NewReader(strings.NewReader(body))))
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	if !strings.Contains(string(decoded), link) {
		t.Errorf("decoded body %q lacks the link", decoded)
	}
}

func TestSMTPSenderRejectsHeaderInjection(t *testing.T) {
	t.Parallel()
	s, err := NewSMTPSender(SMTPConfig{Host: "127.0.0.1", Port: 1, From: "noreply@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), Message{To: "ana@example.com\r\nBcc: eve@example.com", Subject: "x", Body: "y"})
	if err == nil || !strings.Contains(err.Error(), "line break") {
		t.Errorf("send error = %v, want a line-break error", err)
	}
}

func TestNewSMTPSenderChecksConfig(t *testing.T) {
	t.Parallel()
	if _, err := NewSMTPSender(SMTPConfig{From: "noreply@example.com"}); err == nil {
		t.Error("no error for a missing host")
	}
	if _, err := NewSMTPSender(SMTPConfig{Host: "mail.example.com", From: "not an address"}); err == nil {
		t.Error("no error for an invalid from address")
	}
}
