package apierr_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/daprshop/suite/lib/apierr"
)

// Every service's API document lists exactly the codes a client can get.
func TestAPIDocumentsListEveryCode(t *testing.T) {
	docs, _ := filepath.Glob("../../services/*/openapi.yaml")
	if len(docs) == 0 {
		t.Fatal("no services/*/openapi.yaml found from lib/apierr")
	}
	enum := regexp.MustCompile(`(?m)^\s*code: \{type: string, enum: \[([^\]]*)\]\}`)
	var want []string
	for _, c := range apierr.Codes() {
		want = append(want, string(c))
	}
	found := 0
	for _, p := range docs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range enum.FindAllStringSubmatch(string(b), -1) {
			found++
			var got []string
			for _, c := range strings.Split(m[1], ",") {
				got = append(got, strings.TrimSpace(c))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s lists codes %v, want %v", p, got, want)
			}
		}
	}
	if found == 0 {
		t.Fatal("no error code enumeration found in the API documents")
	}
}
