package main

import (
	"testing"

	"github.com/daprshop/suite/lib/conf"
	"github.com/daprshop/suite/services/users/internal/users"
)

// The defaults of the LOGIN_* variables are the policy whose bounds
// users.Limits states, and the variables set each field.
func TestLoginConfig(t *testing.T) {
	var cfg config
	if err := conf.Parse(&cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Login.policy(), users.DefaultLoginPolicy(); got != want {
		t.Fatalf("defaults %+v, documented %+v", got, want)
	}
	env := map[string]string{"LOGIN_ATTEMPTS_PER_ADDRESS": "100000", "LOGIN_FAILURES_PER_SOURCE": "3", "LOGIN_SOURCE_WAIT": "2m",
		"LOGIN_SOURCE_WAIT_MAX": "2h", "LOGIN_SOURCE_MEMORY": "48h", "LOGIN_FAILURES_PER_ACCOUNT": "10",
		"LOGIN_ACCOUNT_INTERVAL": "1m", "LOGIN_FAMILIAR_FOR": "24h"}
	if err := conf.Parse(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	p := cfg.Login.policy()
	want := users.LoginPolicy{AttemptsPerAddress: 100000, FailuresPerSource: 3, SourceWait: 2 * 60e9, SourceWaitMax: 2 * 3600e9,
		SourceMemory: 48 * 3600e9, FailuresPerAccount: 10, AccountInterval: 60e9, FamiliarFor: 24 * 3600e9}
	if p != want {
		t.Fatalf("parsed %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}
