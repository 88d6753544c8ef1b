package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// envPrefix starts the environment variable of every flag of `vrsniff
// capture`: VRSNIFF_ROTATE_SIZE is --rotate-size, VRSNIFF_CONFIG is
// --config. A container is configured with them.
const envPrefix = "VRSNIFF_"

// envNotFlags are variables with the prefix that are no flags: the
// install script's and the tests' own.
var envNotFlags = map[string]bool{
	"VRSNIFF_URL": true, "VRSNIFF_SHA256": true, "VRSNIFF_SHARED": true, "VRSNIFF_RING_CRASH_DIR": true,
	"VRSNIFF_SCREENSHOTS": true, "VRSNIFF_TEST_S3": true, "VRSNIFF_TEST_S3_KEY": true, "VRSNIFF_TEST_S3_SECRET": true,
}

// flagEnv is the variable of flag name: the prefix, then the name as
// envName writes it.
func flagEnv(name string) string { return envPrefix + envName(name) }

// presetFlags sets the flags of fs that the command line did not set, from
// the environment and then from the YAML file (--config, or
// VRSNIFF_CONFIG): it runs after the command line is parsed into fs, and the
// precedence is command line > environment > YAML file > the flag's default.
// environ is os.Environ's shape: NAME=value.
func presetFlags(fs *pflag.FlagSet, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			env[k] = v
		}
	}
	set := changedFlags(fs)
	path := ""
	if f := fs.Lookup("config"); f != nil {
		path = f.Value.String()
	}
	if path == "" {
		path = env[flagEnv("config")]
	}
	// The environment first, so that the file skips what it set too.
	if err := applyEnv(fs, env, set); err != nil {
		return err
	}
	if path != "" {
		return applyConfig(fs, path, changedFlags(fs))
	}
	return nil
}

// applyEnv sets every flag that skip does not name and whose variable env
// holds with a value that is not empty (an empty one counts as unset). A
// variable with the prefix that names no flag is an error, as an unknown
// key of the YAML file is: a misspelt setting must not pass unnoticed. The
// variable of a flag's earlier name (VRSNIFF_I for --interface, see
// longNames) names it too.
func applyEnv(fs *pflag.FlagSet, env map[string]string, skip map[string]bool) error {
	known := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { known[flagEnv(f.Name)] = f.Name })
	for old, long := range longNames {
		if fs.Lookup(long) != nil {
			known[flagEnv(old)] = long
		}
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names) // the same error whatever the map's order
	for _, k := range names {
		v := env[k]
		name, ok := known[k]
		switch {
		case !ok && envNotFlags[k]:
			continue
		case !ok:
			return fmt.Errorf("environment: %s names no flag of this command", k)
		case name == "config" || v == "" || skip[name]:
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("environment: %s: %w", k, err)
		}
	}
	return nil
}
