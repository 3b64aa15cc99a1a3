package conf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/daprshop/suite/lib/conf"
)

type config struct {
	Port    int           `env:"APP_PORT" default:"8080"`
	Token   string        `env:"DAPR_API_TOKEN" secret:"true"`
	Timeout time.Duration `env:"TIMEOUT" default:"2s"`
	Breaker struct {
		Failures uint32  `env:"BREAKER_FAILURES" default:"5"`
		Rate     float64 `env:"RATE" default:"0.5"`
		Verbose  bool    `env:"VERBOSE" default:"false"`
	}
	Other limits `prefix:"OTHER_"`
}

type limits struct {
	Max int `env:"MAX" default:"3"`
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseDefaultsAndOverrides(t *testing.T) {
	var c config
	if err := conf.Parse(&c, env(map[string]string{"APP_PORT": "9000", "DAPR_API_TOKEN": "s3cret", "VERBOSE": "true"})); err != nil {
		t.Fatal(err)
	}
	if c.Port != 9000 || c.Timeout != 2*time.Second || c.Breaker.Failures != 5 || c.Breaker.Rate != 0.5 || !c.Breaker.Verbose || c.Other.Max != 3 {
		t.Fatalf("parsed %+v", c)
	}
	s := conf.String(&c)
	if strings.Contains(s, "s3cret") || !strings.Contains(s, "DAPR_API_TOKEN=******") || !strings.Contains(s, "APP_PORT=9000") {
		t.Fatalf("String = %s", s)
	}
}

func TestPrefix(t *testing.T) {
	var c config
	if err := conf.Parse(&c, env(map[string]string{"OTHER_MAX": "9", "MAX": "1"})); err != nil {
		t.Fatal(err)
	}
	if c.Other.Max != 9 || !strings.Contains(conf.String(&c), "OTHER_MAX=9") {
		t.Fatalf("Other.Max = %d, String = %s", c.Other.Max, conf.String(&c))
	}
}

func TestParseReportsEveryBadValue(t *testing.T) {
	var c config
	err := conf.Parse(&c, env(map[string]string{"APP_PORT": "x", "TIMEOUT": "5", "BREAKER_FAILURES": "-1"}))
	if err == nil {
		t.Fatal("no error for bad values")
	}
	for _, name := range []string{"APP_PORT", "TIMEOUT", "BREAKER_FAILURES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestParseNeedsStructPointer(t *testing.T) {
	if err := conf.Parse(config{}, env(nil)); err == nil {
		t.Fatal("accepted a non-pointer")
	}
}
