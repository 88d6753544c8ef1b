package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// envPrefix starts the environment variable of every flag of `vrsniff
// capture`: VRSNIFF_ROTATE_SIZE is --rotate-size, VRSNIFF_CONFIG is
// --config. A container is configured with them.
const envPrefix = "VRSNIFF_"

// envNotFlags are variables with the prefix that are no flags: the
// install script's and the tests' own.
var envNotFlags = map[string]bool{
	"VRSNIFF_URL": true, "VRSNIFF_SHA256": true, "VRSNIFF_SHARED": true, "VRSNIFF_RING_CRASH_DIR": true,
}

// flagEnv is the variable of flag name: the prefix, then the name as
// envName writes it.
func flagEnv(name string) string { return envPrefix + envName(name) }

// presetFlags sets the flags of fs from the YAML file (--config, or
// VRSNIFF_CONFIG) and then from the environment; args are parsed into fs
// afterwards, so the precedence is command line > environment > YAML file
// > the flag's default. environ is os.Environ's shape: NAME=value.
func presetFlags(fs *flag.FlagSet, args, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			env[k] = v
		}
	}
	path := configArg(args)
	if path == "" {
		path = env[flagEnv("config")]
	}
	if path != "" {
		if err := applyConfig(fs, path); err != nil {
			return err
		}
	}
	return applyEnv(fs, env)
}

// applyEnv sets every flag whose variable env holds with a value that is
// not empty (an empty one counts as unset). A variable with the prefix
// that names no flag is an error, as an unknown key of the YAML file is:
// a misspelt setting must not pass unnoticed.
func applyEnv(fs *flag.FlagSet, env map[string]string) error {
	known := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { known[flagEnv(f.Name)] = f.Name })
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
		case name == "config" || v == "":
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("environment: %s: %w", k, err)
		}
	}
	return nil
}
