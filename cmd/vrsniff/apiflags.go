package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vrsniff/vrsniff/internal/contrail"
	"github.com/vrsniff/vrsniff/internal/provision"
)

// apiFlags are the connection flags every API sub-command takes: the
// config API, and the Keystone credentials under the names the OpenStack
// command line tools give them (--os-*), which override the OS_*
// variables, which override the clouds.yaml entry.
type apiFlags struct {
	endpoint string
	os       contrail.Credentials // the --os-* flags
	insecure bool
	noAuth   bool
	caFile   string
	timeout  time.Duration
	project  string
	dryRun   bool
	verbose  bool

	// Set by connect.
	log     *slog.Logger
	api     *contrail.Client
	session *contrail.Session
}

// secretFlag is a flag whose value -h and error messages never show.
type secretFlag contrail.Secret

func (s *secretFlag) String() string {
	if s == nil {
		return ""
	}
	return contrail.Secret(*s).String()
}

func (s *secretFlag) Type() string { return "string" }

func (s *secretFlag) Set(v string) error {
	*s = secretFlag(v)
	return nil
}

func (a *apiFlags) register(fs *pflag.FlagSet, dryRun bool) {
	// Defaults are resolved after parsing, so that -h never prints a
	// password that CONTRAIL_API or an OS_* variable may carry.
	fs.StringVar(&a.endpoint, "api", "", "config API URL (default $CONTRAIL_API, else "+contrail.DefaultEndpoint+")")
	fs.BoolVar(&a.noAuth, "no-auth", false, "send no token (API server run with --auth noauth)")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM CA bundle for the config API (default: --os-cacert)")
	fs.BoolVar(&a.insecure, "insecure", false, "do not verify TLS certificates (Keystone and the config API)")
	fs.DurationVar(&a.timeout, "timeout", 30*time.Second, "timeout of each request")
	fs.StringVar(&a.project, "project", "", "domain:project: create puts the mirror objects there (default: the mirrored network's or port's); list and delete look there (default: the credentials' project)")
	fs.BoolVarP(&a.verbose, "verbose", "v", false, "log every request")
	if dryRun {
		fs.BoolVar(&a.dryRun, "dry-run", false, "print the requests that would change something instead of sending them")
	}
	c := &a.os
	for _, f := range []struct {
		p          *string
		name, help string
	}{
		{&c.Cloud, "os-cloud", "clouds.yaml entry with the Keystone credentials"},
		{&c.AuthType, "os-auth-type", "password, token or v3applicationcredential|else from the credentials given"},
		{&c.AuthURL, "os-auth-url", "Keystone URL"},
		{&c.Username, "os-username", "user name"},
		{&c.UserID, "os-user-id", "user ID"},
		{&c.UserDomainName, "os-user-domain-name", "domain of the user|else the default domain"},
		{&c.UserDomainID, "os-user-domain-id", "domain ID of the user"},
		{&c.ProjectName, "os-project-name", "project to scope the token to"},
		{&c.ProjectID, "os-project-id", "project ID to scope the token to"},
		{&c.ProjectDomainName, "os-project-domain-name", "domain of the project|else the default domain"},
		{&c.ProjectDomainID, "os-project-domain-id", "domain ID of the project"},
		{&c.ApplicationCredentialID, "os-application-credential-id", "application credential ID"},
		{&c.ApplicationCredentialName, "os-application-credential-name", "application credential name (with the user)"},
		{&c.IdentityAPIVersion, "os-identity-api-version", "Keystone API version, 3 or 2.0"},
		{&c.CACert, "os-cacert", "PEM CA bundle for Keystone and the config API"},
		{&c.Cert, "os-cert", "PEM client certificate for Keystone"},
		{&c.Key, "os-key", "PEM private key of --os-cert"},
	} {
		fs.StringVar(f.p, f.name, "", osUsage(f.name, f.help))
	}
	for _, f := range []struct {
		p          *contrail.Secret
		name, help string
	}{
		{&c.Password, "os-password", "`password`; other users can see it in ps: prefer OS_PASSWORD or secure.yaml"},
		{&c.ApplicationCredentialSecret, "os-application-credential-secret", "application credential `secret`; other users can see it in ps"},
		{&c.Token, "os-token", "an existing Keystone `token`; other users can see it in ps"},
	} {
		fs.Var((*secretFlag)(f.p), f.name, osUsage(f.name, f.help))
	}
}

// osUsage is the help of a --os-* flag: what it is, and that it defaults to
// its variable, then to what follows a "|" in help.
func osUsage(name, help string) string {
	help, otherwise, ok := strings.Cut(help, "|")
	if ok {
		otherwise = ", " + otherwise
	}
	return help + " (default $" + envName(name) + otherwise + ")"
}

// envName is the variable that a --os-* flag overrides: --os-auth-url is
// OS_AUTH_URL.
func envName(flag string) string {
	b := []byte(flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// connection is the config API connection the flags ask for.
func (a *apiFlags) connection() contrail.Connection {
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	c := contrail.Connection{Endpoint: a.endpoint, Credentials: a.os, Insecure: a.insecure, NoAuth: a.noAuth,
		CAFile: a.caFile, Timeout: a.timeout,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	if a.dryRun {
		c.DryRun = os.Stdout
	}
	return c
}

// credentials merges the --os-* flags over the OS_* variables.
func (a *apiFlags) credentials() contrail.Credentials {
	c := a.connection()
	return c.ResolvedCredentials()
}

// connect opens the session once.
func (a *apiFlags) connect() error {
	if a.api != nil {
		return nil
	}
	c := a.connection()
	s, err := contrail.Connect(c)
	if err != nil {
		return err
	}
	a.log, a.api, a.session = c.Log, s.API, s
	return nil
}

func (a *apiFlags) provisioner() (*provision.Provisioner, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return &provision.Provisioner{API: a.api, Log: a.log}, nil
}

// credentialsProject returns the project the credentials are scoped to,
// or nil without credentials (contrail.Session.Project).
func (a *apiFlags) credentialsProject(ctx context.Context) ([]string, error) {
	if err := a.connect(); err != nil {
		return nil, err
	}
	return a.session.Project(ctx)
}
