package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

const (
	// storageScope lets the plugin read, write, list and delete objects.
	storageScope = "https://www.googleapis.com/auth/devstorage.read_write"
	// tokenTimeout bounds one request for a storage token, which runs
	// outside any RPC's context.
	tokenTimeout = 30 * time.Second
)

// authenticator gets OAuth2 access tokens for the plugin's Google identity.
type authenticator struct {
	// serviceAccount is the contents of the service account key file, or
	// nil for Application Default Credentials.
	serviceAccount []byte
}

// loadAuthenticator reads and checks the service account key file at path,
// or checks that Application Default Credentials exist when path is empty.
// It returns nil when resp received an error diagnostic.
func loadAuthenticator(ctx context.Context, path string, resp *pluginapi.ConfigureResponse) *authenticator {
	if path == "" {
		if _, err := google.FindDefaultCredentials(ctx, storageScope); err != nil {
			resp.AddError("credentials_file", "no Application Default Credentials found",
				"Set credentials_file to a service account key file, or GOOGLE_APPLICATION_CREDENTIALS in the plugin's environment: "+err.Error())
			return nil
		}
		return &authenticator{}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		resp.AddError("credentials_file", "cannot read the credentials file", err.Error())
		return nil
	}
	if err := checkServiceAccount(data); err != nil {
		resp.AddError("credentials_file", "invalid service account key file", fmt.Sprintf("%s: %v", path, err))
		return nil
	}
	return &authenticator{serviceAccount: data}
}

// serviceAccountKey contains the fields of a service account key file
// that the JWT flow uses.
type serviceAccountKey struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
}

// checkServiceAccount validates a service account key file. Its errors
// never contain the private key.
func checkServiceAccount(data []byte) error {
	var key serviceAccountKey
	if err := json.Unmarshal(data, &key); err != nil {
		return errors.New("the file is not a JSON object")
	}
	if key.Type != "service_account" {
		return fmt.Errorf("type is %q, not \"service_account\"", key.Type)
	}
	if key.ClientEmail == "" {
		return errors.New("client_email is missing")
	}
	if err := checkPrivateKey(key.PrivateKey); err != nil {
		return err
	}
	if key.TokenURI != "" {
		if u, err := url.Parse(key.TokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("token_uri is not an http or https URL")
		}
	}
	return nil
}

// checkPrivateKey accepts a PEM-encoded RSA key in PKCS #8 or PKCS #1 form,
// as the JWT flow does.
func checkPrivateKey(keyPEM string) error {
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		return errors.New("private_key is not PEM-encoded")
	}
	if key, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := key.(*rsa.PrivateKey); !ok {
			return errors.New("private_key is not an RSA key")
		}
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		return errors.New("private_key is neither a PKCS #8 nor a PKCS #1 RSA key")
	}
	return nil
}

// storageTokens returns a caching token source for the storage scope. Its
// token requests run with a background context and tokenTimeout, because
// the source outlives the RPC that first uses it.
func (a *authenticator) storageTokens() (oauth2.TokenSource, error) {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: tokenTimeout})
	return a.tokenSource(ctx, []string{storageScope})
}

// freshToken requests a new token for scopes, bypassing the caches of the
// oauth2 package, within ctx.
func (a *authenticator) freshToken(ctx context.Context, scopes []string) (*oauth2.Token, error) {
	source, err := a.tokenSource(ctx, scopes)
	if err != nil {
		return nil, err
	}
	return source.Token()
}

// tokenSource returns a new token source for scopes: the JWT flow of the
// service account, or Application Default Credentials.
func (a *authenticator) tokenSource(ctx context.Context, scopes []string) (oauth2.TokenSource, error) {
	if a.serviceAccount == nil {
		creds, err := google.FindDefaultCredentials(ctx, scopes...)
		if err != nil {
			return nil, fmt.Errorf("find Application Default Credentials: %w", err)
		}
		return creds.TokenSource, nil
	}
	conf, err := google.JWTConfigFromJSON(a.serviceAccount, scopes...)
	if err != nil {
		return nil, fmt.Errorf("read service account key: %w", err)
	}
	return conf.TokenSource(ctx), nil
}
